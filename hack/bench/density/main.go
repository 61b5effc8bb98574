// Command density measures how many idle tenants one machine holds: a
// devcluster host plus N tenants, each with its host namespace, the chart's
// host objects and identity (devenv.Up, as knest dev up prepares them) and
// its own knestd with the syncer, all idle. It prints one JSON object.
//
//	go run ./hack/bench/density --knest-dev bin/knest-dev --knestd bin/knestd [--tenants 60] [--step 10] [--idle 5m]
//
// Tenants start --step at a time. After each step every knestd must be
// ready, and the machine must keep --reserve-mib of memory available;
// the first step that fails either (a knestd not ready within the start
// timeout, one that exited, memory below the reserve, or so little left
// that the next step would take it below) ends the ramp, and
// the JSON says which limit was hit and at how many tenants. Then, after
// --settle, each knestd's CPU time is read from /proc/<pid>/stat over
// --idle, as an average and as its busiest whole minute (with --perf, the
// first one is also recorded with perf), and its
// memory from /proc/<pid>/smaps_rollup (private: pages only it maps;
// shared: pages other processes map too, mostly the binary, which every
// knestd on the node maps). tenants_idle_ok counts the knestds that
// still run and answer /readyz at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/hack/bench/internal/perf"
	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
)

type summary struct {
	Median float64 `json:"median"`
	Mean   float64 `json:"mean"`
	Max    float64 `json:"max"`
}

type perTenant struct {
	// RSS is resident memory; PSS shares each shared page among the
	// processes that map it; Private and Shared split RSS by that.
	RSSMiB     summary `json:"rss_mib"`
	PSSMiB     summary `json:"pss_mib"`
	PrivateMiB summary `json:"private_mib"`
	SharedMiB  summary `json:"shared_mib"`
	// IdleCPUPercent is CPU time over the idle window, in percent of one
	// core.
	IdleCPUPercent summary `json:"idle_cpu_percent_core"`
	// IdleCPUBusiestMinutePercent is each tenant's busiest whole minute of
	// the idle window, in percent of one core: a tenant's periodic work
	// (garbage collection every minute or two, upstream's 5-minute
	// informer resyncs and watch-cache checks) falls into some minutes and
	// not others, so one minute alone can read above or below the
	// tenant's average.
	IdleCPUBusiestMinutePercent summary `json:"idle_cpu_busiest_minute_percent_core"`
}

type step struct {
	Tenants         int     `json:"tenants"`
	StartSeconds    float64 `json:"start_seconds"`
	MemAvailableMiB float64 `json:"mem_available_mib"`
}

