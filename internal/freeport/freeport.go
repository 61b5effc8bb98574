// Package freeport picks loopback TCP ports for a process that will listen
// on them a moment later (knestd started by knest-supervisor, the
// integration tests and benchmarks).
//
// The kernel hands out "127.0.0.1:0" ports from its ephemeral range, the
// same range every outgoing connection on the machine takes its source port
// from: between closing the probe listener and the child's bind, any client
// connection may take the port ("bind: address already in use", seen in
// CI). Ports here come from outside that range, so only another listener
// choosing the same port by hand can race the child.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port handed out: above the well-known and the
// commonly configured service ports.
const lowest = 10000

// attempts bounds the random probes for each port.
const attempts = 200

var (
	mu    sync.Mutex
	given = map[int]bool{} // ports this process handed out, never twice
)

// Loopback returns n distinct ports that 127.0.0.1 could listen on a moment
// ago, none in the kernel's ephemeral port range and none handed out
// earlier by this process.
func Loopback(n int) ([]int, error) {
	lo, hi := ephemeralRange()
	var candidates [][2]int // [from, to] inclusive, outside lo..hi
	if lo-1 >= lowest {
		candidates = append(candidates, [2]int{lowest, lo - 1})
	}
	if hi+1 <= 65535 {
		candidates = append(candidates, [2]int{max(hi+1, lowest), 65535})
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("freeport: the ephemeral port range %d-%d leaves no port above %d", lo, hi, lowest)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]int, 0, n)
	for range n {
		p, err := pick(candidates)
		if err != nil {
			return nil, err
		}
		given[p] = true
		out = append(out, p)
	}
	return out, nil
}

// pick probes random ports of the candidate ranges until one binds.
func pick(ranges [][2]int) (int, error) {
	total := 0
	for _, r := range ranges {
		total += r[1] - r[0] + 1
	}
	var lastErr error
	for range attempts {
		i := rand.IntN(total)
		p := 0
		for _, r := range ranges {
			if size := r[1] - r[0] + 1; i < size {
				p = r[0] + i
				break
			} else {
				i -= size
			}
		}
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			lastErr = err
			continue
		}
		_ = l.Close()
		return p, nil
	}
	if lastErr == nil {
		lastErr = errors.New("every probed port was handed out before")
	}
	return 0, fmt.Errorf("freeport: no free loopback port outside the ephemeral range after %d tries: %w", attempts, lastErr)
}

// ephemeralRange is the kernel's ephemeral port range, Linux's default when
// it cannot be read.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}
