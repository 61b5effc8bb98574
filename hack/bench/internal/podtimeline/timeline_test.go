package podtimeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

func TestBetween(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	from := map[string]PodTimes{}
	to := map[string]PodTimes{}
	var names []string
	for i := 1; i <= 100; i++ {
		name := fmt.Sprintf("pod-%d", i)
		names = append(names, name)
		from[name] = PodTimes{Created: ms(0)}
		to[name] = PodTimes{Added: ms(i)}
	}
	// One pod the other side never saw.
	names = append(names, "lost")
	from["lost"] = PodTimes{Created: ms(0)}

	got := Between(names, from, to, CreatedAt, AddedAt)
	want := stats.Latency{P50: 50, P99: 99, Max: 100, Samples: 100, Missing: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Between (-want +got):\n%s", diff)
	}
}

func TestObserveKeepsTheFirstTimeOfEachStep(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	pending := &corev1.Pod{}
	bound := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n"}}
	running := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}

	tl := New()
	tl.Created("bench-00000", at(-1), at(0))
	tl.Observe("bench-00000", watch.Added, pending, at(1))
	tl.Observe("bench-00000", watch.Modified, bound, at(2))
	tl.Observe("bench-00000", watch.Modified, running, at(3))
	tl.Observe("bench-00000", watch.Modified, running, at(4))
	tl.Observe("bench-00000", watch.Deleted, running, at(5))
	tl.Observe("other-00000", watch.Added, running, at(6))

	want := map[string]PodTimes{"bench-00000": {Requested: at(-1), Created: at(0), Added: at(1), Scheduled: at(2), Running: at(3), Gone: at(5)}}
	if diff := cmp.Diff(want, tl.Snapshot("bench-")); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	if n := tl.Count("", IsRunning); n != 2 {
		t.Errorf("%d pods Running, want 2", n)
	}
	if n := tl.Count("", IsGone); n != 1 {
		t.Errorf("%d pods gone, want 1", n)
	}
	if last := Latest([]string{"bench-00000", "other-00000"}, tl.Snapshot(""), RunningAt); !last.Equal(at(6)) {
		t.Errorf("Latest Running at %v, want %v", last, at(6))
	}
}

func TestNamesSortInCreationOrder(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff([]string{"paced-00000", "paced-00001", "paced-00002"}, Names("paced-", 3)); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}
