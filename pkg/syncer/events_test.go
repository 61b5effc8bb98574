package syncer

// The host Event reconciler's tests live here rather than beside eventsync,
// for the reason nodes_test.go gives.

import (
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/syncer/eventsync"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/syncer/resources/events"
	"github.com/knest-dev/knest/pkg/translate"
)

func TestHostEvents(t *testing.T) {
	t.Parallel()
	type involved int
	const (
		ourCopy involved = iota
		copyWithoutUID
		foreignObject
		otherKind
		noEvent
	)
	tests := []struct {
		name     string
		involved involved
		writes   []string
		result   reconcile.Result
	}{
		{name: "an Event about our host copy is copied to the tenant object", involved: ourCopy, writes: []string{"tenant create Event"}},
		{name: "an Event about a copy not adopted yet is looked at again soon", involved: copyWithoutUID, result: reconcile.Result{RequeueAfter: time.Second}},
		{name: "an Event about a host object that is not ours stays on the host", involved: foreignObject},
		{name: "an Event about a kind that is not synced stays on the host", involved: otherKind},
		{name: "an expired host Event is nothing to do", involved: noEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			k := kind(t, pol, "ConfigMap")
			r := &eventsync.Reconciler{Writer: e.Writer, NodeAlias: func(h string) string { return "alias-of-" + h },
				Kinds: map[string]func() client.Object{"ConfigMap": k.New}}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "cm"}}
			create(t, e.TenantAdmin, cm)
			from := cm.DeepCopy()
			if tt.involved == copyWithoutUID {
				from.UID = ""
			}
			h := hostCopy(e, k, pol, from)
			if tt.involved == foreignObject {
				h.SetLabels(nil)
			}
			create(t, e.HostAdmin, h)
			ref := corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: e.HostNamespace, Name: h.GetName(), UID: h.GetUID()}
			switch tt.involved {
			case otherKind:
				ref.Kind = "Deployment"
			}
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: "ev-" + e.Tenant},
				InvolvedObject: ref, Reason: "Audited", Message: "host object " + e.HostNamespace + "/" + h.GetName() + " was read",
				Type: corev1.EventTypeNormal, Count: 1, Source: corev1.EventSource{Component: "auditor"}}
			if tt.involved != noEvent {
				create(t, e.HostAdmin, ev)
			}
			key := client.ObjectKeyFromObject(ev)

			result, writes, err := e.Reconcile(t, r, key)
			if err != nil || result != tt.result {
				t.Errorf("Reconcile = %+v, %v; want %+v", result, err, tt.result)
			}
			if diff := cmp.Diff(tt.writes, synctest.Ops(writes)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			if tt.involved != ourCopy {
				return
			}
			var got corev1.Event
			id := translate.Object{Kind: "ConfigMap", Namespace: cm.Namespace, Name: cm.Name, UID: cm.UID}
			tenantKey := types.NamespacedName{Namespace: cm.Namespace, Name: events.TenantEventName(id.Name, ev)}
			if err := e.TenantAdmin.Get(t.Context(), tenantKey, &got); err != nil {
				t.Fatalf("no tenant Event %s: %v", tenantKey, err)
			}
			if want := "host object " + cm.Namespace + "/cm was read"; got.Message != want || got.InvolvedObject.UID != cm.UID {
				t.Errorf("tenant Event says %q about %s, want %q about the tenant ConfigMap", got.Message, got.InvolvedObject.UID, want)
			}
			e.Settle(t, r, key)

			// The host Event repeats: the tenant's copy follows.
			ev.Count = 2
			if err := e.HostAdmin.Update(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
			if _, writes, err := e.Reconcile(t, r, key); err != nil || !cmp.Equal(synctest.Ops(writes), []string{"tenant update Event"}) {
				t.Errorf("a repeated host Event: writes %v, error %v; want the tenant Event updated", writes, err)
			}
			e.Settle(t, r, key)
		})
	}
}

