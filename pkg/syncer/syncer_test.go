package syncer

import (
	"context"
	"net/netip"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
	"github.com/knest-dev/knest/pkg/translate"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{DNSServiceIP: "not-an-ip", NodeAliasKey: []byte("short")}.Validate()
	for _, want := range []string{"tenant name", "host namespace", "configs", "isolation policy", "not an IP address", "node address", "alias key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := New(t.Context(), Config{}); err == nil {
		t.Error("New took an empty configuration")
	}
}

// eventually polls cond for up to ten seconds, failing the test with what
// if it never holds.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// TestSyncer runs the syncer as knestd does, with its manager and every
// controller, and follows a pod and what it uses to the host and back.
func TestSyncer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	tenantConfig := rest.CopyConfig(e.TenantConfig)
	reg := prometheus.NewRegistry()
	hostNode := "node-" + e.Tenant
	create(t, e.HostAdmin, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: hostNode, Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}})
	s, err := New(ctx, Config{
		Tenant: e.Tenant, HostNamespace: e.HostNamespace, TenantConfig: tenantConfig, HostConfig: e.HostConfig,
		MetricsRegistry: reg, Policy: testPolicy(),
		NodeAddress: "10.0.0.9", NodeAliasKey: []byte("a node alias key for " + e.Tenant), KubeletPort: 10250, Version: "v1.37.2",
		DNSServiceIP: "10.96.0.10", ClusterDomain: "cluster.local", HostNodeInfo: true, PodWorkers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not ready before it runs: its caches have not synced.
	if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), "cache has not synced") {
		t.Errorf("Ready before Start = %v, want a cache that has not synced", err)
	}
	synctest.Run(t, ctx, cancel, s.Start)
	eventually(t, "syncer ready", func(ctx context.Context) (bool, error) { return s.Ready(ctx) == nil, nil })
	// Once ready, it stays ready while it works: every informer it reads
	// through exists before its caches start (knestd's /readyz is Ready).
	stopWatching := watchReady(t, ctx, s)
	addrs, ok := s.WaitForHostAddresses(ctx)
	if !ok {
		t.Fatal("the host caches never synced")
	}

	// The tenant's objects.
	create(t, e.TenantAdmin, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "settings"}, Data: map[string]string{"k": "v"}})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}}}
	create(t, e.TenantAdmin, svc)
	pod := podUsing(e.Namespace, "web-0", "settings")
	pod.Labels = map[string]string{"app": "web"}
	create(t, e.TenantAdmin, pod)

	hostKey := func(name string, max int) types.NamespacedName { return e.Writer.HostKey(e.Namespace, name, max) }
	hostCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: hostKey("settings", translate.MaxSubdomainLength).Name}}
	hostSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: hostKey("web", translate.MaxLabelLength).Name}}
	hostPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: hostKey("web-0", translate.MaxSubdomainLength).Name}}
	for _, obj := range []client.Object{hostCM, hostSvc, hostPod} {
		eventually(t, "host copy "+obj.GetName(), func(ctx context.Context) (bool, error) { return exists(ctx, e.HostAdmin, obj) })
	}

	// The host schedules and runs the pod.
	if err := e.HostAdmin.SubResource("binding").Create(t.Context(), hostPod, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: hostPod.Namespace, Name: hostPod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: hostNode}}); err != nil {
		t.Fatal(err)
	}
	// The syncer may write the host pod meanwhile (its token Secret's
	// owner, the binding's status): as a kubelet, retry on conflicts.
	runHostPod(t, e.HostAdmin, hostPod)
	eventually(t, "tenant pod bound and running", func(ctx context.Context) (bool, error) {
		if _, err := exists(ctx, e.TenantAdmin, pod); err != nil {
			return false, err
		}
		return pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning, nil
	})
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.NodeName}}
	eventually(t, "virtual node with the host node's zone", func(ctx context.Context) (bool, error) {
		if _, err := exists(ctx, e.TenantAdmin, node); err != nil {
			return false, err
		}
		return node.Labels[corev1.LabelTopologyZone] == "zone-a" && node.Labels[nodes.LabelVirtual] != "", nil
	})

	// The host addresses of the tenant's pods and Services are known.
	eventually(t, "the pod's host address is the tenant's", func(ctx context.Context) (bool, error) {
		got, err := addrs.TenantAddress(ctx, netip.MustParseAddr("10.244.3.4"))
		return got == "pod "+client.ObjectKeyFromObject(hostPod).String(), err
	})
	if err := e.TenantAdmin.Get(t.Context(), client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	if got, err := addrs.TenantAddress(t.Context(), netip.MustParseAddr(svc.Spec.ClusterIP)); err != nil || !strings.HasPrefix(got, "service ") {
		t.Errorf("TenantAddress(%s) = %q, %v; want the host Service", svc.Spec.ClusterIP, got, err)
	}
	if got, err := addrs.TenantAddress(t.Context(), netip.MustParseAddr("10.1.1.1")); err != nil || got != "" {
		t.Errorf("TenantAddress(10.1.1.1) = %q, %v; want none", got, err)
	}

	// A host Event about the host pod reaches the tenant pod, in the
	// tenant's names.
	create(t, e.HostAdmin, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: e.HostNamespace, Name: "pulled." + e.Tenant},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: e.HostNamespace, Name: hostPod.Name, UID: hostPod.UID},
		Reason:         "Pulled", Message: "pod " + e.HostNamespace + "/" + hostPod.Name + " pulled its image on " + hostNode,
		Type: corev1.EventTypeNormal, Count: 1, Source: corev1.EventSource{Component: "kubelet", Host: hostNode},
	})
	eventually(t, "the host Event in the tenant", func(ctx context.Context) (bool, error) {
		var list corev1.EventList
		if err := e.TenantAdmin.List(ctx, &list, client.InNamespace(e.Namespace)); err != nil {
			return false, err
		}
		for _, ev := range list.Items {
			if ev.Reason != "Pulled" {
				continue
			}
			want := "pod " + e.Namespace + "/web-0 pulled its image on " + node.Name
			if ev.InvolvedObject.Name != "web-0" || ev.Message != want {
				t.Errorf("tenant Event about %s says %q, want about web-0: %q", ev.InvolvedObject.Name, ev.Message, want)
			}
			return true, nil
		}
		return false, nil
	})

	// Once no pod uses the ConfigMap, its copy goes.
	if err := e.TenantAdmin.Delete(t.Context(), pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unused ConfigMap's host copy removed", func(ctx context.Context) (bool, error) {
		found, err := exists(ctx, e.HostAdmin, hostCM)
		return !found, err
	})
	eventually(t, "the host pod of the force-deleted tenant pod deleted", func(ctx context.Context) (bool, error) {
		found, err := exists(ctx, e.HostAdmin, hostPod)
		return !found || hostPod.DeletionTimestamp != nil, err
	})
	stopWatching()
}

