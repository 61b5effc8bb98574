// Command sync measures the syncer against the host cluster it syncs into.
// It starts a devcluster sized for the pods and a knestd syncing into one
// host namespace, then times the same N pods twice in one run:
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
// per synced pod, and with --perf where knestd's CPU went.
//
//	go run ./hack/bench/sync --knest bin/knest --knestd bin/knestd [--pods 1000] [--qps 50 --burst 100] [--heap] [--perf FILE]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/hack/bench/internal/procmem"
	"github.com/knest-dev/knest/pkg/translate"
)

const (
	// tenantName is the tenant's name, and so the marker label's value on
	// its host objects.
	tenantName = "bench"
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
	knest, knestd  string
	pods           int
	qps            float64
	burst, workers int
	heap           bool
	heapProfiles   string
	tenantFirst    bool
	skipDirect     bool
	automount      bool
	paced          int
	pacedRate      float64
	perf           string
	timeout        time.Duration
	keep           bool
	knestdArgs     []string
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
	TenantHostCreatedSeconds float64 `json:"tenant_host_created_seconds"`
	CreateLatency            latency `json:"create_latency_ms"`
	StatusLatency            latency `json:"status_latency_ms"`
	DirectCreateToRunning    latency `json:"direct_create_to_running_ms,omitzero"`
	TenantCreateToRunning    latency `json:"tenant_create_to_running_ms"`
	Paced                    *paced  `json:"paced,omitempty"`
	// SyncerHost* are knestd's requests to the host during the tenant run
	// (rest_client_requests_total), by method, and their rate.
	SyncerHostRequests     map[string]float64 `json:"syncer_host_requests"`
	SyncerHostRequestsPerS float64            `json:"syncer_host_requests_per_second"`
	SyncerWrites           map[string]float64 `json:"syncer_writes"`
	SyncerPodReconciles    float64            `json:"syncer_pod_reconciles"`
	// SyncerPodReconcileMeanMS is the mean time of one pod reconcile: with
	// the 16 workers it bounds the syncer's rate.
	SyncerPodReconcileMeanMS float64            `json:"syncer_pod_reconcile_mean_ms"`
	SyncerErrors             map[string]float64 `json:"syncer_errors,omitempty"`
	CPUDirect                *cpuUse            `json:"cpu_direct_run,omitempty"`
	CPUTenant                cpuUse             `json:"cpu_tenant_run"`
	Heap                     *heapResult        `json:"heap,omitempty"`
	HeapBytesPerPod          float64            `json:"heap_bytes_per_pod,omitempty"`
	HeapByOwner              []heapShare        `json:"heap_growth_by_owner,omitempty"`
	PerfFile                 string             `json:"perf_file,omitempty"`
	PerfSelf                 []share            `json:"perf_top_self,omitempty"`
	PerfComponents           []share            `json:"perf_components,omitempty"`
	Targets                  targets            `json:"targets"`
	Go                       string             `json:"go"`
	CPUs                     int                `json:"cpus"`
	CPUModel                 string             `json:"cpu_model"`
	LoadAverageStart         string             `json:"load_average_start"`
	LoadAverageEnd           string             `json:"load_average_end"`
	Notes                    []string           `json:"notes"`
	// tenantStart and directStart are when each run's first Create began.
	tenantStart, directStart time.Time
}

type paced struct {
	Pods                  int     `json:"pods"`
	RatePerSecond         float64 `json:"rate_per_second"`
	CreateLatency         latency `json:"create_latency_ms"`
	StatusLatency         latency `json:"status_latency_ms"`
	DirectCreateToRunning latency `json:"direct_create_to_running_ms,omitzero"`
	TenantCreateToRunning latency `json:"tenant_create_to_running_ms"`
	// The status latency in steps: KWOK starts the host pod, the syncer
	// binds the tenant pod to a virtual node, then copies the status.
	HostScheduledToRunning     latency `json:"host_scheduled_to_host_running_ms"`
	HostScheduledToTenantBound latency `json:"host_scheduled_to_tenant_bound_ms"`
	TenantBoundToRunning       latency `json:"tenant_bound_to_tenant_running_ms"`
}