// The host scheduler's Scheduled Event names the host node: it reaches the
// tenant only with the virtual Node's name, and waits while our cache has
// not seen the binding yet rather than going out as it is.
func TestHostSchedulingEventsNameTheVirtualNode(t *testing.T) {
	t.Parallel()
	for _, boundInCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "binding not cached yet", true: "binding cached"}[boundInCache], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := &eventsync.Reconciler{Writer: e.Writer, NodeAlias: func(h string) string { return "alias-of-" + h },
				Kinds: map[string]func() client.Object{"Pod": func() client.Object { return &corev1.Pod{} }}}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
			create(t, e.TenantAdmin, pod)
			id := translate.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
			hostKey := e.Writer.HostKey(pod.Namespace, pod.Name, translate.MaxSubdomainLength)
			labels, annotations := translate.HostMeta(e.Tenant, id, nil, nil, translate.Passthrough{})
			host := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: hostKey.Namespace, Name: hostKey.Name, Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
			if boundInCache {
				host.Spec.NodeName = "host-node-7"
			}
			create(t, e.HostAdmin, host)
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: "sched-" + e.Tenant},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: host.Namespace, Name: host.Name, UID: host.UID},
				Reason:         "Scheduled", Message: "Successfully assigned " + host.Namespace + "/" + host.Name + " to host-node-7",
				Type: corev1.EventTypeNormal, Count: 1, Source: corev1.EventSource{Component: "default-scheduler"}}
			create(t, e.HostAdmin, ev)

			result, writes, err := e.Reconcile(t, r, client.ObjectKeyFromObject(ev))
			if err != nil {
				t.Fatal(err)
			}
			if !boundInCache {
				if want := (reconcile.Result{RequeueAfter: time.Second}); result != want || len(writes) > 0 {
					t.Errorf("Reconcile = %+v with writes %v; want %+v and no write", result, synctest.Ops(writes), want)
				}
				return
			}
			var got corev1.Event
			tenantKey := types.NamespacedName{Namespace: pod.Namespace, Name: events.TenantEventName(pod.Name, ev)}
			if err := e.TenantAdmin.Get(t.Context(), tenantKey, &got); err != nil {
				t.Fatalf("no tenant Event %s: %v", tenantKey, err)
			}
			if want := "Successfully assigned " + pod.Namespace + "/web to alias-of-host-node-7"; got.Message != want {
				t.Errorf("tenant Event says %q, want %q", got.Message, want)
			}
		})
	}
}

// A host Event may name host nodes other than its pod's: the scheduler's
// preemption message names the node the preemptor goes to. Every host node
// the tenant has a virtual Node for reaches it as that Node, including one
// whose name begins with another's.
func TestHostEventsNameNoKnownHostNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	known := map[string]string{"host-node-1": "vnode-one", "host-node-10": "vnode-ten"}
	r := &eventsync.Reconciler{Writer: e.Writer, NodeAlias: func(h string) string { return "alias-of-" + h },
		KnownHostNodes: func() map[string]string { return maps.Clone(known) },
		Kinds:          map[string]func() client.Object{"Pod": func() client.Object { return &corev1.Pod{} }}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	create(t, e.TenantAdmin, pod)
	id := translate.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	hostKey := e.Writer.HostKey(pod.Namespace, pod.Name, translate.MaxSubdomainLength)
	labels, annotations := translate.HostMeta(e.Tenant, id, nil, nil, translate.Passthrough{})
	host := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: hostKey.Namespace, Name: hostKey.Name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{NodeName: "host-node-7", Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	create(t, e.HostAdmin, host)
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: "preempt-" + e.Tenant},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: host.Namespace, Name: host.Name, UID: host.UID},
		Reason:         "Preempted", Message: "Preempted by pod 1234 on node host-node-10, was on host-node-7, near host-node-1",
		Type: corev1.EventTypeNormal, Count: 1, Source: corev1.EventSource{Component: "default-scheduler"}}
	create(t, e.HostAdmin, ev)
	if _, _, err := e.Reconcile(t, r, client.ObjectKeyFromObject(ev)); err != nil {
		t.Fatal(err)
	}
	var got corev1.Event
	tenantKey := types.NamespacedName{Namespace: pod.Namespace, Name: events.TenantEventName(pod.Name, ev)}
	if err := e.TenantAdmin.Get(t.Context(), tenantKey, &got); err != nil {
		t.Fatalf("no tenant Event %s: %v", tenantKey, err)
	}
	if want := "Preempted by pod 1234 on node vnode-ten, was on alias-of-host-node-7, near vnode-one"; got.Message != want {
		t.Errorf("tenant Event says %q, want %q", got.Message, want)
	}
}
