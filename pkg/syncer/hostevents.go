package syncer

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/syncer/resources/events"
	"github.com/knest-dev/knest/pkg/translate"
)

// eventReconciler copies host Events about host copies onto the tenant
// objects they stand for.
type eventReconciler struct {
	kinds         map[string]Kind
	tenant        string
	hostNamespace string
	tenantClient  client.Client
	hostClient    client.Client
	metrics       *metrics
	// nodeAlias names the virtual Node standing for a host node.
	nodeAlias func(hostNode string) string
}

// scrubber rewrites host names in an Event message about host object
// hostObj to what the tenant knows: the tenant object's name, and for pods
// the virtual Node instead of the host node.
func (r *eventReconciler) scrubber(hostObj client.Object, id translate.Object) *strings.Replacer {
	pairs := []string{
		hostObj.GetNamespace() + "/" + hostObj.GetName(), id.Namespace + "/" + id.Name,
		hostObj.GetName(), id.Name,
	}
	if pod, ok := hostObj.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
		pairs = append(pairs, pod.Spec.NodeName, r.nodeAlias(pod.Spec.NodeName))
	}
	return strings.NewReplacer(pairs...)
}

// Reconcile mirrors one host Event.
func (r *eventReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	start := time.Now()
	defer func() { r.metrics.observe("Event", time.Since(start), err) }()

	var ev corev1.Event
	if err := r.hostClient.Get(ctx, req.NamespacedName, &ev); kerrors.IsNotFound(err) {
		// Expired on the host; the tenant copy expires on its own.
		return reconcile.Result{}, nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to get Event %s in host cluster: %w", req, err)
	}
	kind, ok := r.kinds[ev.InvolvedObject.Kind]
	if !ok || ev.InvolvedObject.Namespace != r.hostNamespace {
		return reconcile.Result{}, nil
	}
	hostObj := kind.New()
	err = r.hostClient.Get(ctx, types.NamespacedName{Namespace: r.hostNamespace, Name: ev.InvolvedObject.Name}, hostObj)
	if kerrors.IsNotFound(err) {
		// Not ours (the host cache sees only our copies), or gone.
		return reconcile.Result{}, nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	id, ok := translate.IdentityOf(r.tenant, hostObj)
	if !ok {
		return reconcile.Result{}, nil
	}
	if id.UID == "" {
		// Not adopted yet: the tenant object may not exist so far.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}

	key := types.NamespacedName{Namespace: id.Namespace, Name: events.TenantEventName(id.Name, &ev)}
	existing := &corev1.Event{}
	if err := r.tenantClient.Get(ctx, key, existing); kerrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to get Event %s in tenant cluster: %w", key, err)
	}
	desired := events.Backward(&ev, id, "v1", existing, r.scrubber(hostObj, id))
	if existing == nil {
		klog.FromContext(ctx).V(1).Info("Copying host event", "virtual", key, "reason", ev.Reason)
		if err := r.tenantClient.Create(ctx, desired); err != nil && !kerrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("failed to create Event %s in tenant cluster: %w", key, err)
		}
		r.metrics.writeTenant("Event", "create")
		return reconcile.Result{}, nil
	}
	if equality.Semantic.DeepEqual(desired, existing) {
		return reconcile.Result{}, nil
	}
	if err := r.tenantClient.Update(ctx, desired); err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to update Event %s in tenant cluster: %w", key, err)
	}
	r.metrics.writeTenant("Event", "update")
	return reconcile.Result{}, nil
}
