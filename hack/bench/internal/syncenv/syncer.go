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
	pod := map[string]string{"kind": "Pod"}
	a.PodReconciles = metrics.Delta(before, after, "knest_syncer_reconciles_total", pod, "kind")["Pod"]
	seconds := metrics.Delta(before, after, "knest_syncer_reconcile_seconds_sum", pod, "kind")["Pod"]
	if count := metrics.Delta(before, after, "knest_syncer_reconcile_seconds_count", pod, "kind")["Pod"]; count > 0 {
		a.PodReconcileMeanMS = stats.Round(1000 * seconds / count)
	}
	return a, nil
}
