package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// podTimes is what one side saw of one pod. Times are receipt times in this
// process (monotonic clock), never server timestamps: those have a resolution
// of one second.
type podTimes struct {
	// created is when the client's Create returned; zero for host pods the
	// syncer made.
	created time.Time
	// added is the first watch event for the pod.
	added time.Time
	// scheduled is the first watch event with spec.nodeName set: bound to
	// a host node on the host, to a virtual node in the tenant.
	scheduled time.Time
	// running is the first watch event with phase Running.
	running time.Time
	// gone is the watch's DELETED event.
	gone time.Time
}

// timeline records the pods of one namespace as one watch sees them.
type timeline struct {
	mu   sync.Mutex
	pods map[string]*podTimes
}

func newTimeline() *timeline { return &timeline{pods: map[string]*podTimes{}} }

func (tl *timeline) get(name string) *podTimes {
	p := tl.pods[name]
	if p == nil {
		p = &podTimes{}
		tl.pods[name] = p
	}
	return p
}

func (tl *timeline) created(name string, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.get(name).created = at
}

func (tl *timeline) observe(name string, typ watch.EventType, pod *corev1.Pod, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	p := tl.get(name)
	if typ == watch.Deleted {
		p.gone = at
		return
	}
	if p.added.IsZero() {
		p.added = at
	}
	if pod.Spec.NodeName != "" && p.scheduled.IsZero() {
		p.scheduled = at
	}
	if pod.Status.Phase == corev1.PodRunning && p.running.IsZero() {
		p.running = at
	}
}

// snapshot copies the times of the pods whose names start with prefix.
func (tl *timeline) snapshot(prefix string) map[string]podTimes {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := map[string]podTimes{}
	for name, p := range tl.pods {
		if strings.HasPrefix(name, prefix) {
			out[name] = *p
		}
	}
	return out
}

// count returns how many pods with the prefix satisfy cond.
func (tl *timeline) count(prefix string, cond func(podTimes) bool) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for name, p := range tl.pods {
		if strings.HasPrefix(name, prefix) && cond(*p) {
			n++
		}
	}
	return n
}

func isRunning(p podTimes) bool { return !p.running.IsZero() }
func isAdded(p podTimes) bool   { return !p.added.IsZero() }
func isGone(p podTimes) bool    { return !p.gone.IsZero() }

// waitFor polls the in-memory timeline (not the API server, so waiting does
// not add load) until n pods with the prefix satisfy cond. The times that
// matter come from the watch events, so the poll interval does not show in
// the results.
func (tl *timeline) waitFor(ctx context.Context, what, prefix string, n int, cond func(podTimes) bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := tl.count(prefix, cond)
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d after %s: %w", what, got, n, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// watchPods feeds a timeline from a watch on the pods of a namespace that
// match selector; nameOf maps a pod to the timeline's key ("" skips it). The
// watch restarts from its last resource version if the server closes it.
func watchPods(ctx context.Context, client kubernetes.Interface, namespace, selector string, nameOf func(*corev1.Pod) string, tl *timeline) error {
	pods := client.CoreV1().Pods(namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
	if err != nil {
		return fmt.Errorf("failed to list pods in %s: %w", namespace, err)
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.LabelSelector = selector
		return pods.Watch(ctx, o)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
	if err != nil {
		return fmt.Errorf("failed to watch pods in %s: %w", namespace, err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			at := time.Now()
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if name := nameOf(p); name != "" {
				tl.observe(name, ev.Type, p, at)
			}
		}
	}()
	return nil
}

// latency is a distribution in milliseconds.
type latency struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Samples int     `json:"samples"`
	// Missing counts pods one of whose two times was not seen.
	Missing int `json:"missing,omitempty"`
}

// between returns the distribution of to(pod) - from(pod) over the pods of
// two timelines that share keys.
func between(names []string, fromTL, toTL map[string]podTimes, from, to func(podTimes) time.Time) latency {
	var ms []float64
	missing := 0
	for _, n := range names {
		a, b := from(fromTL[n]), to(toTL[n])
		if a.IsZero() || b.IsZero() {
			missing++
			continue
		}
		ms = append(ms, float64(b.Sub(a).Microseconds())/1000)
	}
	if len(ms) == 0 {
		return latency{Missing: missing}
	}
	slices.Sort(ms)
	return latency{P50: round(rank(ms, 0.50)), P99: round(rank(ms, 0.99)), Max: round(ms[len(ms)-1]), Samples: len(ms), Missing: missing}
}

// rank is the nearest-rank percentile of sorted xs.
func rank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func createdAt(p podTimes) time.Time   { return p.created }
func addedAt(p podTimes) time.Time     { return p.added }
func runningAt(p podTimes) time.Time   { return p.running }
func scheduledAt(p podTimes) time.Time { return p.scheduled }

// latest is the latest of names' times that at reads (runningAt, addedAt).
func latest(names []string, tl map[string]podTimes, at func(podTimes) time.Time) time.Time {
	var last time.Time
	for _, n := range names {
		if t := at(tl[n]); t.After(last) {
			last = t
		}
	}
	return last
}
