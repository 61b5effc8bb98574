package podorder

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/translate"
)

// clusters are the host and tenant API servers of this package's test.
var clusters synctest.Clusters

// TestMain starts them. The test runs a whole syncer, as TestSyncer in
// package syncer does, so it has a test process of its own: the syncer's
// controller names are unique per process.
func TestMain(m *testing.M) { synctest.Main(m, &clusters) }

// TestSyncerHostChangesGoAheadOfHostWrites runs the syncer with a small
// host budget and a backlog of new pods waiting for it, and checks that a
// pod the host runs meanwhile is Running in the tenant before the backlog
// is through: its status needs tenant writes only, and does not queue
// behind the creates.
func TestSyncerHostChangesGoAheadOfHostWrites(t *testing.T) {
	t.Parallel()
	e := synctest.New(t, &clusters, synctest.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	// The host budget, as knestd sets it: one token bucket for every host
	// request of the syncer (5 QPS, so 40 pods' creates take seconds).
	hostConfig := rest.CopyConfig(e.HostConfig)
	hostConfig.QPS, hostConfig.Burst = 5, 10
	hostConfig.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(5, 10)
	hostNode := "node-" + e.Tenant
	synctest.Create(t, e.HostAdmin, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: hostNode}})
	s, err := syncer.New(ctx, syncer.Config{
		Tenant: e.Tenant, HostNamespace: e.HostNamespace, TenantConfig: rest.CopyConfig(e.TenantConfig), HostConfig: hostConfig,
		MetricsRegistry: prometheus.NewRegistry(), Policy: policy.Default(policy.ProfileSoft),
		NodeAddress: "10.0.0.9", NodeAliasKey: []byte("a node alias key for " + e.Tenant), KubeletPort: 10250, Version: "v1.37.2",
		DNSServiceIP: "10.96.0.10", ClusterDomain: "cluster.local", PodWorkers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Run(t, ctx, cancel, s.Start)
	synctest.EventuallyWithin(t, time.Minute, "syncer ready", func(ctx context.Context) (bool, error) { return s.Ready(ctx) == nil, nil })

	// Without a token: a token Secret's renewal would keep the pod queued
	// for later, and an event for a queued pod keeps its place in the
	// queue, which would put it ahead for a reason other than the one
	// tested here.
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: name},
			Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	}
	hostPod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: e.Writer.HostKey(e.Namespace, name, translate.MaxSubdomainLength).Name}}
	}
	hostPods := func(ctx context.Context) (int, error) {
		var list corev1.PodList
		err := e.HostAdmin.List(ctx, &list, client.InNamespace(e.HostNamespace))
		return len(list.Items), err
	}

	// The first pod is made and bound on the host, and the syncer is done
	// with it: the tenant pod is bound too, and a quiet second passes so
	// that none of its events is still queued when the backlog comes.
	first := pod("first")
	synctest.Create(t, e.TenantAdmin, first)
	firstHost := hostPod("first")
	synctest.EventuallyWithin(t, time.Minute, "the first pod's host pod", func(ctx context.Context) (bool, error) { return synctest.Exists(ctx, e.HostAdmin, firstHost) })
	if err := e.HostAdmin.SubResource("binding").Create(t.Context(), firstHost, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: firstHost.Namespace, Name: firstHost.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: hostNode}}); err != nil {
		t.Fatal(err)
	}
	synctest.EventuallyWithin(t, time.Minute, "the first tenant pod bound", func(ctx context.Context) (bool, error) {
		_, err := synctest.Exists(ctx, e.TenantAdmin, first)
		return first.Spec.NodeName != "", err
	})
	time.Sleep(time.Second)

	// The backlog: each pod waits for its host write under the budget.
	const backlog = 40
	for i := range backlog {
		synctest.Create(t, e.TenantAdmin, pod(fmt.Sprintf("later-%d", i)))
	}
	synctest.EventuallyWithin(t, time.Minute, "the backlog under way", func(ctx context.Context) (bool, error) {
		n, err := hostPods(ctx)
		return n >= 3, err
	})

	// The host runs the first pod.
	synctest.RunHostPod(t, e.HostAdmin, firstHost)
	var atRunning int
	synctest.EventuallyWithin(t, 2*time.Minute, "the first tenant pod Running", func(ctx context.Context) (bool, error) {
		if _, err := synctest.Exists(ctx, e.TenantAdmin, first); err != nil {
			return false, err
		}
		if first.Status.Phase != corev1.PodRunning {
			return false, nil
		}
		n, err := hostPods(ctx)
		atRunning = n
		return true, err
	})
	// The backlog is 40 host creates at 5 a second (after a burst of up to
	// 10). FIFO, the first pod's status came after nearly all of them (40
	// of 41 host pods existed when it was Running); ahead of them, about a
	// third (13, with 7-10 of them from the burst).
	if atRunning > backlog*3/4 {
		t.Errorf("the first pod went Running in the tenant only once %d of %d host pods were created; want it ahead of the backlog", atRunning, backlog+1)
	}
	t.Logf("the first pod was Running in the tenant with %d of %d host pods created", atRunning, backlog+1)
}
