// Command wakeups attributes the goroutine wake-ups in a Go runtime
// execution trace (/debug/pprof/trace) to where each goroutine waited: for
// every goroutine that goes from waiting to runnable it takes the stack the
// goroutine blocked with, names it by its innermost frame outside the runtime
// and the standard library's blocking primitives and by the goroutine's
// outermost frame (its function), and counts per second of trace. It also
// counts the processors (Ps) that leave idle, each charged to the first
// goroutine that runs on it: those are the wake-ups that need an OS thread.
//
// A goroutine that blocked before the trace began has no stack in it; with
// -goroutines (a /debug/pprof/goroutine?debug=2 dump taken right after the
// trace) it is named by its stack in the dump.
//
//	go run ./hack/bench/idle/wakeups [-top 40] [-json] [-goroutines dump.txt] trace.out
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

// row is one source of wake-ups.
type row struct {
	Site          string  `json:"site"`
	Goroutine     string  `json:"goroutine"`
	UnblocksPerS  float64 `json:"unblocks_per_second"`
	ProcWakesPerS float64 `json:"proc_wakes_per_second"`
	Goroutines    int     `json:"goroutines"`
}

type counts struct {
	unblocks, procWakes int
	gs                  map[trace.GoID]bool
}

func main() {
	top := flag.Int("top", 40, "rows to print")
	asJSON := flag.Bool("json", false, "print JSON")
	dump := flag.String("goroutines", "", "goroutine dump (debug=2) naming goroutines that blocked before the trace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wakeups [-top N] [-json] trace.out")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fail(err)
	}

	blocked := map[trace.GoID][2]string{} // goroutine -> (site, function) it waits in
	fromDump := map[trace.GoID][2]string{}
	if *dump != "" {
		if fromDump, err = readDump(*dump); err != nil {
			fail(err)
		}
	}
	pending := map[trace.ProcID]bool{}     // Ps that left idle and have run nothing yet
	lastSite := map[trace.GoID][2]string{} // goroutine -> (site, function) of its last unblock
	byKey := map[[2]string]*counts{}
	var first, last trace.Time
	var totalUnblocks, totalWakes int
	get := func(k [2]string) *counts {
		c := byKey[k]
		if c == nil {
			c = &counts{gs: map[trace.GoID]bool{}}
			byKey[k] = c
		}
		return c
	}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceProc:
			from, to := st.Proc()
			switch {
			case from == trace.ProcIdle && to == trace.ProcRunning:
				pending[st.Resource.Proc()] = true
				totalWakes++
			case to == trace.ProcIdle && pending[st.Resource.Proc()]:
				// Woken to look for work (a spinning M) and found none.
				delete(pending, st.Resource.Proc())
				get([2]string{"(P woke and ran no goroutine)", "-"}).procWakes++
			}
		case trace.ResourceGoroutine:
			g := st.Resource.Goroutine()
			from, to := st.Goroutine()
			switch {
			case to == trace.GoWaiting:
				k := summarize(st.Stack)
				if k[0] == "" {
					if dk, ok := fromDump[g]; ok {
						k = dk
					} else {
						k = [2]string{"(no stack)", "?"}
					}
				}
				blocked[g] = k
			case from == trace.GoWaiting && to == trace.GoRunnable:
				k, ok := blocked[g]
				if !ok {
					k = [2]string{"(blocked before the trace)", "?"}
				}
				c := get(k)
				c.unblocks++
				c.gs[g] = true
				lastSite[g] = k
				totalUnblocks++
			case to == trace.GoRunning:
				if p := ev.Proc(); pending[p] {
					delete(pending, p)
					k, ok := lastSite[g]
					if !ok || from != trace.GoRunnable {
						k = [2]string{"(not unblocked in the trace)", fmt.Sprint(from)}
					}
					get(k).procWakes++
				}
			}
		}
	}
	secs := float64(last-first) / 1e9
	rows := make([]row, 0, len(byKey))
	for k, c := range byKey {
		rows = append(rows, row{Site: k[0], Goroutine: k[1], UnblocksPerS: float64(c.unblocks) / secs, ProcWakesPerS: float64(c.procWakes) / secs, Goroutines: len(c.gs)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].UnblocksPerS > rows[j].UnblocksPerS })
	if len(rows) > *top {
		rows = rows[:*top]
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": secs, "unblocks_per_second": float64(totalUnblocks) / secs, "proc_wakes_per_second": float64(totalWakes) / secs, "sources": rows})
		return
	}
	fmt.Printf("%.1f s of trace: %.0f goroutine unblocks/s, %.0f P wake-ups/s\n", secs, float64(totalUnblocks)/secs, float64(totalWakes)/secs)
	fmt.Printf("%8s %8s %6s  %s\n", "unblk/s", "Pwake/s", "gs", "site <- goroutine")
	for _, r := range rows {
		fmt.Printf("%8.1f %8.1f %6d  %s <- %s\n", r.UnblocksPerS, r.ProcWakesPerS, r.Goroutines, r.Site, r.Goroutine)
	}
}

// summarize names a blocking stack by its innermost frame outside the
// runtime and the blocking primitives, and by its outermost frame.
func summarize(s trace.Stack) [2]string {
	var frames []string
	for f := range s.Frames() {
		frames = append(frames, f.Func)
	}
	return summarizeFrames(frames)
}

// summarizeFrames is summarize on function names, innermost first; it
// returns an empty site for no frames.
func summarizeFrames(frames []string) [2]string {
	if len(frames) == 0 {
		return [2]string{}
	}
	site := frames[len(frames)-1]
	for _, fn := range frames {
		if !primitive(fn) {
			site = fn
			break
		}
	}
	outer := frames[len(frames)-1]
	for i := len(frames) - 1; i >= 0 && primitive(frames[i]); i-- {
		outer = frames[i]
	}
	return [2]string{trim(site), trim(outer)}
}

func primitive(fn string) bool {
	for _, p := range []string{"runtime.", "sync.", "time.", "internal/", "context.", "k8s.io/apimachinery/pkg/util/wait.", "k8s.io/utils/clock."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

func trim(fn string) string {
	for _, p := range []string{"k8s.io/kubernetes/", "k8s.io/", "go.etcd.io/etcd/", "github.com/knest-dev/knest/", "google.golang.org/"} {
		if strings.HasPrefix(fn, p) {
			return strings.TrimPrefix(fn, p)
		}
	}
	return fn
}

// readDump reads a goroutine dump (debug=2): "goroutine N [state]:" then
// pairs of lines, the function and its file.
func readDump(path string) (map[trace.GoID][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[trace.GoID][2]string{}
	for _, block := range strings.Split(string(b), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		var id trace.GoID
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "goroutine ") {
			continue
		}
		if _, err := fmt.Sscanf(lines[0], "goroutine %d", &id); err != nil {
			continue
		}
		var frames []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
				continue
			}
			fn := l
			if i := strings.LastIndex(fn, "("); i > 0 {
				fn = fn[:i]
			}
			frames = append(frames, fn)
		}
		out[id] = summarizeFrames(frames)
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wakeups:", err)
	os.Exit(1)
}
