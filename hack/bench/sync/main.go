// Command sync measures the syncer against the host cluster it syncs into.
// It starts a devcluster sized for the pods and a knestd syncing into one
// host namespace (package syncenv, with devenv.Up as knest dev up does),
// then times the same N pods twice in one run:
//
//   - direct: created in another host namespace by a client with the
//     syncer's host QPS/burst budget, until all are Running on the host;
//   - tenant: created in the tenant, until all are Running as the tenant
//     sees them.
//
// The direct run goes first and its pods are deleted before the tenant run
// (--tenant-first swaps them). The tenant's client is unthrottled; both
// sides create with the same concurrency. The direct pods get the
// RuntimeClass the syncer puts on the tenant's host pods (the isolation
// profile's), so both runs land on the same kind of node.
//
// It prints one JSON object: both times and their ratio, the per-pod
// latencies tenant create -> host create and host Running -> tenant Running
// (p50/p99), the same latencies for pods created at a pace below the budget
// (what one pod pays when the syncer is not queueing), the syncer's host
// requests and writes, the CPU each process used, with --heap knestd's heap
// per synced pod, and with --perf where knestd's CPU went. The pieces are
// in hack/bench/internal: podtimeline (watches, per-pod times, latency),
// metrics (Prometheus text through expfmt), heap, perf, proccpu, stats.
//
//	go run ./hack/bench/sync --knest-dev bin/knest-dev --knestd bin/knestd [--pods 1000] [--qps 50 --burst 100] [--heap] [--perf FILE]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/hack/bench/internal/heap"
	"github.com/knest-dev/knest/hack/bench/internal/metrics"
	"github.com/knest-dev/knest/hack/bench/internal/perf"
	"github.com/knest-dev/knest/hack/bench/internal/podtimeline"
	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
	"github.com/knest-dev/knest/hack/bench/internal/syncenv"
	"github.com/knest-dev/knest/pkg/translate"
)

const (
	// tenantName is the tenant's name, and so the marker label's value on
	// its host objects.
	tenantName = syncenv.TenantName
	// tenantNamespace is where the tenant's pods are created.
	tenantNamespace = "default"
	// appLabel marks the benchmark's pods on both sides.
	appLabel    = "app"
	appValue    = "bench-sync"
	bulkPrefix  = "bench-"
	pacedPrefix = "paced-"
	warmPrefix  = "warmup-"
	// settle is the pause between phases: the previous phase's tail (KWOK,
	// garbage collection) ends and the syncer's token buckets refill.
	settle = 5 * time.Second
	// Targets from the issue.
	targetRatio     = 1.10
	targetLatencyMS = 5.0
)

type options struct {
	knestDev, knestd string
	pods             int
	qps              float64
	burst, workers   int
	heap             bool
	heapProfiles     string
	tenantFirst      bool
	skipDirect       bool
	automount        bool
	paced            int
	pacedRate        float64
	perf             string
	timeout          time.Duration
	keep             bool
	knestdArgs       []string
}