type heapResult struct {
	LiveBefore  float64 `json:"live_bytes_before"`
	LiveAfter   float64 `json:"live_bytes_after"`
	AllocBefore float64 `json:"alloc_bytes_before"`
	AllocAfter  float64 `json:"alloc_bytes_after"`
	RSSBefore   float64 `json:"rss_mib_before"`
	RSSAfter    float64 `json:"rss_mib_after"`
	RSSPerPod   float64 `json:"rss_bytes_per_pod"`
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
	flag.StringVar(&o.knest, "knest", "bin/knest", "knest binary (runs the devcluster)")
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
	e, err := startEnv(ctx, envConfig{
		dir: dir, knest: o.knest, knestd: o.knestd, pods: o.pods + 2*o.paced + 2, qps: float32(o.qps), burst: o.burst, knestdArgs: o.knestdArgs,
	})
	defer func() {
		if err := e.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "sync bench:", err)
		}
	}()
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

// side is where one run creates its pods and sees them Running.
type side struct {
	name string
	pods corev1client.PodInterface
	tl   *timeline
	// pod returns the pod to create.
	pod func(name string) *corev1.Pod
}

func warmUp(ctx context.Context, s side) error {
	if err := create(ctx, s, []string{warmPrefix + "0"}, 1); err != nil {
		return err
	}
	return s.tl.waitFor(ctx, s.name+" warm-up pod Running", warmPrefix, 1, isRunning, time.Minute)
}

