package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackOutsideEphemeralRange(t *testing.T) {
	lo, hi := ephemeralRange()
	ports, err := Loopback(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p >= lo && p <= hi {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		if p < lowest || p > 65535 {
			t.Errorf("port %d outside %d-65535", p, lowest)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	// Each port can be listened on by the caller.
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatalf("listen on the handed-out port: %v", err)
	}
	l.Close()
}

func TestLoopbackSkipsPortsInUse(t *testing.T) {
	// Hold every port of a narrowed candidate range but one: pick must find it.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	base := 0
	for p := lowest; p < lowest+1000 && base == 0; p += 10 {
		ok := true
		var ls []net.Listener
		for q := p; q < p+4; q++ {
			l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			base = p
		}
	}
	if base == 0 {
		t.Skip("no four consecutive free ports to test with")
	}
	for q := base; q < base+3; q++ {
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	mu.Lock()
	p, err := pick([][2]int{{base, base + 3}})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if p != base+3 {
		t.Fatalf("picked %d, want the one free port %d", p, base+3)
	}
	mu.Lock()
	given[p] = true
	_, err = pick([][2]int{{base, base + 3}})
	mu.Unlock()
	if err == nil {
		t.Fatal("picked a port from a range whose ports are all held or handed out")
	}
}
