package main

import (
	"testing"
	"time"

	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
)

func TestBusiestMinute(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mark := func(after time.Duration, cpu ...float64) proccpu.Mark {
		return proccpu.Mark{At: t0.Add(after), Processes: cpu, System: 100}
	}
	for _, tc := range []struct {
		name  string
		marks []proccpu.Mark
		want  []float64
	}{{
		name: "the busiest of whole minutes",
		// Process 0: 0.6 s, 1.2 s, 0.6 s; process 1: 0.6 s each minute.
		marks: []proccpu.Mark{mark(0, 0, 0), mark(time.Minute, 0.6, 0.6), mark(2*time.Minute, 1.8, 1.2), mark(3*time.Minute, 2.4, 1.8)},
		want:  []float64{0.02, 0.01},
	}, {
		name: "a short last interval does not count",
		// 6 s of CPU in the last 10 s would read as 60 % of a core.
		marks: []proccpu.Mark{mark(0, 0), mark(time.Minute, 0.6), mark(70*time.Second, 6.6)},
		want:  []float64{0.01},
	}, {
		name:  "one interval of a minute",
		marks: []proccpu.Mark{mark(0, 1), mark(time.Minute, 1.6)},
		want:  []float64{0.01},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := busiestMinute(tc.marks, len(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if d := got[i] - tc.want[i]; d > 1e-9 || d < -1e-9 {
					t.Errorf("process %d: got %v cores, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestNextStepNeedsForecastsFromTheTenantsSoFar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		before, now float64
		started, n  int
		want        float64
	}{
		// The run that lost its host: 120 tenants had taken 21 100 MiB.
		{"the step past the machine", 23215, 2115, 120, 10, 1758.33},
		{"nothing started yet", 23215, 23215, 0, 10, 0},
		{"a short last step", 20000, 10000, 50, 3, 600},
		{"memory freed meanwhile", 10000, 12000, 10, 10, 0},
	} {
		if got := nextStepNeeds(tc.before, tc.now, tc.started, tc.n); got < tc.want-0.01 || got > tc.want+0.01 {
			t.Errorf("%s: nextStepNeeds = %.2f, want %.2f", tc.name, got, tc.want)
		}
	}
}
