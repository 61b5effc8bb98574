// Command reqphases splits the write requests an API server served during
// a Go runtime execution trace (/debug/pprof/trace of knestd) into their
// phases, per kind of write, and prints each phase's p50 and p90:
//
//   - handler start -> finisher start: the filter chain (authentication,
//     authorization, priority and fairness, ...) and reading the body;
//   - finisher start -> etcd call: decoding, patching, admission,
//     validation and managed fields, before the first call into etcd;
//   - etcd call -> finisher end: etcd (raft, WAL, apply) and the encoding
//     of the result;
//   - finisher end -> handler end: writing the response.
//
// A request is followed through the goroutines upstream's handlers start
// for it: the HTTP/2 handler, the timeout filter's and the finisher's.
// Kinds: patch (of any subresource), status update, binding, create,
// update, other.
//
//	go run ./hack/bench/idle/reqphases trace.out
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

type req struct {
	kind             string
	a, b, c, d, e    trace.Time // handler start, finisher start, etcd call, finisher end, handler end
	timeout, handler trace.GoID
}

// kinds name a write by a frame of its finisher's stack, in this order.
var kinds = []struct{ name, frame string }{
	{"patch", "patchResource"},
	{"status update", "StatusREST).Update"},
	{"binding", "BindingREST"},
	{"create", "createHandler"},
	{"update", "UpdateResource"},
}

func stackHas(s trace.Stack, sub string) bool {
	for f := range s.Frames() {
		if strings.Contains(f.Func, sub) {
			return true
		}
	}
	return false
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: reqphases trace.out")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fail(err)
	}
	byHandler := map[trace.GoID]*req{}
	byTimeout := map[trace.GoID]*req{}
	byFinisher := map[trace.GoID]*req{}
	var done []*req
	for {
		e, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		if e.Kind() != trace.EventStateTransition {
			continue
		}
		st := e.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		switch {
		case from == trace.GoNotExist && to == trace.GoRunnable:
			creator := e.Goroutine()
			switch {
			case stackHas(st.Stack, "runHandler"):
				byHandler[g] = &req{handler: g, a: e.Time()}
			case stackHas(st.Stack, "timeoutHandler"):
				if q := byHandler[creator]; q != nil {
					q.timeout = g
					byTimeout[g] = q
				}
			case stackHas(st.Stack, "finishRequest"):
				if q := byTimeout[creator]; q != nil {
					q.b = e.Time()
					byFinisher[g] = q
				}
			}
		case to == trace.GoWaiting:
			if q := byFinisher[g]; q != nil && q.c == 0 && (stackHas(st.Stack, "etcdserver") || stackHas(st.Stack, "grpc")) {
				q.c, q.kind = e.Time(), "other"
				for _, k := range kinds {
					if stackHas(st.Stack, k.frame) {
						q.kind = k.name
						break
					}
				}
			}
		case to == trace.GoNotExist:
			if q := byFinisher[g]; q != nil {
				q.d = e.Time()
			}
			if q := byHandler[g]; q != nil && q.d != 0 && q.c != 0 {
				q.e = e.Time()
				done = append(done, q)
			}
		}
	}
	phases := []string{"handler start -> finisher start (filters, body)", "finisher start -> etcd call (decode, patch, admission, validation)", "etcd call -> finisher end (etcd, encode)", "finisher end -> handler end (response)", "handler start -> handler end"}
	names := []string{"other"}
	for i := len(kinds) - 1; i >= 0; i-- {
		names = append([]string{kinds[i].name}, names...)
	}
	fmt.Printf("%d write requests\n", len(done))
	for _, kind := range names {
		cols := make([][]float64, len(phases))
		for _, q := range done {
			if q.kind != kind {
				continue
			}
			for i, d := range []trace.Time{q.b - q.a, q.c - q.b, q.d - q.c, q.e - q.d, q.e - q.a} {
				cols[i] = append(cols[i], float64(d)/1e6)
			}
		}
		if len(cols[0]) == 0 {
			continue
		}
		fmt.Printf("%s (%d):\n", kind, len(cols[0]))
		for i, c := range cols {
			sort.Float64s(c)
			fmt.Printf("  %-68s p50 %.3f ms  p90 %.3f ms\n", phases[i], c[len(c)/2], c[len(c)*9/10])
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
