// Package podtimeline times pods as a client and its watches see them:
// when each Create returned and when a watch first saw the pod, saw it
// bound to a node, saw it Running and saw it go. The sync benchmark keeps
// one Timeline per side (the host namespace of a direct run, the tenant's
// pods and their copies on the host) and compares them pod by pod.
package podtimeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

// PodTimes is what one side saw of one pod. Times are receipt times in this
// process (monotonic clock), never server timestamps: those have a resolution
// of one second.
type PodTimes struct {
	// Requested is when the client called Create, Created when it
	// returned; zero for host pods the syncer made.
	Requested, Created time.Time
	// Added is the first watch event for the pod.
	Added time.Time
	// Scheduled is the first watch event with spec.nodeName set: bound to
	// a host node on the host, to a virtual node in the tenant.
	Scheduled time.Time
	// Running is the first watch event with phase Running.
	Running time.Time
	// Gone is the watch's DELETED event.
	Gone time.Time
}

// Timeline records the pods of one namespace as one watch sees them.
type Timeline struct {
	mu   sync.Mutex
	pods map[string]*PodTimes
}

// New returns an empty Timeline.
func New() *Timeline { return &Timeline{pods: map[string]*PodTimes{}} }

func (tl *Timeline) get(name string) *PodTimes {
	p := tl.pods[name]
	if p == nil {
		p = &PodTimes{}
		tl.pods[name] = p
	}
	return p
}

// Created records when the client's Create of a pod was called and when
// it returned.
func (tl *Timeline) Created(name string, called, returned time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	p := tl.get(name)
	p.Requested, p.Created = called, returned
}

// Observe records a watch event for a pod.
func (tl *Timeline) Observe(name string, typ watch.EventType, pod *corev1.Pod, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	p := tl.get(name)
	if typ == watch.Deleted {
		p.Gone = at
		return
	}
	if p.Added.IsZero() {
		p.Added = at
	}
	if pod.Spec.NodeName != "" && p.Scheduled.IsZero() {
		p.Scheduled = at
	}
	if pod.Status.Phase == corev1.PodRunning && p.Running.IsZero() {
		p.Running = at
	}
}

// Snapshot copies the times of the pods whose names start with prefix.
func (tl *Timeline) Snapshot(prefix string) map[string]PodTimes {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := map[string]PodTimes{}
	for name, p := range tl.pods {
		if strings.HasPrefix(name, prefix) {
			out[name] = *p
		}
	}
	return out
}

// Count returns how many pods with the prefix satisfy cond.
func (tl *Timeline) Count(prefix string, cond func(PodTimes) bool) int {
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

// IsRunning and IsGone are conditions for Count and WaitFor.
func IsRunning(p PodTimes) bool { return !p.Running.IsZero() }
func IsGone(p PodTimes) bool    { return !p.Gone.IsZero() }

// WaitFor polls the in-memory timeline (not the API server, so waiting does
// not add load) until n pods with the prefix satisfy cond. The times that
// matter come from the watch events, so the poll interval does not show in
// the results.
func (tl *Timeline) WaitFor(ctx context.Context, what, prefix string, n int, cond func(PodTimes) bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := tl.Count(prefix, cond)
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

// Watch feeds a timeline from a watch on the pods of a namespace that
// match selector; nameOf maps a pod to the timeline's key ("" skips it). The
// watch restarts from its last resource version if the server closes it.
func Watch(ctx context.Context, client kubernetes.Interface, namespace, selector string, nameOf func(*corev1.Pod) string, tl *Timeline) error {
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
				tl.Observe(name, ev.Type, p, at)
			}
		}
	}()
	return nil
}

// Between returns the distribution of to(pod) - from(pod) over the pods of
// two timelines that share keys.
func Between(names []string, fromTL, toTL map[string]PodTimes, from, to func(PodTimes) time.Time) stats.Latency {
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
	return stats.LatencyOf(ms, missing)
}

// CreatedAt, AddedAt, RunningAt and ScheduledAt read one of a pod's times,
// for Between and Latest.
func RequestedAt(p PodTimes) time.Time { return p.Requested }
func CreatedAt(p PodTimes) time.Time   { return p.Created }
func AddedAt(p PodTimes) time.Time     { return p.Added }
func RunningAt(p PodTimes) time.Time   { return p.Running }
func ScheduledAt(p PodTimes) time.Time { return p.Scheduled }

// Latest is the latest of names' times that at reads (runningAt, addedAt).
func Latest(names []string, tl map[string]PodTimes, at func(PodTimes) time.Time) time.Time {
	var last time.Time
	for _, n := range names {
		if t := at(tl[n]); t.After(last) {
			last = t
		}
	}
	return last
}