// watchReady asks s.Ready every few milliseconds, as knestd's /readyz is
// asked, until the returned function is called, which fails the test if
// Ready failed meanwhile.
func watchReady(t *testing.T, ctx context.Context, s *Syncer) func() {
	t.Helper()
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		var first error
		defer func() { done <- first }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			if err := s.Ready(rctx); err != nil && first == nil && ctx.Err() == nil {
				first = err
			}
			cancel()
		}
	}()
	return func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("the syncer was ready, then not: %v", err)
		}
	}
}

// TestOnlyThePodQueueRunsTickers runs a syncer and counts the goroutines of
// controller-runtime's priority queues: each runs a 500 ms metrics ticker
// and a 10 s logging ticker, idle or not, so only the pod controller, which
// uses priorities, may have one (quietQueue). Not parallel: it counts the
// whole process's goroutines.
func TestOnlyThePodQueueRunsTickers(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := New(ctx, Config{
		Tenant: e.Tenant, HostNamespace: e.HostNamespace, TenantConfig: rest.CopyConfig(e.TenantConfig), HostConfig: e.HostConfig,
		MetricsRegistry: prometheus.NewRegistry(), Policy: testPolicy(),
		NodeAddress: "10.0.0.9", NodeAliasKey: []byte("a node alias key for " + e.Tenant), KubeletPort: 10250, Version: "v1.37.2",
		DNSServiceIP: "10.96.0.10", ClusterDomain: "cluster.local", PodWorkers: 2, skipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Run(t, ctx, cancel, s.Start)
	// The controllers make their queues when they start, after the caches
	// are ready; the pod controller's is the one expected.
	count := func(loop string) int {
		var dump strings.Builder
		if err := pprof.Lookup("goroutine").WriteTo(&dump, 2); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(dump.String(), "\n") {
			if strings.Contains(line, "controller/priorityqueue.(*priorityqueue[") && strings.Contains(line, ")."+loop+"(") {
				n++
			}
		}
		return n
	}
	eventually(t, "the pod controller started", func(ctx context.Context) (bool, error) { return count("logState") > 0, nil })
	time.Sleep(time.Second) // the other controllers start at the same time
	for _, loop := range []string{"updateUnfinishedWorkLoop", "logState"} {
		if n := count(loop); n != 1 {
			t.Errorf("%d priority-queue %s goroutines, want 1 (the pod controller's)", n, loop)
		}
	}
}
