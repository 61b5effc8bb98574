package podsync

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/knest-dev/knest/pkg/translate"
)

// SetupWithManager registers the reconciler with mgr, with workers pods
// synced at once (0: 16). Tenant pods, their host pods (in host's cache)
// and the host pods' token Secrets all lead to the tenant pod; changes of
// host pods go ahead of the rest of the queue (HostFirst).
func (r *Reconciler) SetupWithManager(mgr manager.Manager, host cluster.Cluster, workers int) error {
	toTenantPod := func(kind string) func(context.Context, client.Object) []reconcile.Request {
		return func(_ context.Context, o client.Object) []reconcile.Request {
			id, ok := translate.IdentityOf(r.w.Tenant, o)
			if !ok || id.Kind != kind {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: id.Namespace, Name: id.Name}}}
		}
	}
	if workers == 0 {
		workers = 16
	}
	err := builder.ControllerManagedBy(mgr).
		Named("sync-Pod").
		// The echoes of the syncer's own tenant writes queue nothing.
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool { return !r.own.echo(e.ObjectOld, e.ObjectNew) },
			DeleteFunc: func(e event.DeleteEvent) bool {
				r.own.forget(e.Object)
				return true
			},
		})).
		WatchesRawSource(source.Kind(host.GetCache(), client.Object(&corev1.Pod{}), HostFirst(toTenantPod("Pod")))).
		WatchesRawSource(source.Kind(host.GetCache(), client.Object(&corev1.Secret{}), handler.TypedEnqueueRequestsFromMapFunc(toTenantPod(kindToken)))).
		// Host pods carry their tenant namespace's labels.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list corev1.PodList
			if err := mgr.GetClient().List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
				return nil
			}
			out := make([]reconcile.Request, 0, len(list.Items))
			for _, p := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
			}
			return out
		})).
		// HostFirst needs the priority queue (controller-runtime's
		// default): asked for, so a change of that default cannot turn
		// the ordering off unnoticed.
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, UsePriorityQueue: ptr.To(true)}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("failed to set up the Pod reconciler: %w", err)
	}
	return nil
}

// PriorityHostChange is the queue priority of a tenant pod whose host pod
// changed; other events queue at 0 (handler.LowPriority for the initial
// lists and resyncs).
const PriorityHostChange = 10

// HostFirst enqueues the tenant pods that changes of host pods map to
// ahead of the rest of the queue. What a host change asks for is, nearly
// always, tenant writes only: the binding, the status, the end of a
// deletion. The rest of the queue is mostly pods waiting for a host write
// (a create under the host budget, --host-qps): in a burst of N new pods,
// a FIFO queue put the status of pod 1 behind the creates of pods 2..N,
// so tenant Running lagged host Running by seconds although the tenant
// API server is local. Workers that wait on the host budget free up as it
// allows (every 1/QPS seconds), and each then takes host changes first.
// Events from initial lists and resyncs stay at low priority, as
// controller-runtime's own handlers do.
func HostFirst(toRequests func(context.Context, client.Object) []reconcile.Request) handler.TypedEventHandler[client.Object, reconcile.Request] {
	add := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], priority int, objs ...client.Object) {
		seen := map[reconcile.Request]bool{}
		for _, o := range objs {
			for _, req := range toRequests(ctx, o) {
				if seen[req] {
					continue
				}
				seen[req] = true
				if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
					pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(priority)}, req)
				} else {
					q.Add(req)
				}
			}
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			priority := PriorityHostChange
			if e.IsInInitialList {
				priority = handler.LowPriority
			}
			add(ctx, q, priority, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			priority := PriorityHostChange
			if e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
				priority = handler.LowPriority // a resync
			}
			add(ctx, q, priority, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, PriorityHostChange, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, PriorityHostChange, e.Object)
		},
	}
}
