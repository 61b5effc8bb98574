// Package metrics reads a Prometheus metrics endpoint (the text format,
// parsed by expfmt) into flat samples, as the benchmarks compare them: the
// sum of a metric's samples, and how much counters grew between two
// scrapes. Histograms and summaries appear as their _bucket, _sum and
// _count samples.
package metrics

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one sample of a scrape.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Snapshot is one scrape.
type Snapshot []Sample

// Scrape reads the metrics at url (http://HOST:PORT/metrics).
func Scrape(ctx context.Context, url string) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics at %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Snapshot, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("failed to parse metrics: %w", err)
	}
	names := slices.Sorted(maps.Keys(families))
	var out Snapshot
	for _, name := range names {
		vector, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, families[name])
		if err != nil {
			return nil, fmt.Errorf("failed to read metric %s: %w", name, err)
		}
		for _, s := range vector {
			labels := make(map[string]string, len(s.Metric))
			for k, v := range s.Metric {
				if k != model.MetricNameLabel {
					labels[string(k)] = string(v)
				}
			}
			out = append(out, Sample{Name: string(s.Metric[model.MetricNameLabel]), Labels: labels, Value: float64(s.Value)})
		}
	}
	return out, nil
}

// Sum adds the samples of a metric whose labels include match, and says
// whether there were any.
func (m Snapshot) Sum(name string, match map[string]string) (float64, bool) {
	total, found := 0.0, false
	for _, s := range m {
		if s.Name == name && matches(s, match) {
			total += s.Value
			found = true
		}
	}
	return total, found
}

// Delta returns, for every combination of the values of the labels by
// (joined with spaces), how much a counter grew from before to after,
// counting the samples whose labels include match. Zero growth is left
// out.
func Delta(before, after Snapshot, name string, match map[string]string, by ...string) map[string]float64 {
	out := map[string]float64{}
	add := func(m Snapshot, sign float64) {
		for _, s := range m {
			if s.Name != name || !matches(s, match) {
				continue
			}
			parts := make([]string, len(by))
			for i, l := range by {
				parts[i] = s.Labels[l]
			}
			out[strings.Join(parts, " ")] += sign * s.Value
		}
	}
	add(after, 1)
	add(before, -1)
	maps.DeleteFunc(out, func(_ string, v float64) bool { return v == 0 })
	return out
}

func matches(s Sample, match map[string]string) bool {
	for k, v := range match {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// MeanDelta returns, for every combination of the values of the labels by
// (as Delta groups them), the mean of the observations a histogram or
// summary named name (without its _sum/_count suffix) took between two
// scrapes: the growth of its _sum over the growth of its _count. Groups
// without new observations are left out.
func MeanDelta(before, after Snapshot, name string, match map[string]string, by ...string) map[string]float64 {
	sums := Delta(before, after, name+"_sum", match, by...)
	counts := Delta(before, after, name+"_count", match, by...)
	out := map[string]float64{}
	for k, n := range counts {
		if n > 0 {
			out[k] = sums[k] / n
		}
	}
	return out
}
