// Package perf records a process with Linux perf and summarises where its
// CPU time went: the functions on CPU themselves, and the share of each of
// knestd's components (its tenant API server by verb, etcd, the syncer,
// the controllers, the transport), recognised by the frames of each
// sampled stack.
package perf

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

// Recording is a running `perf record` of one process.
type Recording struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// Record samples the stacks of process pid into file out, 199 times a
// second, until Stop. Go binaries that keep their symbols (knestd does)
// show Go function names.
func Record(pid int, out string) (*Recording, error) {
	cmd := exec.Command("perf", "record", "-F", "199", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start perf: %w", err)
	}
	p := &Recording{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// Stop ends the recording: perf writes its file on SIGINT.
func (p *Recording) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			// perf exits non-zero after SIGINT although the data is written.
			return nil
		}
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("perf did not stop within 30s")
	}
}

// Share is a function's or a component's share of the sampled CPU time.
type Share struct {
	Percent float64 `json:"percent"`
	Name    string  `json:"name"`
}

var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+\S+\s+\[[.k]\]\s+(.+?)\s*$`)

// TopSelf returns the functions that were on CPU themselves, each with
// at least limit percent of the samples.
func TopSelf(ctx context.Context, file string, limit float64) ([]Share, error) {
	cmd := exec.CommandContext(ctx, "perf", "report", "-i", file, "--stdio", "--no-children", "--sort", "dso,sym", "-g", "none",
		"--percent-limit", strconv.FormatFloat(limit, 'f', -1, 64))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var shares []Share
	for _, line := range strings.Split(string(out), "\n") {
		m := perfLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pct, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		shares = append(shares, Share{Percent: pct, Name: m[2]})
	}
	return shares, nil
}

// components sorts knestd's samples by what they were doing: the first
// rule any frame of a stack matches wins, so the specific ones come first
// (a pod status patch runs inside the API server's handler chain).
var components = []struct {
	name   string
	frames []string
}{
	{"GC background marking", []string{"runtime.gcBgMarkWorker"}},
	{"tenant API: TokenRequest", []string{"TokenREST"}},
	{"tenant API: pods/binding", []string{"BindingREST"}},
	{"tenant API: patch (pod status)", []string{"handlers.PatchResource", "patchResource", "jsonPatcher"}},
	{"tenant API: create (pods, events)", []string{"handlers.createHandler", "handlers.CreateResource", "handlers.CreateNamedResource"}},
	{"tenant API: update", []string{"handlers.UpdateResource"}},
	{"tenant API: get/list", []string{"handlers.getResourceHandler", "handlers.GetResource", "handlers.ListResource"}},
	{"tenant API: watch serving", []string{"handlers.serveWatch", "handlers.(*WatchServer)", "cacher.(*Cacher).dispatch", "cacher.(*cacheWatcher)", "cacher.(*Cacher).processEvent", "etcd3.(*watchChan)"}},
	{"tenant API: handler chain (authn, authz, APF, audit)", []string{"k8s.io/apiserver/pkg/endpoints", "k8s.io/apiserver/pkg/server", "finisher.finishRequest"}},
	{"syncer: reconcilers", []string{"knest/pkg/syncer."}},
	{"syncer: controller-runtime queues, caches, informers", []string{"sigs.k8s.io/controller-runtime/", "k8s.io/client-go/tools/cache."}},
	{"tenant etcd", []string{"go.etcd.io/etcd/server", "go.etcd.io/raft", "go.etcd.io/bbolt"}},
	{"tenant controller-manager", []string{"k8s.io/kubernetes/pkg/controller"}},
	{"transport (http2, tls, grpc)", []string{"golang.org/x/net/http2", "crypto/tls", "net/http.", "google.golang.org/grpc"}},
}

// Components reads the recording's stacks and returns each component's
// share of the samples, largest first.
func Components(ctx context.Context, file string) ([]Share, error) {
	cmd := exec.CommandContext(ctx, "perf", "script", "-i", file, "-F", "comm,tid,ip,sym")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	counts := map[string]int{}
	total := 0
	var stack []string
	flush := func() {
		if len(stack) == 0 {
			return
		}
		total++
		counts[classify(stack)]++
		stack = stack[:0]
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] != '\t' && line[0] != ' ':
			// A sample's header line: comm and thread.
			flush()
		default:
			// "\t<ip> <symbol>"
			if _, sym, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
				stack = append(stack, sym)
			}
		}
	}
	flush()
	if err := errors.Join(sc.Err(), cmd.Wait()); err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	if total == 0 {
		return nil, errors.New("perf recorded no samples")
	}
	var shares []Share
	for name, n := range counts {
		shares = append(shares, Share{Percent: stats.Round(100 * float64(n) / float64(total)), Name: name})
	}
	slices.SortFunc(shares, func(a, b Share) int { return cmp.Compare(b.Percent, a.Percent) })
	return shares, nil
}

func classify(stack []string) string {
	for _, c := range components {
		for _, f := range stack {
			for _, prefix := range c.frames {
				if strings.Contains(f, prefix) {
					return c.name
				}
			}
		}
	}
	return "other (Go runtime: stack growth, scheduling, GC assists outside these)"
}