// hostRuntimeClass returns the RuntimeClass of the tenant's warm-up pod on
// the host: what the syncer set.
func hostRuntimeClass(ctx context.Context, e *env) (string, error) {
	list, err := e.hostAdmin.CoreV1().Pods(e.tenantNamespace).List(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=" + tenantName})
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

func bench(ctx context.Context, e *env, o options) (*result, error) {
	// The watches end with the benchmark, before the processes stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &result{
		N: o.pods, QPS: o.qps, Burst: o.burst, Workers: o.workers, AutomountToken: o.automount,
		HostNodes: e.nodes, HostPodCIDR: e.podCIDR, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), CPUModel: cpuModel(),
		LoadAverageStart: loadAverage(),
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
	directTL, tenantHostTL, tenantTL := newTimeline(), newTimeline(), newTimeline()
	// All three watches run through both runs, so each run pays for them.
	if err := errors.Join(
		watchPods(ctx, e.hostAdmin, e.directNamespace, selector, byName, directTL),
		watchPods(ctx, e.hostAdmin, e.tenantNamespace, translate.LabelTenant+"="+tenantName, byTenantName, tenantHostTL),
		watchPods(ctx, e.tenant, tenantNamespace, selector, byName, tenantTL),
	); err != nil {
		return nil, err
	}
	tenant := side{name: "tenant", pods: e.tenant.CoreV1().Pods(tenantNamespace), tl: tenantTL,
		pod: func(name string) *corev1.Pod { return benchPod(name, o.automount, "") }}
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
	direct := side{name: "direct", pods: e.direct.CoreV1().Pods(e.directNamespace), tl: directTL,
		pod: func(name string) *corev1.Pod { return benchPod(name, o.automount, runtimeClass) }}
	if err := warmUp(ctx, direct); err != nil {
		return nil, err
	}
	time.Sleep(settle)

	names := podNames(bulkPrefix, o.pods)
	order := []side{direct, tenant}
	res.Order = "direct first, then tenant (the direct pods are deleted in between)"
	if o.tenantFirst {
		order = []side{tenant, direct}
		res.Order = "tenant first, then direct (the tenant pods are deleted in between)"
	}
	if o.skipDirect {
		order = []side{tenant}
		res.Order = "tenant only"
	}
	for i, s := range order {
		var err error
		if s.name == "direct" {
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

	tenantSnap, hostSnap := tenantTL.snapshot(bulkPrefix), tenantHostTL.snapshot(bulkPrefix)
	res.TenantSeconds = round(latest(names, tenantSnap, runningAt).Sub(res.tenantStart).Seconds())
	res.TenantHostCreatedSeconds = round(latest(names, hostSnap, addedAt).Sub(res.tenantStart).Seconds())
	res.CreateLatency = between(names, tenantSnap, hostSnap, createdAt, addedAt)
	res.StatusLatency = between(names, hostSnap, tenantSnap, runningAt, runningAt)
	res.TenantCreateToRunning = between(names, tenantSnap, tenantSnap, createdAt, runningAt)
	if !o.skipDirect {
		directSnap := directTL.snapshot(bulkPrefix)
		res.DirectSeconds = round(latest(names, directSnap, runningAt).Sub(res.directStart).Seconds())
		res.Ratio = round(res.TenantSeconds / res.DirectSeconds)
		res.DirectCreateToRunning = between(names, directSnap, directSnap, createdAt, runningAt)
		res.Targets.RatioMet = ptr.To(res.Ratio <= targetRatio)
	}
	res.Targets.BulkCreateP50Met = res.CreateLatency.P50 <= targetLatencyMS
	res.Targets.BulkStatusP50Met = res.StatusLatency.P50 <= targetLatencyMS

	if o.paced > 0 {
		p, err := pacedRuns(ctx, o, direct, tenant, tenantHostTL)
		if err != nil {
			return nil, err
		}
		res.Paced = p
		res.Targets.PacedCreateMet = ptr.To(p.CreateLatency.P50 <= targetLatencyMS)
		res.Targets.PacedStatusMet = ptr.To(p.StatusLatency.P50 <= targetLatencyMS)
	}
	res.LoadAverageEnd = loadAverage()
	res.Notes = notes(o, res)
	return res, nil
}

func directRun(ctx context.Context, e *env, o options, s side, names []string, res *result) error {
	before := markCPU(e.host.Pid(), e.knestd.Pid())
	res.directStart = time.Now()
	if err := create(ctx, s, names, o.workers); err != nil {
		return err
	}
	res.DirectCreateSeconds = round(time.Since(res.directStart).Seconds())
	if err := s.tl.waitFor(ctx, "direct pods Running on the host", bulkPrefix, len(names), isRunning, o.timeout); err != nil {
		return err
	}
	use, err := cpuBetween(before, markCPU(e.host.Pid(), e.knestd.Pid()), len(names))
	if err != nil {
		return err
	}
	res.CPUDirect = &use
	return nil
}

func tenantRun(ctx context.Context, e *env, o options, s side, names []string, res *result) error {
	var heapBefore heapSample
	var ownersBefore map[string]float64
	if o.heap {
		var err error
		if heapBefore, err = settledHeap(ctx, e); err != nil {
			return err
		}
		if ownersBefore, err = heapByOwner(ctx, e, o, "before"); err != nil {
			return err
		}
	}
	metricsBefore, err := scrape(ctx, e.metricsAddress)
	if err != nil {
		return err
	}
	var prof *profiler
	if o.perf != "" {
		if prof, err = startPerf(e.knestd.Pid(), o.perf); err != nil {
			return err
		}
		defer func() {
			if prof != nil {
				_ = prof.stop()
			}
		}()
	}
	before := markCPU(e.host.Pid(), e.knestd.Pid())
	res.tenantStart = time.Now()
	if err := create(ctx, s, names, o.workers); err != nil {
		return err
	}
	res.TenantCreateSeconds = round(time.Since(res.tenantStart).Seconds())
	if err := s.tl.waitFor(ctx, "tenant pods Running in the tenant", bulkPrefix, len(names), isRunning, o.timeout); err != nil {
		return err
	}
	after := markCPU(e.host.Pid(), e.knestd.Pid())
	if prof != nil {
		err := prof.stop()
		prof = nil
		if err != nil {
			return err
		}
		res.PerfFile = o.perf
		if res.PerfSelf, err = perfTopSelf(ctx, o.perf, 1.5); err != nil {
			return err
		}
		if res.PerfComponents, err = perfComponents(ctx, o.perf); err != nil {
			return err
		}
	}
	if res.CPUTenant, err = cpuBetween(before, after, len(names)); err != nil {
		return err
	}
	metricsAfter, err := scrape(ctx, e.metricsAddress)
	if err != nil {
		return err
	}
	hostURL, err := url.Parse(e.hostServer)
	if err != nil {
		return err
	}
	res.SyncerHostRequests = delta(metricsBefore, metricsAfter, "rest_client_requests_total", map[string]string{"host": hostURL.Host}, "method")
	total := 0.0
	for _, v := range res.SyncerHostRequests {
		total += v
	}
	res.SyncerHostRequestsPerS = round(total / after.at.Sub(before.at).Seconds())
	res.SyncerWrites = delta(metricsBefore, metricsAfter, "knest_syncer_writes_total", nil, "cluster", "kind", "op")
	res.SyncerErrors = delta(metricsBefore, metricsAfter, "knest_syncer_errors_total", nil, "kind")
	res.SyncerPodReconciles = delta(metricsBefore, metricsAfter, "knest_syncer_reconciles_total", map[string]string{"kind": "Pod"}, "kind")["Pod"]
	pod := map[string]string{"kind": "Pod"}
	seconds := delta(metricsBefore, metricsAfter, "knest_syncer_reconcile_seconds_sum", pod, "kind")["Pod"]
	if count := delta(metricsBefore, metricsAfter, "knest_syncer_reconcile_seconds_count", pod, "kind")["Pod"]; count > 0 {
		res.SyncerPodReconcileMeanMS = round(1000 * seconds / count)
	}

	if o.heap {
		heapAfter, err := settledHeap(ctx, e)
		if err != nil {
			return err
		}
		n := float64(len(names))
		res.Heap = &heapResult{
			LiveBefore: heapBefore.live, LiveAfter: heapAfter.live,
			AllocBefore: heapBefore.alloc, AllocAfter: heapAfter.alloc,
			RSSBefore: round(heapBefore.rssMiB), RSSAfter: round(heapAfter.rssMiB),
			RSSPerPod: float64(int((heapAfter.rssMiB - heapBefore.rssMiB) * (1 << 20) / n)),
		}
		res.HeapBytesPerPod = float64(int((heapAfter.live - heapBefore.live) / n))
		ownersAfter, err := heapByOwner(ctx, e, o, "after")
		if err != nil {
			return err
		}
		res.HeapByOwner = heapGrowth(ownersBefore, ownersAfter, len(names))
	}
	return nil
}

// deleteRun removes a finished run's pods, at once (grace period 0), and
// waits until the watches saw them go.
func deleteRun(ctx context.Context, e *env, s side, directTL, tenantHostTL *timeline, o options) error {
	opts := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	list := metav1.ListOptions{LabelSelector: appLabel + "=" + appValue}
	n := o.pods
	if s.name == "direct" {
		if err := e.hostAdmin.CoreV1().Pods(e.directNamespace).DeleteCollection(ctx, opts, list); err != nil {
			return fmt.Errorf("failed to delete the direct pods in host cluster: %w", err)
		}
		return directTL.waitFor(ctx, "direct pods deleted", bulkPrefix, n, isGone, o.timeout)
	}
	if err := e.tenant.CoreV1().Pods(tenantNamespace).DeleteCollection(ctx, opts, list); err != nil {
		return fmt.Errorf("failed to delete the tenant pods in tenant cluster: %w", err)
	}
	if err := s.tl.waitFor(ctx, "tenant pods deleted", bulkPrefix, n, isGone, o.timeout); err != nil {
		return err
	}
	// The syncer deletes the host pods with their default grace period.
	return tenantHostTL.waitFor(ctx, "host pods of the tenant deleted", bulkPrefix, n, isGone, o.timeout)
}

// pacedRuns creates pods one at a time below the budget on each side, so
// their latencies are what one pod pays, without the queue of a bulk run.
func pacedRuns(ctx context.Context, o options, direct, tenant side, tenantHostTL *timeline) (*paced, error) {
	names := podNames(pacedPrefix, o.paced)
	p := &paced{Pods: o.paced, RatePerSecond: o.pacedRate}
	sides := []side{direct, tenant}
	if o.skipDirect {
		sides = []side{tenant}
	}
	for _, s := range sides {
		tick := time.NewTicker(time.Duration(float64(time.Second) / o.pacedRate))
		for _, name := range names {
			select {
			case <-ctx.Done():
				tick.Stop()
				return nil, ctx.Err()
			case <-tick.C:
			}
			if err := create(ctx, s, []string{name}, 1); err != nil {
				tick.Stop()
				return nil, err
			}
		}
		tick.Stop()
		if err := s.tl.waitFor(ctx, s.name+" paced pods Running", pacedPrefix, len(names), isRunning, o.timeout); err != nil {
			return nil, err
		}
		time.Sleep(settle)
	}
	tenantSnap, hostSnap := tenant.tl.snapshot(pacedPrefix), tenantHostTL.snapshot(pacedPrefix)
	p.CreateLatency = between(names, tenantSnap, hostSnap, createdAt, addedAt)
	p.StatusLatency = between(names, hostSnap, tenantSnap, runningAt, runningAt)
	p.TenantCreateToRunning = between(names, tenantSnap, tenantSnap, createdAt, runningAt)
	p.HostScheduledToRunning = between(names, hostSnap, hostSnap, scheduledAt, runningAt)
	p.HostScheduledToTenantBound = between(names, hostSnap, tenantSnap, scheduledAt, scheduledAt)
	p.TenantBoundToRunning = between(names, tenantSnap, tenantSnap, scheduledAt, runningAt)
	if !o.skipDirect {
		directSnap := direct.tl.snapshot(pacedPrefix)
		p.DirectCreateToRunning = between(names, directSnap, directSnap, createdAt, runningAt)
	}
	return p, nil
}

// create creates the named pods with the given concurrency and records when
// each Create returned.
func create(ctx context.Context, s side, names []string, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range min(workers, len(names)) {
		wg.Go(func() {
			for name := range next {
				_, err := s.pods.Create(ctx, s.pod(name), metav1.CreateOptions{})
				if err != nil {
					mu.Lock()
					// After the first failure the others are cancelled.
					if len(errs) == 0 || !errors.Is(err, context.Canceled) {
						errs = append(errs, fmt.Errorf("failed to create pod %s (%s run): %w", name, s.name, err))
					}
					mu.Unlock()
					cancel()
					continue
				}
				s.tl.created(name, time.Now())
			}
		})
	}
feed:
	for _, name := range names {
		select {
		case next <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return ctx.Err()
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

func podNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return names
}

// heapSample is knestd's memory at one moment.
type heapSample struct {
	live, alloc, rssMiB float64
}

// settledHeap waits until knestd has finished two garbage collections
// since the call, so the live heap (go_gc_heap_live_bytes: what the last
// collection marked) reflects the current state, then reads it. The
// metrics are the whole process's: the tenant API server, its etcd and
// controllers share it with the syncer.
func settledHeap(ctx context.Context, e *env) (heapSample, error) {
	m, err := scrape(ctx, e.metricsAddress)
	if err != nil {
		return heapSample{}, err
	}
	cycles, ok := m.sum("go_gc_cycles_total_gc_cycles_total", nil)
	if !ok {
		return heapSample{}, errors.New("knestd metrics have no go_gc_cycles_total_gc_cycles_total: the Go collector is not registered")
	}
	// An idle Go process collects at least every two minutes.
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, false, func(ctx context.Context) (bool, error) {
		if m, err = scrape(ctx, e.metricsAddress); err != nil {
			return false, err
		}
		c, _ := m.sum("go_gc_cycles_total_gc_cycles_total", nil)
		return c >= cycles+2, nil
	})
	if err != nil {
		return heapSample{}, fmt.Errorf("waiting for knestd to collect garbage: %w", err)
	}
	var s heapSample
	if s.live, ok = m.sum("go_gc_heap_live_bytes", nil); !ok {
		return heapSample{}, errors.New("knestd metrics have no go_gc_heap_live_bytes")
	}
	s.alloc, _ = m.sum("go_memstats_heap_alloc_bytes", nil)
	mem, err := procmem.Read(e.knestd.Pid())
	if err != nil {
		return heapSample{}, err
	}
	s.rssMiB = mem.RSS
	return s, nil
}

// heapByOwner reads knestd's heap profile, keeps it in --heap-profiles if
// set, and splits its in-use bytes by owner.
func heapByOwner(ctx context.Context, e *env, o options, when string) (map[string]float64, error) {
	p, err := fetchHeapProfile(ctx, e.profilingAddress)
	if err != nil {
		return nil, err
	}
	if o.heapProfiles != "" {
		if err := writeProfile(p, filepath.Join(o.heapProfiles, "knestd-heap-"+when+".pb.gz")); err != nil {
			return nil, err
		}
	}
	return inUseByOwner(p)
}

func notes(o options, r *result) []string {
	n := []string{
		"order: " + r.Order + "; every phase starts after a " + settle.String() + " pause",
		fmt.Sprintf("the direct creator is a namespaced ServiceAccount identity with QPS %g/burst %d (one token bucket), %d concurrent creates; knestd runs with --host-qps %g --host-burst %d", o.qps, o.burst, o.workers, o.qps, o.burst),
		fmt.Sprintf("the tenant client is unthrottled (QPS -1), %d concurrent creates: the tenant API server is local", o.workers),
		"times are receipt times of watch events in this process; create latency is from the tenant client's Create returning to the host watch's ADDED, status latency from the host watch's first Running to the tenant watch's first Running",
		"direct_seconds/tenant_seconds run from the first Create call to the last pod seen Running (on the host for direct, in the tenant for tenant)",
		"bulk latencies include the wait in the syncer's queue and host rate limiter (N pods arrive at once); the paced phase creates pods below the budget and shows the per-pod cost",
		fmt.Sprintf("the devcluster has %d general and %d sandboxed nodes of %d pods; nodes have no pod CIDR of their own, KWOK assigns every pod IP from --pod-cidr %s", r.HostNodes, r.HostNodes, nodeMaxPods, r.HostPodCIDR),
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

func round(x float64) float64 {
	if x < 0 {
		return -round(-x)
	}
	return float64(int64(x*100+0.5)) / 100
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
