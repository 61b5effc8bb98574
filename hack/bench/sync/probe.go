package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricsSnapshot is one scrape of the syncer's metrics endpoint.
type metricsSnapshot []sample

// scrape reads the metrics endpoint. Only modules the repository already
// requires directly are used, so the text format is parsed here.
func scrape(ctx context.Context, address string) (metricsSnapshot, error) {
	var m metricsSnapshot
	err := readKnestd(ctx, "http://"+address+"/metrics", 10*time.Second, "metrics", func(r io.Reader) (err error) {
		m, err = parseMetrics(r)
		return err
	})
	return m, err
}

// readKnestd GETs url from knestd within timeout and hands read the body;
// what names the endpoint in errors.
func readKnestd(ctx context.Context, url string, timeout time.Duration, what string, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("failed to read knestd %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("knestd %s: %s", what, resp.Status)
	}
	return read(resp.Body)
}

func parseMetrics(r io.Reader) (metricsSnapshot, error) {
	var out metricsSnapshot
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSample parses `name{k="v",...} value [timestamp]`.
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, errors.New("bad label")
			}
			key := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				val.WriteByte(line[j])
			}
			if j == len(line) {
				return s, errors.New("unterminated label value")
			}
			s.labels[key] = val.String()
			line = line[j+1:]
		}
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// sum adds the samples of a metric whose labels include match.
func (m metricsSnapshot) sum(name string, match map[string]string) (float64, bool) {
	total, found := 0.0, false
outer:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue outer
			}
		}
		total += s.value
		found = true
	}
	return total, found
}

// delta returns, for every combination of the given labels, how much a
// counter grew from before to after (zero growth left out).
func delta(before, after metricsSnapshot, name string, match map[string]string, by ...string) map[string]float64 {
	key := func(s sample) (string, bool) {
		for k, v := range match {
			if s.labels[k] != v {
				return "", false
			}
		}
		parts := make([]string, len(by))
		for i, l := range by {
			parts[i] = s.labels[l]
		}
		return strings.Join(parts, " "), true
	}
	out := map[string]float64{}
	for _, s := range after {
		if s.name != name {
			continue
		}
		if k, ok := key(s); ok {
			out[k] += s.value
		}
	}
	for _, s := range before {
		if s.name != name {
			continue
		}
		if k, ok := key(s); ok {
			out[k] -= s.value
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// userHZ is the unit of the CPU times in /proc; fixed at 100 for user
// space on Linux whatever the kernel's HZ.
const userHZ = 100

// procCPU returns the CPU seconds (user + system) a process has used.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / userHZ, nil
}

// systemCPU returns the busy CPU seconds of the whole machine (all cores):
// everything but idle and iowait.
func systemCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	busy := 0.0
	for i, v := range f[1:] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, err
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is counted in user already.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += x
	}
	return busy / userHZ, nil
}

// cpuMark is the CPU seconds of the processes of interest at one moment.
type cpuMark struct {
	at                    time.Time
	host, knestd, bench   float64
	system                float64
	hostPid, knestdPid    int
	hostErr, knestdErr    error
	benchErr, systemError error
}

func markCPU(hostPid, knestdPid int) cpuMark {
	m := cpuMark{at: time.Now(), hostPid: hostPid, knestdPid: knestdPid}
	m.host, m.hostErr = procCPU(hostPid)
	m.knestd, m.knestdErr = procCPU(knestdPid)
	m.bench, m.benchErr = procCPU(os.Getpid())
	m.system, m.systemError = systemCPU()
	return m
}

// cpuUse is the cores each process kept busy between two marks; other is
// the rest of the machine (other engineers' builds, and perf if it runs).
type cpuUse struct {
	WallSeconds float64 `json:"wall_seconds"`
	HostCores   float64 `json:"host_cores"`
	KnestdCores float64 `json:"knestd_cores"`
	BenchCores  float64 `json:"bench_cores"`
	OtherCores  float64 `json:"other_cores"`
	// *MSPerPod is the CPU time each process spent per pod of the run.
	HostMSPerPod   float64 `json:"host_cpu_ms_per_pod"`
	KnestdMSPerPod float64 `json:"knestd_cpu_ms_per_pod"`
}

// cpuBetween returns the CPU use between two marks, per pod of the n pods
// of a run.
func cpuBetween(a, b cpuMark, n int) (cpuUse, error) {
	if err := errors.Join(a.hostErr, a.knestdErr, a.benchErr, a.systemError, b.hostErr, b.knestdErr, b.benchErr, b.systemError); err != nil {
		return cpuUse{}, err
	}
	wall := b.at.Sub(a.at).Seconds()
	u := cpuUse{
		WallSeconds:    round(wall),
		HostCores:      round((b.host - a.host) / wall),
		KnestdCores:    round((b.knestd - a.knestd) / wall),
		BenchCores:     round((b.bench - a.bench) / wall),
		HostMSPerPod:   round(1000 * (b.host - a.host) / float64(n)),
		KnestdMSPerPod: round(1000 * (b.knestd - a.knestd) / float64(n)),
	}
	u.OtherCores = round(max(0, (b.system-a.system)/wall-u.HostCores-u.KnestdCores-u.BenchCores))
	return u, nil
}

// profiler samples knestd's stacks with perf while the tenant run lasts.
// knestd serves no pprof endpoint, and its binary keeps its symbols, so
// perf names Go functions.
type profiler struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

func startPerf(pid int, out string) (*profiler, error) {
	cmd := exec.Command("perf", "record", "-F", "199", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start perf: %w", err)
	}
	p := &profiler{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop ends the recording: perf writes its file on SIGINT.
func (p *profiler) stop() error {
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

// share is a function's or a component's share of the sampled CPU time.
type share struct {
	Percent float64 `json:"percent"`
	Name    string  `json:"name"`
}

var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+\S+\s+\[[.k]\]\s+(.+?)\s*$`)

// perfTopSelf returns the functions that were on CPU themselves.
func perfTopSelf(ctx context.Context, file string, limit float64) ([]share, error) {
	cmd := exec.CommandContext(ctx, "perf", "report", "-i", file, "--stdio", "--no-children", "--sort", "dso,sym", "-g", "none",
		"--percent-limit", strconv.FormatFloat(limit, 'f', -1, 64))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var shares []share
	for _, line := range strings.Split(string(out), "\n") {
		m := perfLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pct, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		shares = append(shares, share{Percent: pct, Name: m[2]})
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

// perfComponents reads the recording's stacks and returns each
// component's share of the samples.
func perfComponents(ctx context.Context, file string) ([]share, error) {
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
	var shares []share
	for name, n := range counts {
		shares = append(shares, share{Percent: round(100 * float64(n) / float64(total)), Name: name})
	}
	slices.SortFunc(shares, func(a, b share) int { return cmp.Compare(b.Percent, a.Percent) })
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
