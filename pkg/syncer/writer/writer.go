// Package writer holds what every syncer controller does when it writes to
// the host or the tenant cluster: reads that tell "absent" from "failed",
// host writes with the ownership check, UID preconditions and optimistic
// locks, warning Events for the tenant, and the knest_syncer_* metrics for
// the operator. The generic engine and the pod, node and event controllers
// share it, so each rule is written once.
package writer

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/translate"
)

// Writer writes one tenant's objects and their host copies.
type Writer struct {
	// Tenant is the tenant's name: the value of the marker label.
	Tenant string
	// HostNamespace is the host namespace the tenant's copies live in.
	HostNamespace string
	// TenantClient reads (from the cache) and writes the tenant cluster.
	TenantClient client.Client
	// HostClient reads the tenant's marker-labelled host objects from the
	// host cache, and writes the host cluster.
	HostClient client.Client
	// HostReader reads the host API directly, past the marker-filtered
	// cache.
	HostReader client.Reader
	// Recorder records Events on tenant objects; nil records none.
	Recorder events.EventRecorder
	// Metrics counts reconciles and writes.
	Metrics *Metrics
}

// Conflict retry delays: an object of ours that the cache has not caught up
// with comes back with its watch event, one that is not ours is looked at
// again in case the operator removes it.
const (
	cacheLagRetry = time.Second
	notOursRetry  = 30 * time.Second
)

// HostKey is the host copy's key of tenant object namespace/name, for a kind
// whose names on the host may be at most maxLen long.
func (w *Writer) HostKey(namespace, name string, maxLen int) types.NamespacedName {
	return types.NamespacedName{Namespace: w.HostNamespace, Name: translate.HostName(w.Tenant, namespace, name, maxLen)}
}

// GetTenant reads a tenant object into obj; false, and no error, if there
// is none.
func (w *Writer) GetTenant(ctx context.Context, kind string, key types.NamespacedName, obj client.Object) (bool, error) {
	return get(ctx, w.TenantClient, "tenant", kind, key, obj)
}

// GetHost reads a host object of the tenant's into obj from the host cache;
// false, and no error, if there is none.
func (w *Writer) GetHost(ctx context.Context, kind string, key types.NamespacedName, obj client.Object) (bool, error) {
	return get(ctx, w.HostClient, "host", kind, key, obj)
}

func get(ctx context.Context, c client.Reader, cluster, kind string, key types.NamespacedName, obj client.Object) (bool, error) {
	err := c.Get(ctx, key, obj)
	if kerrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get %s %s in %s cluster: %w", kind, key, cluster, err)
	}
	return true, nil
}

// CreateHost creates desired, the host copy of tenant object obj (identity
// id). When the name is taken, the host cache (which sees only objects with
// the tenant's marker) did not show the taker: it is read directly, and the
// result says when to look again, after a warning Event on obj if the taker
// is not ours. created reports the create went through.
func (w *Writer) CreateHost(ctx context.Context, obj client.Object, id translate.Object, desired client.Object) (created bool, result reconcile.Result, err error) {
	key := client.ObjectKeyFromObject(desired)
	err = w.HostClient.Create(ctx, desired)
	if err == nil {
		w.Metrics.HostWrite(id.Kind, "create")
		return true, reconcile.Result{}, nil
	}
	if !kerrors.IsAlreadyExists(err) {
		return false, reconcile.Result{}, w.Failed(obj, fmt.Errorf("failed to create %s %s in host cluster: %w", id.Kind, key, err))
	}
	existing, ok := desired.DeepCopyObject().(client.Object)
	if !ok {
		return false, reconcile.Result{}, fmt.Errorf("%T is not a client.Object", desired)
	}
	if err := w.HostReader.Get(ctx, key, existing); err != nil {
		return false, reconcile.Result{}, fmt.Errorf("failed to get %s %s in host cluster: %w", id.Kind, key, err)
	}
	if translate.Owns(w.Tenant, id, existing) != translate.NotOurs {
		return false, reconcile.Result{RequeueAfter: cacheLagRetry}, nil
	}
	w.NotOurs(obj, key)
	return false, reconcile.Result{RequeueAfter: notOursRetry}, nil
}

// PatchHost patches host object current to desired, with an optimistic
// lock: conflict reports that current was stale, and nothing was written.
// A failure is also an Event on tenant object obj.
func (w *Writer) PatchHost(ctx context.Context, kind string, obj, desired, current client.Object) (conflict bool, err error) {
	err = w.HostClient.Patch(ctx, desired, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{}))
	if kerrors.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, w.Failed(obj, fmt.Errorf("failed to update %s %s in host cluster: %w", kind, client.ObjectKeyFromObject(current), err))
	}
	w.Metrics.HostWrite(kind, "update")
	return false, nil
}

// DeleteHost deletes host object h, on condition that it is still the
// object read (same UID); an object already gone is no error.
func (w *Writer) DeleteHost(ctx context.Context, kind string, h client.Object, opts ...client.DeleteOption) error {
	uid := h.GetUID()
	opts = append([]client.DeleteOption{client.Preconditions{UID: &uid}}, opts...)
	if err := w.HostClient.Delete(ctx, h, opts...); err != nil && !kerrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete %s %s/%s in host cluster: %w", kind, h.GetNamespace(), h.GetName(), err)
	}
	w.Metrics.HostWrite(kind, "delete")
	return nil
}

// NotOurs tells the tenant that the host name of obj is taken by an object
// knest does not manage, which is left alone.
func (w *Writer) NotOurs(obj client.Object, key types.NamespacedName) {
	w.Warn(obj, "HostNameConflict", "host object %s exists and is not managed by knest; it is left alone", key)
}

// Failed makes a sync failure visible to the tenant as an Event on its
// object, and returns the error for the operator's logs and a retry.
func (w *Writer) Failed(obj client.Object, err error) error {
	w.Warn(obj, "SyncFailed", "%s", err.Error())
	return err
}

// Warn records a warning Event on tenant object obj (nil: none).
func (w *Writer) Warn(obj client.Object, reason, format string, args ...any) {
	if obj == nil || w.Recorder == nil {
		return
	}
	w.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, reason, "Sync", format, args...)
}
