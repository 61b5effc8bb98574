package podsync

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestHostFirst checks, on controller-runtime's own priority queue, that
// a host pod's change puts its tenant pod ahead of pods queued before it
// (creates waiting for the host budget), and that initial lists and
// resyncs do not.
func TestHostFirst(t *testing.T) {
	t.Parallel()
	q := priorityqueue.New[reconcile.Request]("test-host-first")
	defer q.ShutDown()
	req := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
	}
	// The host pod's name stands for its tenant pod's.
	h := HostFirst(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{req(o.GetName())}
	})
	hostPod := func(name, rv string) client.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
	}
	ctx := t.Context()
	for _, name := range []string{"new-1", "new-2", "new-3"} {
		q.Add(req(name))
	}
	h.Create(ctx, event.TypedCreateEvent[client.Object]{Object: hostPod("listed", "1"), IsInInitialList: true}, q)
	h.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: hostPod("resynced", "5"), ObjectNew: hostPod("resynced", "5")}, q)
	h.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: hostPod("running", "5"), ObjectNew: hostPod("running", "6")}, q)
	h.Create(ctx, event.TypedCreateEvent[client.Object]{Object: hostPod("created", "7")}, q)
	h.Delete(ctx, event.TypedDeleteEvent[client.Object]{Object: hostPod("gone", "8")}, q)
	// A host change of a pod already queued moves it ahead.
	h.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: hostPod("new-3", "8"), ObjectNew: hostPod("new-3", "9")}, q)

	want := []string{"running", "created", "gone", "new-3", "new-1", "new-2", "listed", "resynced"}
	for i, name := range want {
		got, priority, shutdown := q.GetWithPriority()
		if shutdown {
			t.Fatal("queue shut down")
		}
		if got != req(name) {
			t.Fatalf("item %d from the queue is %s (priority %d), want %s; order wanted: %v", i, got, priority, name, want)
		}
		q.Done(got)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d items left in the queue", n)
	}
}
