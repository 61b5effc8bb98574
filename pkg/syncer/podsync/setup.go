package podsync

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/knest-dev/knest/pkg/translate"
)

// SetupWithManager registers the reconciler with mgr, with workers pods
// synced at once (0: 16). Tenant pods, their host pods (in host's cache)
// and the host pods' token Secrets all lead to the tenant pod.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, host cluster.Cluster, workers int) error {
	toTenantPod := func(kind string) handler.TypedEventHandler[client.Object, reconcile.Request] {
		return handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			id, ok := translate.IdentityOf(r.w.Tenant, o)
			if !ok || id.Kind != kind {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: id.Namespace, Name: id.Name}}}
		})
	}
	if workers == 0 {
		workers = 16
	}
	err := builder.ControllerManagedBy(mgr).
		Named("sync-Pod").
		For(&corev1.Pod{}).
		WatchesRawSource(source.Kind(host.GetCache(), client.Object(&corev1.Pod{}), toTenantPod("Pod"))).
		WatchesRawSource(source.Kind(host.GetCache(), client.Object(&corev1.Secret{}), toTenantPod(kindToken))).
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
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("failed to set up the Pod reconciler: %w", err)
	}
	return nil
}
