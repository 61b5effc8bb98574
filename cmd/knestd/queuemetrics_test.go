package main

import (
	"runtime"
	"testing"

	"k8s.io/client-go/util/workqueue"
)

// TestWorkQueuesRunNoMetricsTicker checks, in a binary with knestd's
// imports and so knestd's package initialisation, that a named work queue
// starts no metrics goroutine: the process-wide provider is client-go's
// no-op one (internal/noqueuemetrics), not the one the controller-manager's
// or controller-runtime's packages set from their inits.
func TestWorkQueuesRunNoMetricsTicker(t *testing.T) {
	// Not parallel: it counts the process's goroutines. A queue starts no
	// goroutine of its own but the metrics loop (updateUnfinishedWorkLoop),
	// so creating one changes the count by one with metrics and by none
	// without.
	before := runtime.NumGoroutine()
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "knest-probe"})
	defer q.ShutDown()
	if got := runtime.NumGoroutine() - before; got != 0 {
		t.Errorf("a named work queue started %d goroutine(s): a work-queue metrics provider other than client-go's no-op one is set, so every queue in knestd runs updateUnfinishedWorkLoop, a 500 ms ticker", got)
	}

	// The same count sees the loop of a queue given a provider.
	before = runtime.NumGoroutine()
	withMetrics := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "knest-probe-metrics", MetricsProvider: someProvider{}})
	defer withMetrics.ShutDown()
	if got := runtime.NumGoroutine() - before; got != 1 {
		t.Errorf("a queue with a metrics provider started %d goroutine(s), want 1: the check cannot see the metrics loop", got)
	}
}

type someProvider struct{}

type metric struct{}

func (metric) Inc()            {}
func (metric) Dec()            {}
func (metric) Set(float64)     {}
func (metric) Observe(float64) {}

func (someProvider) NewDepthMetric(string) workqueue.GaugeMetric            { return metric{} }
func (someProvider) NewAddsMetric(string) workqueue.CounterMetric           { return metric{} }
func (someProvider) NewLatencyMetric(string) workqueue.HistogramMetric      { return metric{} }
func (someProvider) NewWorkDurationMetric(string) workqueue.HistogramMetric { return metric{} }
func (someProvider) NewUnfinishedWorkSecondsMetric(string) workqueue.SettableGaugeMetric {
	return metric{}
}
func (someProvider) NewLongestRunningProcessorSecondsMetric(string) workqueue.SettableGaugeMetric {
	return metric{}
}
func (someProvider) NewRetriesMetric(string) workqueue.CounterMetric { return metric{} }
