package syncer

// The virtual Node manager's tests live here rather than beside nodesync:
// they need the API servers, and one test binary that links them is
// cheaper than two. They drive the Manager through what it exports (Ensure,
// Alias, Start) and stay with what a virtual Node must keep doing whatever
// decides which Nodes exist: stable aliases, Lease renewal, the Ready
// heartbeat, following knestd's address and port.

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/syncer/nodesync"
	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
)

func nodeManager(e *synctest.Env, key, address string, port int32) *nodesync.Manager {
	return nodesync.New(nodesync.Config{
		TenantClient: e.Writer.TenantClient, AliasKey: []byte(key), Address: address, KubeletPort: port,
		Version: "v1.37.2", Metrics: e.Writer.Metrics, HostPods: e.Writer.HostClient, Tenant: e.Tenant, HostNamespace: e.HostNamespace,
	})
}

func TestVirtualNodeAliases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := "alias key of " + e.Tenant
	m := nodeManager(e, key, "10.0.0.9", 10250)
	if again, restarted := m.Alias("host-a"), nodeManager(e, key, "10.0.0.9", 10250).Alias("host-a"); again != restarted {
		t.Errorf("alias of host-a changed across a restart: %s, then %s", again, restarted)
	}
	if m.Alias("host-a") == m.Alias("host-b") {
		t.Error("two host nodes share an alias")
	}
	if m.Alias("host-a") == nodeManager(e, "another "+key, "10.0.0.9", 10250).Alias("host-a") {
		t.Error("the alias does not depend on the key")
	}
	if a := m.Alias("host-a"); strings.Contains(a, "host-a") {
		t.Errorf("alias %s gives the host node's name away", a)
	}

	alias, err := m.Ensure(t.Context(), "host-a")
	if err != nil || alias != m.Alias("host-a") {
		t.Fatalf("Ensure = %s, %v; want %s", alias, err, m.Alias("host-a"))
	}
	e.WaitCaches(t)
	e.Writes()
	// Known now: nothing to read or write; after a restart, one read.
	for _, mm := range []*nodesync.Manager{m, nodeManager(e, key, "10.0.0.9", 10250)} {
		if again, err := mm.Ensure(t.Context(), "host-a"); err != nil || again != alias {
			t.Errorf("Ensure again = %s, %v; want %s", again, err, alias)
		}
		if w := e.Writes(); len(w) > 0 {
			t.Errorf("Ensure of an existing virtual Node wrote %v", w)
		}
	}
	var lease coordinationv1.Lease
	if err := e.TenantAdmin.Get(t.Context(), types.NamespacedName{Namespace: nodes.LeaseNamespace, Name: alias}, &lease); err != nil {
		t.Errorf("virtual Node %s has no Lease: %v", alias, err)
	}
}

// TestVirtualNodeHeartbeats is not parallel: a Manager maintains every
// virtual Node of the tenant cluster, and the tests share it.
func TestVirtualNodeHeartbeats(t *testing.T) {
	e := newEnv(t)
	key := "alias key of " + e.Tenant
	// knestd restarted: it now serves its kubelet API elsewhere.
	before := nodeManager(e, key, "10.0.0.9", 10250)
	after := nodeManager(e, key, "10.0.0.10", 10251)
	moved, err := before.Ensure(t.Context(), "host-moved")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := after.Ensure(t.Context(), "host-fresh")
	if err != nil {
		t.Fatal(err)
	}
	// The moved one's Ready condition is also overdue.
	var node corev1.Node
	if err := e.TenantAdmin.Get(t.Context(), types.NamespacedName{Name: moved}, &node); err != nil {
		t.Fatal(err)
	}
	for i, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			node.Status.Conditions[i].LastHeartbeatTime = metav1.NewTime(time.Now().Add(-5 * time.Minute))
		}
	}
	if err := e.TenantAdmin.Status().Update(t.Context(), &node); err != nil {
		t.Fatal(err)
	}
	leases := map[string]time.Time{}
	var freshNode corev1.Node
	for _, name := range []string{moved, fresh} {
		var l coordinationv1.Lease
		if err := e.TenantAdmin.Get(t.Context(), types.NamespacedName{Namespace: nodes.LeaseNamespace, Name: name}, &l); err != nil {
			t.Fatal(err)
		}
		leases[name] = l.Spec.RenewTime.Time
	}
	if err := e.TenantAdmin.Get(t.Context(), types.NamespacedName{Name: fresh}, &freshNode); err != nil {
		t.Fatal(err)
	}
	e.WaitCaches(t)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- after.Start(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Renew times have a microsecond resolution: a renewal a moment
	// later is later.
	// The Manager looks at its Nodes every ten seconds.
	eventuallyWithin(t, 25*time.Second, "Leases renewed, the overdue and moved Node refreshed", func(ctx context.Context) (bool, error) {
		for name, was := range leases {
			var l coordinationv1.Lease
			if err := e.TenantAdmin.Get(ctx, types.NamespacedName{Namespace: nodes.LeaseNamespace, Name: name}, &l); err != nil {
				return false, err
			}
			if !l.Spec.RenewTime.Time.After(was) {
				return false, nil
			}
		}
		if err := e.TenantAdmin.Get(ctx, types.NamespacedName{Name: moved}, &node); err != nil {
			return false, err
		}
		if node.Status.DaemonEndpoints.KubeletEndpoint.Port != 10251 || len(node.Status.Addresses) == 0 || node.Status.Addresses[0].Address != "10.0.0.10" {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && time.Since(c.LastHeartbeatTime.Time) < time.Minute, nil
			}
		}
		return false, nil
	})
	// A Node whose heartbeat is not due is left as it was: its Lease is
	// the heartbeat.
	var now corev1.Node
	if err := e.TenantAdmin.Get(t.Context(), types.NamespacedName{Name: fresh}, &now); err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != freshNode.ResourceVersion {
		t.Errorf("virtual Node %s was written though its heartbeat was not due", fresh)
	}
	if got := e.Counter(t, "knest_syncer_node_heartbeats_total", map[string]string{"kind": "Lease"}); got < 2 {
		t.Errorf("knest_syncer_node_heartbeats_total{kind=Lease} = %v, want both renewals counted", got)
	}
}