type result struct {
	TenantsRequested int `json:"tenants_requested"`
	// TenantsStarted are the tenants whose knestd became ready.
	TenantsStarted int `json:"tenants_started"`
	// TenantsIdleOK are the tenants whose knestd still ran and answered
	// /readyz at the end, after the idle window.
	TenantsIdleOK int `json:"tenants_idle_ok"`
	// Limit is why the ramp stopped before TenantsRequested: "" if it did
	// not.
	Limit              string    `json:"limit,omitempty"`
	PerTenant          perTenant `json:"per_tenant"`
	IdleCPUAllPercent  []float64 `json:"idle_cpu_all_percent_core"`
	IdleSeconds        float64   `json:"idle_seconds"`
	HostRSSMiB         float64   `json:"host_rss_mib"`
	HostIdleCPUPercent float64   `json:"host_idle_cpu_percent_core"`
	// MachineBusyCores is the whole machine's busy CPU over the idle
	// window, in cores: on a shared machine, others' work is in it.
	MachineBusyCores   float64 `json:"machine_busy_cores"`
	MemTotalMiB        float64 `json:"mem_total_mib"`
	MemAvailableEndMiB float64 `json:"mem_available_end_mib"`
	Steps              []step  `json:"steps"`
	CPU                string  `json:"cpu"`
	LoadAverageStart   string  `json:"load_average_start"`
	LoadAverageEnd     string  `json:"load_average_end"`
	// PerfSelf and PerfComponents are where the first tenant's knestd
	// spent its CPU over the idle window (--perf).
	PerfSelf       []perf.Share `json:"perf_top_self,omitempty"`
	PerfComponents []perf.Share `json:"perf_components,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "density:", err)
		os.Exit(1)
	}
}

func run() error {
	knestDev := flag.String("knest-dev", "bin/knest-dev", "knest-dev binary (runs the devcluster host)")
	knestd := flag.String("knestd", "bin/knestd", "knestd binary (runs each tenant)")
	tenants := flag.Int("tenants", 60, "tenants to start")
	stepSize := flag.Int("step", 10, "tenants started at a time; memory and readiness are checked after each step")
	settle := flag.Duration("settle", 30*time.Second, "wait after the last start before measuring")
	idle := flag.Duration("idle", 5*time.Minute, "idle window over which CPU is measured (at least a minute; five covers one round of upstream's 5-minute resyncs)")
	reserve := flag.Float64("reserve-mib", 1024, "memory the machine must keep available; below it the ramp stops")
	profile := flag.String("profile", string(policy.DefaultProfile), "isolation profile of the tenants")
	perfFile := flag.String("perf", "", "record the first tenant's knestd with perf into this file over the idle window and report where its CPU went")
	dir := flag.String("dir", "", "working directory (default: a temporary one, removed afterwards)")
	var knestdArgs []string
	flag.Func("knestd-arg", "extra flag for every tenant's knestd (repeatable)", func(v string) error { knestdArgs = append(knestdArgs, v); return nil })
	flag.Parse()
	if *tenants < 1 || *stepSize < 1 {
		return errors.New("--tenants and --step must be at least 1")
	}
	if *idle < time.Minute {
		return errors.New("--idle must be at least a minute")
	}
	prof, err := policy.ParseProfile(*profile)
	if err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "knest-density-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	res := result{TenantsRequested: *tenants, CPU: proccpu.Model(), LoadAverageStart: proccpu.LoadAverage(), IdleSeconds: idle.Seconds()}
	res.MemTotalMiB, _ = meminfo("MemTotal:")
	res.MemTotalMiB = stats.Round(res.MemTotalMiB)

	// Every tenant's host side first (deferred: no knestd yet), as
	// `knest create` would prepare it; then the knestds, a step at a time.
	opts := devenv.Options{Dir: *dir, KnestDev: *knestDev, Knestd: *knestd, Host: devenv.DefaultHost(), Progress: os.Stderr}
	for i := 0; i < *tenants; i++ {
		opts.Tenants = append(opts.Tenants, devenv.TenantOptions{
			Tenant: devenv.Tenant{Name: fmt.Sprintf("d%03d", i), Profile: prof}, Deferred: true,
		})
	}
	env, err := devenv.Up(ctx, opts)
	if err != nil {
		return err
	}
	defer env.Stop()

	var up []*devenv.TenantEnv
	availBefore, _ := meminfo("MemAvailable:")
	for started := 0; started < *tenants && res.Limit == ""; {
		batch := env.Tenants[started:min(started+*stepSize, *tenants)]
		begin := time.Now()
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, t := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = env.StartKnestd(ctx, t, knestdArgs...)
			}()
		}
		wg.Wait()
		for i, t := range batch {
			if errs[i] == nil {
				up = append(up, t)
			}
		}
		started += len(batch)
		avail, _ := meminfo("MemAvailable:")
		res.Steps = append(res.Steps, step{Tenants: started, StartSeconds: stats.Round(time.Since(begin).Seconds()), MemAvailableMiB: stats.Round(avail)})
		switch {
		case errors.Join(errs...) != nil:
			res.Limit = fmt.Sprintf("a knestd of the step to %d tenants did not become ready: %v", started, errors.Join(errs...))
		case avail < *reserve:
			res.Limit = fmt.Sprintf("memory: %.0f MiB available at %d tenants, under the %.0f MiB reserve", avail, started, *reserve)
		case started < *tenants:
			next := min(*stepSize, *tenants-started)
			if need := nextStepNeeds(availBefore, avail, started, next); avail-need < *reserve {
				res.Limit = fmt.Sprintf("memory: %.0f MiB available at %d tenants; the next %d (~%.0f MiB at the %.0f MiB each the tenants so far took) would leave less than the %.0f MiB reserve",
					avail, started, next, need, (availBefore-avail)/float64(started), *reserve)
			}
		}
		fmt.Fprintf(os.Stderr, "%d tenants started (%d ready), %.0f MiB available\n", started, len(up), avail)
	}
	// Only the tenants that became ready are measured; one whose knestd
	// failed to start is in Limit.
	running := up
	res.TenantsStarted = len(running)
	if len(running) == 0 {
		return fmt.Errorf("no tenant became ready: %s", res.Limit)
	}

	fmt.Fprintf(os.Stderr, "settling for %s, then measuring for %s\n", *settle, *idle)
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	pids := []int{env.Host.Pid()}
	for _, t := range running {
		pids = append(pids, t.Knestd.Pid())
	}
	var rec *perf.Recording
	if *perfFile != "" && len(running) > 0 {
		if rec, err = perf.Record(running[0].Knestd.Pid(), *perfFile); err != nil {
			return err
		}
	}
	// A knestd that exits during the window fails the marks: the run
	// reports the error rather than figures without it.
	// A mark at the start, one after each whole minute, and one at the end.
	marks := []proccpu.Mark{proccpu.Take(pids...)}
	end := time.Now().Add(*idle)
	for next := time.Now().Add(time.Minute); ; next = next.Add(time.Minute) {
		last := !next.Before(end)
		if last {
			next = end
		}
		select {
		case <-time.After(time.Until(next)):
		case <-ctx.Done():
			return ctx.Err()
		}
		marks = append(marks, proccpu.Take(pids...))
		if last {
			break
		}
	}
	a, b := marks[0], marks[len(marks)-1]
	busiest, err := busiestMinute(marks, len(pids))
	if err != nil {
		return err
	}
	if rec != nil {
		if err := rec.Stop(); err != nil {
			return err
		}
		if res.PerfSelf, err = perf.TopSelf(ctx, *perfFile, 1.5); err != nil {
			return err
		}
		if res.PerfComponents, err = perf.Components(ctx, *perfFile); err != nil {
			return err
		}
	}
	cores, other, _, err := proccpu.Cores(a, b)
	if err != nil {
		return err
	}
	res.HostIdleCPUPercent = stats.Round(100 * cores[0])
	busy := other
	for _, c := range cores {
		busy += c
	}
	res.MachineBusyCores = stats.Round(busy)
	var rss, pss, private, shared, cpu, minute []float64
	for i, t := range running {
		m, err := smapsRollup(t.Knestd.Pid())
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t.Name, err)
		}
		rss, pss, private, shared = append(rss, m["Rss:"]), append(pss, m["Pss:"]),
			append(private, m["Private_Clean:"]+m["Private_Dirty:"]), append(shared, m["Shared_Clean:"]+m["Shared_Dirty:"])
		cpu = append(cpu, 100*cores[i+1])
		minute = append(minute, 100*busiest[i+1])
	}
	res.PerTenant = perTenant{RSSMiB: summarize(rss), PSSMiB: summarize(pss), PrivateMiB: summarize(private), SharedMiB: summarize(shared),
		IdleCPUPercent: summarize(cpu), IdleCPUBusiestMinutePercent: summarize(minute)}
	for _, c := range cpu {
		res.IdleCPUAllPercent = append(res.IdleCPUAllPercent, stats.Round(c))
	}
	if m, err := smapsRollup(env.Host.Pid()); err == nil {
		res.HostRSSMiB = stats.Round(m["Rss:"])
	}
	for _, t := range running {
		if ready(ctx, env, t) {
			res.TenantsIdleOK++
		}
	}
	res.MemAvailableEndMiB, _ = meminfo("MemAvailable:")
	res.MemAvailableEndMiB = stats.Round(res.MemAvailableEndMiB)
	res.LoadAverageEnd = proccpu.LoadAverage()
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// busiestMinute is, for each of n processes, its highest CPU use (in
// cores) between consecutive marks that are a whole minute apart; a
// shorter interval (the window's last, partial minute) is left out. The
// window is at least a minute, so its first interval always counts.
func busiestMinute(marks []proccpu.Mark, n int) ([]float64, error) {
	busiest := make([]float64, n)
	for i := 1; i < len(marks); i++ {
		cores, _, wall, err := proccpu.Cores(marks[i-1], marks[i])
		if err != nil {
			return nil, err
		}
		if wall < 59*time.Second {
			continue
		}
		for j, c := range cores {
			busiest[j] = max(busiest[j], c)
		}
	}
	return busiest, nil
}

// ready reports whether t's knestd still runs and its API server answers
// /readyz.
func ready(ctx context.Context, env *devenv.Env, t *devenv.TenantEnv) bool {
	select {
	case <-t.Knestd.Exited():
		return false
	default:
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Layout.TenantKubeconfig(t.Name))
	if err != nil {
		return false
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil && string(body) == "ok"
}

// smapsRollup reads /proc/<pid>/smaps_rollup, in MiB by field ("Rss:").
func smapsRollup(pid int) (map[string]float64, error) {
	return readKiB(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
}

// meminfo reads one field of /proc/meminfo, in MiB.
func meminfo(field string) (float64, error) {
	m, err := readKiB("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	v, ok := m[field]
	if !ok {
		return 0, fmt.Errorf("/proc/meminfo has no %s", field)
	}
	return v, nil
}

// readKiB reads "Name: value kB" lines into MiB by name.
func readKiB(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		if kb, err := strconv.ParseFloat(fields[1], 64); err == nil {
			out[fields[0]] = kb / 1024
		}
	}
	return out, sc.Err()
}

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	sorted := slices.Sorted(slices.Values(xs))
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return summary{
		Median: stats.Round(stats.Rank(sorted, 0.5)),
		Mean:   stats.Round(sum / float64(len(xs))),
		Max:    stats.Round(sorted[len(sorted)-1]),
	}
}

// nextStepNeeds forecasts the memory the next step of n tenants takes: n
// times what each tenant started so far took from the machine's available
// memory (from before the first step to now). The ramp stops before a step
// that would leave less than the reserve: past it, the kernel's OOM killer
// picks the largest process, the devcluster host (a run of 130 tenants
// with 2.1 GiB available at 120 lost it so), and the measurement with it.
func nextStepNeeds(availBefore, availNow float64, started, n int) float64 {
	if started == 0 || availBefore <= availNow {
		return 0
	}
	return float64(n) * (availBefore - availNow) / float64(started)
}
