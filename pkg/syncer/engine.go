package syncer

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// Kind tells the generic reconciler how to sync one resource.
type Kind struct {
	// Name is the kind's name, e.g. "ConfigMap"; it goes into the
	// knest.io/kind annotation.
	Name string
	// New returns an empty object of the kind.
	New func() client.Object
	// MaxNameLength is the kind's name limit on the host.
	MaxNameLength int
	// Forward returns the desired host object for a tenant object, given
	// the current host copy (nil if none) and the metadata the syncer owns.
	// It must not modify its inputs.
	Forward func(tenant, host client.Object, meta translate.Meta) client.Object
	// Recreate reports whether host cannot be changed in place to desired.
	Recreate func(desired, host client.Object) bool
	// Backward returns the tenant object with what the host owns (its
	// status) taken from the host copy; it is written through the status
	// subresource. Nil means nothing flows back. It must not modify its
	// inputs.
	Backward func(host, tenant client.Object) client.Object
	// OrphanGrace spares host copies without a tenant UID that are younger
	// than this: Services are created on the host in admission, before the
	// tenant object is stored (and has a UID).
	OrphanGrace time.Duration
	// Wanted reports whether a tenant object belongs on the host at all
	// (ConfigMaps and Secrets only while a pod references them). Nil means
	// always.
	Wanted func(ctx context.Context, tenant client.Reader, obj client.Object) (bool, error)
	// Refuse returns why a wanted object must not reach the host (the
	// tenant gets the reason as a warning Event, and any host copy goes),
	// or "". Nil means never.
	Refuse func(ctx context.Context, host client.Reader, hostNamespace string, obj client.Object) (string, error)
	// Triggers are other objects whose changes may change what Wanted or
	// Refuse decide, and so must reconcile objects of this kind.
	Triggers []Trigger
	// Hostnames returns the hostnames a host object serves; nil means the
	// kind serves none. Before a host copy is written each is claimed for
	// the tenant's host namespace (pkg/hostclaim): one another tenant
	// holds refuses the object. A hostname a host copy stops serving is
	// released unless HostnamesInUse still lists it.
	Hostnames func(host client.Object) []string
	// HostnamesInUse returns the hostnames the tenant's host copies of the
	// kind serve (from the host cache, which holds only this tenant's),
	// but for the copy named except, which is being changed or deleted.
	HostnamesInUse func(ctx context.Context, host client.Reader, hostNamespace, except string) (map[string]bool, error)
}

// Trigger maps changes of another object to tenant objects of a Kind.
type Trigger struct {
	// Host says the object is watched in the host cache (the tenant's
	// marker-filtered copies), not the tenant's.
	Host bool
	// Object is an empty object of the watched type.
	Object client.Object
	// Requests returns the tenant objects to reconcile when o changes.
	Requests func(ctx context.Context, tenant client.Reader, o client.Object) []reconcile.Request
}

// refusedRetry is how soon a refused object is looked at again: what made it
// unacceptable (a pod IP not known yet, say) may change without an event on
// the object itself.
const refusedRetry = 10 * time.Second

// reconciler is the generic level-based reconciler of one Kind.
type reconciler struct {
	kind Kind
	w    *writer.Writer
	// pass is the operator's allowlist of tenant metadata keys that reach
	// host objects as they are.
	pass translate.Passthrough
}

