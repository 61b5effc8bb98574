package syncer

// The host Event reconciler's tests live here rather than beside eventsync,
// for the reason nodes_test.go gives.

import (
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