type result struct {
	N       int     `json:"n"`
	QPS     float64 `json:"qps"`
	Burst   int     `json:"burst"`
	Workers int     `json:"workers"`
	Order   string  `json:"order"`
	// AutomountToken: the pods mount a service-account token, so the
	// syncer issues one and writes it to a host Secret per pod.
	AutomountToken bool `json:"automount_token"`
	// HostNodes is the devcluster's nodes in each pool (general and
	// sandboxed).
	HostNodes int `json:"host_nodes_per_pool"`
	// HostRuntimeClass is the RuntimeClass of the tenant's host pods (set
	// by its isolation profile), given to the direct pods too.
	HostRuntimeClass string  `json:"host_runtime_class,omitempty"`
	HostPodCIDR      string  `json:"host_pod_cidr"`
	DirectSeconds    float64 `json:"direct_seconds,omitempty"`
	TenantSeconds    float64 `json:"tenant_seconds"`
	Ratio            float64 `json:"ratio,omitempty"`
	// *CreateSeconds is how long the creating client took to create all N.
	DirectCreateSeconds float64 `json:"direct_create_seconds,omitempty"`
	TenantCreateSeconds float64 `json:"tenant_create_seconds"`
	// TenantHostCreatedSeconds is when the last host pod of the tenant run
	// appeared on the host.
	TenantHostCreatedSeconds float64       `json:"tenant_host_created_seconds"`
	CreateLatency            stats.Latency `json:"create_latency_ms"`
	StatusLatency            stats.Latency `json:"status_latency_ms"`
	DirectCreateToRunning    stats.Latency `json:"direct_create_to_running_ms,omitzero"`
	TenantCreateToRunning    stats.Latency `json:"tenant_create_to_running_ms"`
	Paced                    *paced        `json:"paced,omitempty"`
	syncenv.SyncerActivity
	CPUDirect        *syncenv.CPUUse `json:"cpu_direct_run,omitempty"`
	CPUTenant        syncenv.CPUUse  `json:"cpu_tenant_run"`
	Heap             *heap.Result    `json:"heap,omitempty"`
	HeapBytesPerPod  float64         `json:"heap_bytes_per_pod,omitempty"`
	HeapByOwner      []heap.Share    `json:"heap_growth_by_owner,omitempty"`
	PerfFile         string          `json:"perf_file,omitempty"`
	PerfSelf         []perf.Share    `json:"perf_top_self,omitempty"`
	PerfComponents   []perf.Share    `json:"perf_components,omitempty"`
	Targets          targets         `json:"targets"`
	Go               string          `json:"go"`
	CPUs             int             `json:"cpus"`
	CPUModel         string          `json:"cpu_model"`
	LoadAverageStart string          `json:"load_average_start"`
	LoadAverageEnd   string          `json:"load_average_end"`
	Notes            []string        `json:"notes"`
	// tenantStart and directStart are when each run's first Create began.
	tenantStart, directStart time.Time
}

type paced struct {
	Pods                  int           `json:"pods"`
	RatePerSecond         float64       `json:"rate_per_second"`
	CreateLatency         stats.Latency `json:"create_latency_ms"`
	StatusLatency         stats.Latency `json:"status_latency_ms"`
	DirectCreateToRunning stats.Latency `json:"direct_create_to_running_ms,omitzero"`
	TenantCreateToRunning stats.Latency `json:"tenant_create_to_running_ms"`
	// DirectCallToHostAdded is what create_latency_ms holds one host POST
	// of: the direct client's Create called -> the host watch's ADDED.
	// The syncer adds what create_latency_ms has beyond it (the tenant
	// watch, its queue, its checks).
	DirectCallToHostAdded stats.Latency `json:"direct_create_call_to_host_added_ms,omitzero"`
	// The status latency in steps: KWOK starts the host pod, the syncer
	// binds the tenant pod to a virtual node, then copies the status.
	HostScheduledToRunning     stats.Latency `json:"host_scheduled_to_host_running_ms"`
	HostScheduledToTenantBound stats.Latency `json:"host_scheduled_to_tenant_bound_ms"`
	TenantBoundToRunning       stats.Latency `json:"tenant_bound_to_tenant_running_ms"`
	// What the syncer did for the tenant's paced pods (syncer_writes:
	// how many serial tenant writes a pod's status path took).
	syncenv.SyncerActivity
}

