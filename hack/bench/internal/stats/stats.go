// Package stats summarises the benchmarks' measurements for their JSON
// reports: numbers rounded to two decimals and latency distributions as
// nearest-rank percentiles.
package stats

import (
	"math"
	"slices"
)

// Round rounds x to two decimals, halves away from zero.
func Round(x float64) float64 {
	if x < 0 {
		return -Round(-x)
	}
	return float64(int64(x*100+0.5)) / 100
}

// Latency is a distribution in milliseconds.
type Latency struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Samples int     `json:"samples"`
	// Missing counts what could not be measured (a pod one of whose two
	// times was not seen).
	Missing int `json:"missing,omitempty"`
}

// LatencyOf summarises ms, of which missing more could not be measured.
func LatencyOf(ms []float64, missing int) Latency {
	if len(ms) == 0 {
		return Latency{Missing: missing}
	}
	sorted := slices.Sorted(slices.Values(ms))
	return Latency{
		P50: Round(Rank(sorted, 0.50)), P99: Round(Rank(sorted, 0.99)), Max: Round(sorted[len(sorted)-1]),
		Samples: len(sorted), Missing: missing,
	}
}

// Rank is the nearest-rank percentile p (0 to 1) of sorted.
func Rank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
