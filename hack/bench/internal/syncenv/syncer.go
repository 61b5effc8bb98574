package syncenv

import (
	"net/url"
	"time"

	"github.com/knest-dev/knest/hack/bench/internal/metrics"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

// SyncerActivity is what knestd's syncer did during a run, from its
// metrics. Its JSON fields are flat so a report can embed it.
type SyncerActivity struct {
	// HostRequests are knestd's requests to the host
	// (rest_client_requests_total), by method, and their rate.
	HostRequests     map[string]float64 `json:"syncer_host_requests"`
	HostRequestsPerS float64            `json:"syncer_host_requests_per_second"`
	// Writes are the syncer's writes by cluster, kind and operation.
	Writes        map[string]float64 `json:"syncer_writes"`
	PodReconciles float64            `json:"syncer_pod_reconciles"`
	// PodReconcileMeanMS is the mean time of one pod reconcile: with the
	// 16 workers it bounds the syncer's rate.
	PodReconcileMeanMS float64            `json:"syncer_pod_reconcile_mean_ms"`
	Errors             map[string]float64 `json:"syncer_errors,omitempty"`
	// The pod path in steps, means over the run: how long a tenant pod
	// waited in the pod controller's queue, and, by HTTP verb, how long
	// knestd's host requests waited for the host budget (--host-qps, the
	// client-side rate limiter) and then took (limiter excluded).
	PodQueueWaitMeanMS   float64            `json:"syncer_pod_queue_wait_mean_ms"`
	HostLimiterWaitMS    map[string]float64 `json:"syncer_host_rate_limiter_wait_mean_ms"`
	HostRequestLatencyMS map[string]float64 `json:"syncer_host_request_mean_ms"`
}

// SyncerBetween returns the syncer's activity between two scrapes of its
// metrics taken wall apart; hostServer is the host API server's URL, which
// tells knestd's requests to the host from those to its own API server.
func SyncerBetween(before, after metrics.Snapshot, hostServer string, wall time.Duration) (SyncerActivity, error) {
	host, err := url.Parse(hostServer)
	if err != nil {
		return SyncerActivity{}, err
	}
	a := SyncerActivity{
		HostRequests: metrics.Delta(before, after, "rest_client_requests_total", map[string]string{"host": host.Host}, "method"),
		Writes:       metrics.Delta(before, after, "knest_syncer_writes_total", nil, "cluster", "kind", "op"),
		Errors:       metrics.Delta(before, after, "knest_syncer_errors_total", nil, "kind"),
	}
	total := 0.0
	for _, v := range a.HostRequests {
		total += v
	}
	a.HostRequestsPerS = stats.Round(total / wall.Seconds())
	hostOnly := map[string]string{"host": host.Host}
	ms := func(seconds map[string]float64) map[string]float64 {
		for k, v := range seconds {
			seconds[k] = stats.Round(1000 * v)
		}
		return seconds
	}
	a.HostLimiterWaitMS = ms(metrics.MeanDelta(before, after, "rest_client_rate_limiter_duration_seconds", hostOnly, "verb"))
	a.HostRequestLatencyMS = ms(metrics.MeanDelta(before, after, "rest_client_request_duration_seconds", hostOnly, "verb"))
	a.PodQueueWaitMeanMS = ms(metrics.MeanDelta(before, after, "workqueue_queue_duration_seconds", map[string]string{"name": "sync-Pod"}, "name"))["sync-Pod"]
	pod := map[string]string{"kind": "Pod"}
	a.PodReconciles = metrics.Delta(before, after, "knest_syncer_reconciles_total", pod, "kind")["Pod"]
	a.PodReconcileMeanMS = ms(metrics.MeanDelta(before, after, "knest_syncer_reconcile_seconds", pod, "kind"))["Pod"]
	return a, nil
}