type targets struct {
	Ratio            float64 `json:"ratio_max"`
	RatioMet         *bool   `json:"ratio_met,omitempty"`
	LatencyP50MS     float64 `json:"added_latency_p50_max_ms"`
	PacedCreateMet   *bool   `json:"paced_create_p50_met,omitempty"`
	PacedStatusMet   *bool   `json:"paced_status_p50_met,omitempty"`
	BulkCreateP50Met bool    `json:"bulk_create_p50_met"`
	BulkStatusP50Met bool    `json:"bulk_status_p50_met"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sync bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	flag.StringVar(&o.knestDev, "knest-dev", "bin/knest-dev", "knest-dev binary (runs the devcluster)")
	flag.StringVar(&o.knestd, "knestd", "bin/knestd", "knestd binary")
	flag.IntVar(&o.pods, "pods", 1000, "pods per run")
	flag.Float64Var(&o.qps, "qps", 50, "host QPS of the syncer (--host-qps) and of the direct creator")
	flag.IntVar(&o.burst, "burst", 100, "host burst of the syncer (--host-burst) and of the direct creator")
	flag.IntVar(&o.workers, "workers", 16, "concurrent creates on each side (the syncer's pod workers are 16)")
	flag.BoolVar(&o.heap, "heap", false, "measure knestd's heap before the tenant run and once all its pods are Running")
	flag.StringVar(&o.heapProfiles, "heap-profiles", "", "with --heap, keep knestd's heap profiles (for go tool pprof) in this directory")
	flag.BoolVar(&o.tenantFirst, "tenant-first", false, "run the tenant before the direct run")
	flag.BoolVar(&o.skipDirect, "skip-direct", false, "no direct run (for --heap at large N)")
	flag.BoolVar(&o.automount, "automount-token", true, "pods mount a service-account token (the default for pods)")
	flag.IntVar(&o.paced, "paced", 100, "pods created one by one below the budget after the bulk runs, for per-pod latency; 0: none")
	flag.Float64Var(&o.pacedRate, "paced-rate", 5, "pods per second of the paced phase")
	flag.StringVar(&o.perf, "perf", "", "record knestd with perf during the tenant run into this file")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "limit of each phase")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory and logs")
	flag.Func("knestd-arg", "extra knestd flag (repeatable)", func(v string) error {
		o.knestdArgs = append(o.knestdArgs, v)
		return nil
	})
	flag.Parse()
	if o.pods < 1 || o.qps <= 0 || o.burst < 1 || o.workers < 1 || o.paced < 0 || o.pacedRate <= 0 {
		return errors.New("--pods, --qps, --burst, --workers and --paced-rate must be positive, --paced not negative")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "knest-bench-sync-")
	if err != nil {
		return err
	}
	keep := o.keep
	defer func() {
		if keep {
			fmt.Fprintln(os.Stderr, "sync bench: data and logs kept in", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	// One bulk run's pods at a time (the first run's are deleted before
	// the second), plus the paced and warm-up pods.
	e, err := syncenv.Start(ctx, syncenv.Config{
		Dir: dir, KnestDev: o.knestDev, Knestd: o.knestd, Pods: o.pods + 2*o.paced + 2, QPS: o.qps, Burst: o.burst, KnestdArgs: o.knestdArgs,
	})
	if e != nil {
		defer func() {
			if err := e.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "sync bench:", err)
			}
		}()
	}
	// The logs explain a failure; an interrupted run leaves nothing.
	if err != nil {
		keep = keep || ctx.Err() == nil
		return err
	}
	res, err := bench(ctx, e, o)
	if err != nil {
		keep = keep || ctx.Err() == nil
		return err
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func warmUp(ctx context.Context, s podtimeline.Creator) error {
	if err := s.Create(ctx, []string{warmPrefix + "0"}, 1); err != nil {
		return err
	}
	return s.Timeline.WaitFor(ctx, s.Name+" warm-up pod Running", warmPrefix, 1, podtimeline.IsRunning, time.Minute)
}

// hostRuntimeClass returns the RuntimeClass of the tenant's warm-up pod on
// the host: what the syncer set.
func hostRuntimeClass(ctx context.Context, e *syncenv.Env) (string, error) {
	list, err := e.HostAdmin.CoreV1().Pods(e.TenantNamespace).List(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=" + tenantName})
	if err != nil {
		return "", fmt.Errorf("failed to list the tenant's pods in host cluster: %w", err)
	}
	for _, p := range list.Items {
		if id, ok := translate.IdentityOf(tenantName, &p); ok && id.Name == warmPrefix+"0" {
			return ptr.Deref(p.Spec.RuntimeClassName, ""), nil
		}
	}
	return "", errors.New("the host pod of the tenant's warm-up pod is gone")
}

func bench(ctx context.Context, e *syncenv.Env, o options) (*result, error) {
	// The watches end with the benchmark, before the processes stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &result{
		N: o.pods, QPS: o.qps, Burst: o.burst, Workers: o.workers, AutomountToken: o.automount,
		HostNodes: e.Nodes, HostPodCIDR: e.PodCIDR, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), CPUModel: proccpu.Model(),
		LoadAverageStart: proccpu.LoadAverage(),
		Targets:          targets{Ratio: targetRatio, LatencyP50MS: targetLatencyMS},
	}
	selector := appLabel + "=" + appValue
	byName := func(p *corev1.Pod) string { return p.Name }
	// A host pod of the tenant stands for the tenant pod its annotations name.
	byTenantName := func(p *corev1.Pod) string {
		if id, ok := translate.IdentityOf(tenantName, p); ok && id.Kind == "Pod" && id.Namespace == tenantNamespace {
			return id.Name
		}
		return ""
	}
	directTL, tenantHostTL, tenantTL := podtimeline.New(), podtimeline.New(), podtimeline.New()
	// All three watches run through both runs, so each run pays for them.
	if err := errors.Join(
		podtimeline.Watch(ctx, e.HostAdmin, e.DirectNamespace, selector, byName, directTL),
		podtimeline.Watch(ctx, e.HostAdmin, e.TenantNamespace, translate.LabelTenant+"="+tenantName, byTenantName, tenantHostTL),
		podtimeline.Watch(ctx, e.Tenant, tenantNamespace, selector, byName, tenantTL),
	); err != nil {
		return nil, err
	}
	tenant := podtimeline.Creator{Name: "tenant", Pods: e.Tenant.CoreV1().Pods(tenantNamespace), Timeline: tenantTL,
		Pod: func(name string) *corev1.Pod { return benchPod(name, o.automount, "") }}
	// Warm-up: the first pod of each side takes the paths that run once
	// (the syncer's first virtual Node, connection set-up). The tenant's
	// goes first: its host pod shows the RuntimeClass the tenant's isolation
	// profile forces, which the direct pods then get too, so both runs put
	// the same pods on the same kind of node.
	if err := warmUp(ctx, tenant); err != nil {
		return nil, err
	}
	runtimeClass, err := hostRuntimeClass(ctx, e)
	if err != nil {
		return nil, err
	}
	res.HostRuntimeClass = runtimeClass
	direct := podtimeline.Creator{Name: "direct", Pods: e.Direct.CoreV1().Pods(e.DirectNamespace), Timeline: directTL,
		Pod: func(name string) *corev1.Pod { return benchPod(name, o.automount, runtimeClass) }}
	if err := warmUp(ctx, direct); err != nil {
		return nil, err
	}
	time.Sleep(settle)

	names := podtimeline.Names(bulkPrefix, o.pods)
	order := []podtimeline.Creator{direct, tenant}
	res.Order = "direct first, then tenant (the direct pods are deleted in between)"
	if o.tenantFirst {
		order = []podtimeline.Creator{tenant, direct}
		res.Order = "tenant first, then direct (the tenant pods are deleted in between)"
	}
	if o.skipDirect {
		order = []podtimeline.Creator{tenant}
		res.Order = "tenant only"
	}
	for i, s := range order {
		var err error
		if s.Name == "direct" {
			err = directRun(ctx, e, o, s, names, res)
		} else {
			err = tenantRun(ctx, e, o, s, names, res)
		}
		if err != nil {
			return nil, err
		}
		if i < len(order)-1 {
			if err := deleteRun(ctx, e, s, directTL, tenantHostTL, o); err != nil {
				return nil, err
			}
		}
		time.Sleep(settle)
	}

	tenantSnap, hostSnap := tenantTL.Snapshot(bulkPrefix), tenantHostTL.Snapshot(bulkPrefix)
	res.TenantSeconds = stats.Round(podtimeline.Latest(names, tenantSnap, podtimeline.RunningAt).Sub(res.tenantStart).Seconds())
	res.TenantHostCreatedSeconds = stats.Round(podtimeline.Latest(names, hostSnap, podtimeline.AddedAt).Sub(res.tenantStart).Seconds())
	res.CreateLatency = podtimeline.Between(names, tenantSnap, hostSnap, podtimeline.CreatedAt, podtimeline.AddedAt)
	res.StatusLatency = podtimeline.Between(names, hostSnap, tenantSnap, podtimeline.RunningAt, podtimeline.RunningAt)
	res.TenantCreateToRunning = podtimeline.Between(names, tenantSnap, tenantSnap, podtimeline.CreatedAt, podtimeline.RunningAt)
	if !o.skipDirect {
		directSnap := directTL.Snapshot(bulkPrefix)
		res.DirectSeconds = stats.Round(podtimeline.Latest(names, directSnap, podtimeline.RunningAt).Sub(res.directStart).Seconds())
		res.Ratio = stats.Round(res.TenantSeconds / res.DirectSeconds)
		res.DirectCreateToRunning = podtimeline.Between(names, directSnap, directSnap, podtimeline.CreatedAt, podtimeline.RunningAt)
		res.Targets.RatioMet = ptr.To(res.Ratio <= targetRatio)
	}
	res.Targets.BulkCreateP50Met = res.CreateLatency.P50 <= targetLatencyMS
	res.Targets.BulkStatusP50Met = res.StatusLatency.P50 <= targetLatencyMS

	if o.paced > 0 {
		p, err := pacedRuns(ctx, e, o, direct, tenant, tenantHostTL)
		if err != nil {
			return nil, err
		}
		res.Paced = p
		res.Targets.PacedCreateMet = ptr.To(p.CreateLatency.P50 <= targetLatencyMS)
		res.Targets.PacedStatusMet = ptr.To(p.StatusLatency.P50 <= targetLatencyMS)
	}
	res.LoadAverageEnd = proccpu.LoadAverage()
	res.Notes = notes(o, res)
	return res, nil
}

func directRun(ctx context.Context, e *syncenv.Env, o options, s podtimeline.Creator, names []string, res *result) error {
	before := e.MarkCPU()
	res.directStart = time.Now()
	if err := s.Create(ctx, names, o.workers); err != nil {
		return err
	}
	res.DirectCreateSeconds = stats.Round(time.Since(res.directStart).Seconds())
	if err := s.Timeline.WaitFor(ctx, "direct pods Running on the host", bulkPrefix, len(names), podtimeline.IsRunning, o.timeout); err != nil {
		return err
	}
	use, err := syncenv.CPUBetween(before, e.MarkCPU(), len(names))
	if err != nil {
		return err
	}
	res.CPUDirect = &use
	return nil
}

func tenantRun(ctx context.Context, e *syncenv.Env, o options, s podtimeline.Creator, names []string, res *result) error {
	var heapBefore heap.Point
	if o.heap {
		var err error
		if heapBefore, err = heap.Measure(ctx, e.MetricsURL, e.ProfilingAddress, e.Knestd.Pid(), o.heapProfiles, "before"); err != nil {
			return err
		}
	}
	metricsBefore, err := metrics.Scrape(ctx, e.MetricsURL)
	if err != nil {
		return err
	}
	var rec *perf.Recording
	if o.perf != "" {
		if rec, err = perf.Record(e.Knestd.Pid(), o.perf); err != nil {
			return err
		}
		defer func() {
			if rec != nil {
				_ = rec.Stop()
			}
		}()
	}
	before := e.MarkCPU()
	res.tenantStart = time.Now()
	if err := s.Create(ctx, names, o.workers); err != nil {
		return err
	}
	res.TenantCreateSeconds = stats.Round(time.Since(res.tenantStart).Seconds())
	if err := s.Timeline.WaitFor(ctx, "tenant pods Running in the tenant", bulkPrefix, len(names), podtimeline.IsRunning, o.timeout); err != nil {
		return err
	}
	after := e.MarkCPU()
	if rec != nil {
		err := rec.Stop()
		rec = nil
		if err != nil {
			return err
		}
		res.PerfFile = o.perf
		if res.PerfSelf, err = perf.TopSelf(ctx, o.perf, 1.5); err != nil {
			return err
		}
		if res.PerfComponents, err = perf.Components(ctx, o.perf); err != nil {
			return err
		}
	}
	if res.CPUTenant, err = syncenv.CPUBetween(before, after, len(names)); err != nil {
		return err
	}
	metricsAfter, err := metrics.Scrape(ctx, e.MetricsURL)
	if err != nil {
		return err
	}
	if res.SyncerActivity, err = syncenv.SyncerBetween(metricsBefore, metricsAfter, e.HostServer, after.At.Sub(before.At)); err != nil {
		return err
	}

	if o.heap {
		heapAfter, err := heap.Measure(ctx, e.MetricsURL, e.ProfilingAddress, e.Knestd.Pid(), o.heapProfiles, "after")
		if err != nil {
			return err
		}
		r, perPod, byOwner := heap.Compare(heapBefore, heapAfter, len(names))
		res.Heap, res.HeapBytesPerPod, res.HeapByOwner = &r, perPod, byOwner
	}
	return nil
}

// deleteRun removes a finished run's pods, at once (grace period 0), and
// waits until the watches saw them go.
func deleteRun(ctx context.Context, e *syncenv.Env, s podtimeline.Creator, directTL, tenantHostTL *podtimeline.Timeline, o options) error {
	opts := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	list := metav1.ListOptions{LabelSelector: appLabel + "=" + appValue}
	n := o.pods
	if s.Name == "direct" {
		if err := e.HostAdmin.CoreV1().Pods(e.DirectNamespace).DeleteCollection(ctx, opts, list); err != nil {
			return fmt.Errorf("failed to delete the direct pods in host cluster: %w", err)
		}
		return directTL.WaitFor(ctx, "direct pods deleted", bulkPrefix, n, podtimeline.IsGone, o.timeout)
	}
	if err := e.Tenant.CoreV1().Pods(tenantNamespace).DeleteCollection(ctx, opts, list); err != nil {
		return fmt.Errorf("failed to delete the tenant pods in tenant cluster: %w", err)
	}
	if err := s.Timeline.WaitFor(ctx, "tenant pods deleted", bulkPrefix, n, podtimeline.IsGone, o.timeout); err != nil {
		return err
	}
	// The syncer deletes the host pods with their default grace period.
	return tenantHostTL.WaitFor(ctx, "host pods of the tenant deleted", bulkPrefix, n, podtimeline.IsGone, o.timeout)
}

// pacedRuns creates pods one at a time below the budget on each side, so
// their latencies are what one pod pays, without the queue of a bulk run.
func pacedRuns(ctx context.Context, e *syncenv.Env, o options, direct, tenant podtimeline.Creator, tenantHostTL *podtimeline.Timeline) (*paced, error) {
	names := podtimeline.Names(pacedPrefix, o.paced)
	p := &paced{Pods: o.paced, RatePerSecond: o.pacedRate}
	sides := []podtimeline.Creator{direct, tenant}
	if o.skipDirect {
		sides = []podtimeline.Creator{tenant}
	}
	for _, s := range sides {
		var metricsBefore metrics.Snapshot
		start := time.Now()
		if s.Name != "direct" {
			var err error
			if metricsBefore, err = metrics.Scrape(ctx, e.MetricsURL); err != nil {
				return nil, err
			}
		}
		tick := time.NewTicker(time.Duration(float64(time.Second) / o.pacedRate))
		for _, name := range names {
			select {
			case <-ctx.Done():
				tick.Stop()
				return nil, ctx.Err()
			case <-tick.C:
			}
			if err := s.Create(ctx, []string{name}, 1); err != nil {
				tick.Stop()
				return nil, err
			}
		}
		tick.Stop()
		if err := s.Timeline.WaitFor(ctx, s.Name+" paced pods Running", pacedPrefix, len(names), podtimeline.IsRunning, o.timeout); err != nil {
			return nil, err
		}
		if s.Name != "direct" {
			metricsAfter, err := metrics.Scrape(ctx, e.MetricsURL)
			if err != nil {
				return nil, err
			}
			if p.SyncerActivity, err = syncenv.SyncerBetween(metricsBefore, metricsAfter, e.HostServer, time.Since(start)); err != nil {
				return nil, err
			}
		}
		time.Sleep(settle)
	}
	tenantSnap, hostSnap := tenant.Timeline.Snapshot(pacedPrefix), tenantHostTL.Snapshot(pacedPrefix)
	between := func(from, to map[string]podtimeline.PodTimes, fromAt, toAt func(podtimeline.PodTimes) time.Time) stats.Latency {
		return podtimeline.Between(names, from, to, fromAt, toAt)
	}
	p.CreateLatency = between(tenantSnap, hostSnap, podtimeline.CreatedAt, podtimeline.AddedAt)
	p.StatusLatency = between(hostSnap, tenantSnap, podtimeline.RunningAt, podtimeline.RunningAt)
	p.TenantCreateToRunning = between(tenantSnap, tenantSnap, podtimeline.CreatedAt, podtimeline.RunningAt)
	p.HostScheduledToRunning = between(hostSnap, hostSnap, podtimeline.ScheduledAt, podtimeline.RunningAt)
	p.HostScheduledToTenantBound = between(hostSnap, tenantSnap, podtimeline.ScheduledAt, podtimeline.ScheduledAt)
	p.TenantBoundToRunning = between(tenantSnap, tenantSnap, podtimeline.ScheduledAt, podtimeline.RunningAt)
	if !o.skipDirect {
		directSnap := direct.Timeline.Snapshot(pacedPrefix)
		p.DirectCreateToRunning = between(directSnap, directSnap, podtimeline.CreatedAt, podtimeline.RunningAt)
		p.DirectCallToHostAdded = between(directSnap, directSnap, podtimeline.RequestedAt, podtimeline.AddedAt)
	}
	return p, nil
}

// benchPod is the pod both runs create: the same spec on both sides, but
// for the RuntimeClass the syncer sets on host pods itself.
func benchPod(name string, automount bool, runtimeClass string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appLabel: appValue}},
		Spec: corev1.PodSpec{
			// Pod Security "restricted", which a confined tenant may require.
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "c", Image: "registry.k8s.io/pause:3.10",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if !automount {
		p.Spec.AutomountServiceAccountToken = ptr.To(false)
	}
	if runtimeClass != "" {
		p.Spec.RuntimeClassName = &runtimeClass
	}
	return p
}

func notes(o options, r *result) []string {
	n := []string{
		"order: " + r.Order + "; every phase starts after a " + settle.String() + " pause",
		fmt.Sprintf("the direct creator is a namespaced ServiceAccount identity with QPS %g/burst %d (one token bucket), %d concurrent creates; knestd runs with --host-qps %g --host-burst %d", o.qps, o.burst, o.workers, o.qps, o.burst),
		fmt.Sprintf("the tenant client is unthrottled (QPS -1), %d concurrent creates: the tenant API server is local", o.workers),
		"times are receipt times of watch events in this process; create latency is from the tenant client's Create returning to the host watch's ADDED, status latency from the host watch's first Running to the tenant watch's first Running",
		"direct_seconds/tenant_seconds run from the first Create call to the last pod seen Running (on the host for direct, in the tenant for tenant)",
		"bulk latencies include the wait in the syncer's queue and host rate limiter (N pods arrive at once); the paced phase creates pods below the budget and shows the per-pod cost",
		fmt.Sprintf("the devcluster has %d general and %d sandboxed nodes of %d pods; nodes have no pod CIDR of their own, KWOK assigns every pod IP from --pod-cidr %s", r.HostNodes, r.HostNodes, syncenv.NodeMaxPods, r.HostPodCIDR),
		"CPU: 2 cores shared with other engineers; other_cores is the rest of the machine during the run (noise)",
	}
	if o.heap {
		n = append(n, "heap is knestd's whole process (tenant API server, etcd, controllers and syncer), live bytes after two garbage collections at each point; per pod = (after - before) / N",
			"heap_growth_by_owner splits the growth of in-use bytes in knestd's heap profiles (sampled, so its sum differs a little from the live heap) by the stacks that allocated them: the syncer's clients speak JSON, the API server's storage and the controllers' informers protobuf")
	}
	if r.Ratio > 0 && r.Ratio > targetRatio {
		n = append(n, fmt.Sprintf("ratio %.2f misses the %.2f target", r.Ratio, targetRatio))
	}
	return n
}
