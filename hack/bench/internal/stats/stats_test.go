package stats

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		x, want float64
	}{
		{name: "two decimals stay", x: 1.25, want: 1.25},
		{name: "a half rounds up", x: 0.125, want: 0.13},
		{name: "below a half rounds down", x: 2.3449, want: 2.34},
		{name: "negative numbers round away from zero", x: -0.125, want: -0.13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Round(tt.x); got != tt.want {
				t.Errorf("Round(%v) = %v, want %v", tt.x, got, tt.want)
			}
		})
	}
}

func TestLatencyOf(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // unsorted: 100 down to 1
	}
	tests := []struct {
		name    string
		ms      []float64
		missing int
		want    Latency
	}{
		{name: "nearest-rank percentiles of an unsorted sample", ms: hundred, want: Latency{P50: 50, P99: 99, Max: 100, Samples: 100}},
		{name: "one sample is every percentile", ms: []float64{3.456}, missing: 2, want: Latency{P50: 3.46, P99: 3.46, Max: 3.46, Samples: 1, Missing: 2}},
		{name: "no samples: only what is missing", missing: 4, want: Latency{Missing: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, LatencyOf(tt.ms, tt.missing)); diff != "" {
				t.Errorf("LatencyOf (-want +got):\n%s", diff)
			}
		})
	}
}
