package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBetween(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	from := map[string]podTimes{}
	to := map[string]podTimes{}
	var names []string
	for i := 1; i <= 100; i++ {
		name := fmt.Sprintf("pod-%d", i)
		names = append(names, name)
		from[name] = podTimes{created: ms(0)}
		to[name] = podTimes{added: ms(i)}
	}
	// One pod the other side never saw.
	names = append(names, "lost")
	from["lost"] = podTimes{created: ms(0)}

	got := between(names, from, to, createdAt, addedAt)
	want := latency{P50: 50, P99: 99, Max: 100, Samples: 100, Missing: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("between (-want +got):\n%s", diff)
	}
}

func TestSizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pods      int
		wantNodes int
		wantCIDR  string
	}{
		{name: "a few pods get the minimum of two nodes and a /16", pods: 10, wantNodes: 2, wantCIDR: "10.128.0.0/16"},
		{name: "a thousand pods get a node to spare", pods: 1202, wantNodes: 3, wantCIDR: "10.128.0.0/16"},
		{name: "ten thousand pods need more addresses than a /16", pods: 20202, wantNodes: 22, wantCIDR: "10.128.0.0/15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nodes, cidr := sizeHost(tt.pods)
			if nodes != tt.wantNodes || cidr != tt.wantCIDR {
				t.Errorf("sizeHost(%d) = %d, %s; want %d, %s", tt.pods, nodes, cidr, tt.wantNodes, tt.wantCIDR)
			}
		})
	}
}
