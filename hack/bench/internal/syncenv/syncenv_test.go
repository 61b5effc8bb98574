package syncenv

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/knest-dev/knest/hack/bench/internal/metrics"
)

func TestSizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pods      int
		wantNodes int
		wantCIDR  string
	}{
		{name: "a few pods get the minimum of two nodes and a /16", pods: 10, wantNodes: 2, wantCIDR: "10.128.0.0/16"},
		{name: "a thousand pods get a node to spare", pods: 1202, wantNodes: 3, wantCIDR: "10.128.0.0/16"},
		{name: "ten thousand pods need more addresses than a /16", pods: 20202, wantNodes: 22, wantCIDR: "10.128.0.0/15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nodes, cidr := SizeHost(tt.pods)
			if nodes != tt.wantNodes || cidr != tt.wantCIDR {
				t.Errorf("SizeHost(%d) = %d, %s; want %d, %s", tt.pods, nodes, cidr, tt.wantNodes, tt.wantCIDR)
			}
		})
	}
}

func TestSyncerBetween(t *testing.T) {
	t.Parallel()
	parse := func(text string) metrics.Snapshot {
		t.Helper()
		m, err := metrics.Parse(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := parse(`rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 10
rest_client_requests_total{code="200",host="127.0.0.1:40000",method="GET"} 500
knest_syncer_writes_total{cluster="host",kind="Pod",op="create"} 1
knest_syncer_reconciles_total{kind="Pod"} 4
# TYPE knest_syncer_reconcile_seconds histogram
knest_syncer_reconcile_seconds_bucket{kind="Pod",le="+Inf"} 4
knest_syncer_reconcile_seconds_sum{kind="Pod"} 0.01
knest_syncer_reconcile_seconds_count{kind="Pod"} 4
# TYPE rest_client_request_duration_seconds histogram
rest_client_request_duration_seconds_bucket{host="127.0.0.1:6443",verb="POST",le="+Inf"} 10
rest_client_request_duration_seconds_sum{host="127.0.0.1:6443",verb="POST"} 0.05
rest_client_request_duration_seconds_count{host="127.0.0.1:6443",verb="POST"} 10
# TYPE rest_client_rate_limiter_duration_seconds histogram
rest_client_rate_limiter_duration_seconds_bucket{host="127.0.0.1:6443",verb="POST",le="+Inf"} 10
rest_client_rate_limiter_duration_seconds_sum{host="127.0.0.1:6443",verb="POST"} 0
rest_client_rate_limiter_duration_seconds_count{host="127.0.0.1:6443",verb="POST"} 10
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="sync-Pod",le="+Inf"} 4
workqueue_queue_duration_seconds_sum{name="sync-Pod"} 0.004
workqueue_queue_duration_seconds_count{name="sync-Pod"} 4
`)
	after := parse(`rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 210
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 20
rest_client_requests_total{code="200",host="127.0.0.1:40000",method="GET"} 900
knest_syncer_writes_total{cluster="host",kind="Pod",op="create"} 101
knest_syncer_writes_total{cluster="tenant",kind="Pod",op="status"} 100
knest_syncer_reconciles_total{kind="Pod"} 204
# TYPE knest_syncer_reconcile_seconds histogram
knest_syncer_reconcile_seconds_bucket{kind="Pod",le="+Inf"} 204
knest_syncer_reconcile_seconds_sum{kind="Pod"} 0.61
knest_syncer_reconcile_seconds_count{kind="Pod"} 204
# TYPE rest_client_request_duration_seconds histogram
rest_client_request_duration_seconds_bucket{host="127.0.0.1:6443",verb="POST",le="+Inf"} 210
rest_client_request_duration_seconds_sum{host="127.0.0.1:6443",verb="POST"} 1.05
rest_client_request_duration_seconds_count{host="127.0.0.1:6443",verb="POST"} 210
rest_client_request_duration_seconds_bucket{host="127.0.0.1:40000",verb="GET",le="+Inf"} 100
rest_client_request_duration_seconds_sum{host="127.0.0.1:40000",verb="GET"} 9
rest_client_request_duration_seconds_count{host="127.0.0.1:40000",verb="GET"} 100
# TYPE rest_client_rate_limiter_duration_seconds histogram
rest_client_rate_limiter_duration_seconds_bucket{host="127.0.0.1:6443",verb="POST",le="+Inf"} 210
rest_client_rate_limiter_duration_seconds_sum{host="127.0.0.1:6443",verb="POST"} 20
rest_client_rate_limiter_duration_seconds_count{host="127.0.0.1:6443",verb="POST"} 210
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="sync-Pod",le="+Inf"} 204
workqueue_queue_duration_seconds_sum{name="sync-Pod"} 0.204
workqueue_queue_duration_seconds_count{name="sync-Pod"} 204
`)
	got, err := SyncerBetween(before, after, "https://127.0.0.1:6443", 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := SyncerActivity{
		// Only the requests to the host; the tenant API server is another port.
		HostRequests: map[string]float64{"POST": 200, "GET": 20}, HostRequestsPerS: 55,
		Writes:        map[string]float64{"host Pod create": 100, "tenant Pod status": 100},
		PodReconciles: 200, PodReconcileMeanMS: 3, Errors: map[string]float64{},
		// 200 host POSTs waited 20 s for the budget and took 1 s; the
		// tenant's GETs are not the host's.
		HostLimiterWaitMS: map[string]float64{"POST": 100}, HostRequestLatencyMS: map[string]float64{"POST": 5},
		PodQueueWaitMeanMS: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SyncerBetween (-want +got):\n%s", diff)
	}
}
