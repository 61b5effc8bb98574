// Package eventsync copies host Events about a tenant's host copies onto
// the tenant objects they stand for, with host names rewritten to the
// tenant's: the object's own name, and the virtual Node for a host node.
package eventsync

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
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
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// Reconciler copies host Events about host copies onto the tenant objects
// they stand for. It reconciles host Events by key.
type Reconciler struct {
	// Kinds returns an empty object of each synced kind, by kind name:
	// Events about objects of other kinds are not copied.
	Kinds map[string]func() client.Object
	// Writer reads and writes both clusters.
	Writer *writer.Writer
	// NodeAlias names the virtual Node standing for a host node.
	NodeAlias func(hostNode string) string
	// KnownHostNodes returns the host nodes the tenant has virtual Nodes
	// for, each with its alias: any of them an Event message names (a
	// preemption names the node the preemptor goes to) reaches the tenant
	// as its alias. Nil knows none beyond the involved pod's node.
	KnownHostNodes func() map[string]string
}

// reasonScheduled is the reason of the host scheduler's Event on binding a
// pod; its message names the host node.
const reasonScheduled = "Scheduled"

// scrubber rewrites host names in an Event message about host object
// hostObj to what the tenant knows: the tenant object's name, and the
// virtual Node instead of the host node of a pod or of any host node the
// tenant has a virtual Node for.
func (r *Reconciler) scrubber(hostObj client.Object, id translate.Object) *strings.Replacer {
	pairs := []string{
		hostObj.GetNamespace() + "/" + hostObj.GetName(), id.Namespace + "/" + id.Name,
		hostObj.GetName(), id.Name,
	}
	known := map[string]string{}
	if r.KnownHostNodes != nil {
		known = r.KnownHostNodes()
	}
	if pod, ok := hostObj.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
		known[pod.Spec.NodeName] = r.NodeAlias(pod.Spec.NodeName)
	}
	// Longest first: the replacer tries its pairs in order at each
	// position, and node-1 must not take the front of node-10.
	hostNodes := slices.Collect(maps.Keys(known))
	slices.SortFunc(hostNodes, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	for _, h := range hostNodes {
		pairs = append(pairs, h, known[h])
	}
	return strings.NewReplacer(pairs...)
}

// Reconcile mirrors one host Event.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	start := time.Now()
	defer func() { r.Writer.Metrics.Observe("Event", time.Since(start), err) }()

	var ev corev1.Event
	if err := r.Writer.HostClient.Get(ctx, req.NamespacedName, &ev); kerrors.IsNotFound(err) {
		// Expired on the host; the tenant copy expires on its own.
		return reconcile.Result{}, nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to get Event %s in host cluster: %w", req, err)
	}
	newObj, ok := r.Kinds[ev.InvolvedObject.Kind]
	if !ok || ev.InvolvedObject.Namespace != r.Writer.HostNamespace {
		return reconcile.Result{}, nil
	}
	hostObj := newObj()
	err = r.Writer.HostClient.Get(ctx, types.NamespacedName{Namespace: r.Writer.HostNamespace, Name: ev.InvolvedObject.Name}, hostObj)
	if kerrors.IsNotFound(err) {
		// Not ours (the host cache sees only our copies), or gone.
		return reconcile.Result{}, nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	id, ok := translate.IdentityOf(r.Writer.Tenant, hostObj)
	if !ok {
		return reconcile.Result{}, nil
	}
	if id.UID == "" {
		// Not adopted yet: the tenant object may not exist so far.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}

	if pod, ok := hostObj.(*corev1.Pod); ok && pod.Spec.NodeName == "" && ev.Reason == reasonScheduled {
		// The binding is in the host API but not in our cache yet: the
		// message names the host node, which only the cached pod lets us
		// rewrite. Never copy it as it is.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}

	key := types.NamespacedName{Namespace: id.Namespace, Name: events.TenantEventName(id.Name, &ev)}
	existing := &corev1.Event{}
	if err := r.Writer.TenantClient.Get(ctx, key, existing); kerrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to get Event %s in tenant cluster: %w", key, err)
	}
	desired := events.Backward(&ev, id, "v1", existing, r.scrubber(hostObj, id))
	if existing == nil {
		klog.FromContext(ctx).V(1).Info("Copying host event", "virtual", key, "reason", ev.Reason)
		if err := r.Writer.TenantClient.Create(ctx, desired); err != nil && !kerrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("failed to create Event %s in tenant cluster: %w", key, err)
		}
		r.Writer.Metrics.TenantWrite("Event", "create")
		return reconcile.Result{}, nil
	}
	if equality.Semantic.DeepEqual(desired, existing) {
		return reconcile.Result{}, nil
	}
	if err := r.Writer.TenantClient.Update(ctx, desired); err != nil {
		return reconcile.Result{}, fmt.Errorf("failed to update Event %s in tenant cluster: %w", key, err)
	}
	r.Writer.Metrics.TenantWrite("Event", "update")
	return reconcile.Result{}, nil
}