// Reconcile brings the host copy of one tenant object in line.
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	start := time.Now()
	defer func() {
		r.w.Metrics.Observe(r.kind.Name, time.Since(start), err)
	}()
	logger := klog.FromContext(ctx).WithValues("kind", r.kind.Name, "virtual", req.NamespacedName)

	obj := r.kind.New()
	if found, err := r.w.GetTenant(ctx, r.kind.Name, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, err
	} else if !found {
		obj = nil
	}
	wanted := obj != nil && obj.GetDeletionTimestamp() == nil
	if wanted && r.kind.Wanted != nil {
		if wanted, err = r.kind.Wanted(ctx, r.w.TenantClient, obj); err != nil {
			return reconcile.Result{}, err
		}
	}

	var refused string
	if wanted && r.kind.Refuse != nil {
		if refused, err = r.kind.Refuse(ctx, r.w.HostClient, r.w.HostNamespace, obj); err != nil {
			return reconcile.Result{}, err
		}
		if refused != "" {
			r.w.Warn(obj, "SyncRefused", "%s", refused)
			wanted = false
		}
	}

	hostKey := r.w.HostKey(req.Namespace, req.Name, r.kind.MaxNameLength)
	host := r.kind.New()
	if found, err := r.w.GetHost(ctx, r.kind.Name, hostKey, host); err != nil {
		return reconcile.Result{}, err
	} else if !found {
		host = nil
	}

	id := translate.Object{Kind: r.kind.Name, Namespace: req.Namespace, Name: req.Name}
	if wanted {
		id.UID = obj.GetUID()
	}
	if host != nil {
		switch translate.Owns(r.w.Tenant, id, host) {
		case translate.NotOurs:
			if wanted {
				r.w.NotOurs(obj, hostKey)
			}
			return reconcile.Result{}, nil
		case translate.Stale:
			logger.Info("Deleting stale host copy", "host", hostKey, "hostUID", host.GetUID())
			if err := r.w.DeleteHost(ctx, r.kind.Name, host); err != nil {
				return reconcile.Result{}, r.w.Failed(obj, err)
			}
			if err := r.release(ctx, host, nil); err != nil {
				return reconcile.Result{}, err
			}
			host = nil
		case translate.Ours:
			if !wanted {
				// A copy that never had a tenant UID was made in admission
				// for an object that may not be stored yet: spare it for a
				// while. One with a UID stood for a stored object, now gone.
				age := time.Since(host.GetCreationTimestamp().Time)
				if obj == nil && host.GetAnnotations()[translate.AnnotationUID] == "" && age < r.kind.OrphanGrace {
					return reconcile.Result{RequeueAfter: r.kind.OrphanGrace - age}, nil
				}
				logger.Info("Deleting host copy", "host", hostKey)
				if err := r.w.DeleteHost(ctx, r.kind.Name, host); err != nil {
					return reconcile.Result{}, err
				}
				if err := r.release(ctx, host, nil); err != nil {
					return reconcile.Result{}, err
				}
				if refused != "" {
					return reconcile.Result{RequeueAfter: refusedRetry}, nil
				}
				return reconcile.Result{}, nil
			}
		}
	}
	if refused != "" {
		return reconcile.Result{RequeueAfter: refusedRetry}, nil
	}
	if !wanted {
		return reconcile.Result{}, nil
	}

	labels, annotations := translate.HostMeta(r.w.Tenant, id, obj.GetLabels(), obj.GetAnnotations(), r.pass)
	meta := translate.Meta{
		Name: hostKey.Name, Namespace: hostKey.Namespace, Labels: labels, Annotations: annotations,
		Tenant: r.w.Tenant, TenantNamespace: req.Namespace,
	}
	desired := r.kind.Forward(obj, host, meta)
	if r.kind.Hostnames != nil && (host == nil || !equality.Semantic.DeepEqual(desired, host)) {
		// Claimed at every host write, so a claim an operator removed by
		// hand comes back with the next change.
		if refused, err := r.claim(ctx, obj, desired); err != nil || refused {
			if err == nil && host != nil {
				logger.Info("Deleting host copy of a refused object", "host", hostKey)
				if err = r.w.DeleteHost(ctx, r.kind.Name, host); err == nil {
					err = r.release(ctx, host, nil)
				}
			}
			return reconcile.Result{RequeueAfter: refusedRetry}, err
		}
	}
	if host == nil {
		logger.Info("Creating host copy", "host", hostKey)
		_, result, err := r.w.CreateHost(ctx, obj, id, desired)
		return result, err
	}
	if equality.Semantic.DeepEqual(desired, host) {
		return r.backward(ctx, obj, host)
	}
	if r.kind.Recreate != nil && r.kind.Recreate(desired, host) {
		logger.Info("Recreating host copy", "host", hostKey)
		if err := r.w.DeleteHost(ctx, r.kind.Name, host); err != nil {
			return reconcile.Result{}, r.w.Failed(obj, err)
		}
		return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	logger.Info("Updating host copy", "host", hostKey)
	if conflict, err := r.w.PatchHost(ctx, r.kind.Name, obj, desired, host); err != nil || conflict {
		return reconcile.Result{Requeue: conflict}, err
	}
	if err := r.release(ctx, host, desired); err != nil {
		return reconcile.Result{}, err
	}
	return r.backward(ctx, obj, host)
}

// claim claims the hostnames desired serves for the tenant; refused
// reports one held by another tenant, which the tenant is told.
func (r *reconciler) claim(ctx context.Context, obj, desired client.Object) (refused bool, err error) {
	for _, h := range r.kind.Hostnames(desired) {
		holder, err := r.w.ClaimHostname(ctx, h)
		if err != nil {
			return false, r.w.Failed(obj, err)
		}
		if holder != r.w.HostNamespace {
			r.w.Warn(obj, "SyncRefused", "hostname %s is taken by another tenant of this host; use another hostname", h)
			return true, nil
		}
	}
	return false, nil
}

// release lets go of the hostnames old served and desired (nil: none) does
// not, unless another of the tenant's objects still asks for them.
func (r *reconciler) release(ctx context.Context, old, desired client.Object) error {
	if r.kind.Hostnames == nil {
		return nil
	}
	keep := map[string]bool{}
	if desired != nil {
		for _, h := range r.kind.Hostnames(desired) {
			keep[h] = true
		}
	}
	var gone []string
	for _, h := range r.kind.Hostnames(old) {
		if !keep[h] {
			gone = append(gone, h)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	inUse, err := r.kind.HostnamesInUse(ctx, r.w.HostClient, r.w.HostNamespace, old.GetName())
	if err != nil {
		return err
	}
	for _, h := range gone {
		if inUse[h] {
			continue
		}
		if err := r.w.ReleaseHostname(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// backward brings what the host owns back to the tenant object.
func (r *reconciler) backward(ctx context.Context, obj, host client.Object) (reconcile.Result, error) {
	if r.kind.Backward == nil {
		return reconcile.Result{}, nil
	}
	desired := r.kind.Backward(host, obj)
	if equality.Semantic.DeepEqual(desired, obj) {
		return reconcile.Result{}, nil
	}
	if err := r.w.TenantClient.Status().Update(ctx, desired); err != nil {
		if kerrors.IsConflict(err) || kerrors.IsNotFound(err) {
			return reconcile.Result{Requeue: true}, nil
		}
		return reconcile.Result{}, fmt.Errorf("failed to update status of %s %s/%s in tenant cluster: %w", r.kind.Name, obj.GetNamespace(), obj.GetName(), err)
	}
	r.w.Metrics.TenantWrite(r.kind.Name, "status")
	return reconcile.Result{}, nil
}
