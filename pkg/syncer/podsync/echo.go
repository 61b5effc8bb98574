package podsync

import (
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownWrites tells the tenant pod's update events that only echo the
// syncer's own writes (the binding and the status write of the status path)
// from the rest, so the echoes are dropped before they queue a reconcile.
// Each such echo used to cost a whole reconcile that found nothing to do
// (two cache reads, the host pod built and checked again, the status
// compared), two of the five or six reconciles of a pod that starts, and
// one that ran before the status write's echo reached the cache wrote the
// same status again.
//
// It never guesses. While a reconcile writes the tenant pod it holds a
// span of the pod's resourceVersions, from the one it read: update events
// that start inside the span are held back (not queued). Once the status
// patch returns, the pod as stored (the response) is compared with what the
// reconcile asked for; equal, nobody else changed the pod between the read
// and the write, and every update up to the response's resourceVersion is
// the syncer's own and is dropped. Anything else (no status write, a
// failed one, a stored pod that differs, an event held back that came
// after the write) requeues the pod, which is what the held-back events
// would have done. Events of other kinds (creation, deletion, the host
// pod's, the Namespace's) and requeues are never held back.
//
// Resource versions are opaque by the API's contract; the tenant API
// server is knestd's own, whose resource versions are etcd revisions and
// grow with every write. One that does not parse as a number holds back
// nothing.
type ownWrites struct {
	mu    sync.Mutex
	spans map[types.NamespacedName]*span
}

// span is the range of a pod's resource versions that the syncer wrote:
// (from, to]; to is 0 while the write is in flight.
type span struct {
	from, to uint64
	// proven: the stored pod at to was what the syncer asked for.
	proven bool
	// heldBack is the newest resource version held back while the write
	// was in flight (0: none).
	heldBack uint64
}

func newOwnWrites() *ownWrites {
	return &ownWrites{spans: map[types.NamespacedName]*span{}}
}

func parseRV(rv string) (uint64, bool) {
	v, err := strconv.ParseUint(rv, 10, 64)
	return v, err == nil && v > 0
}

// begin opens a span for a write to pod key, read at resource version
// from, and reports whether it did; if so, the caller calls end, whatever
// happens. A span left from an earlier write is replaced: the caller is
// the only reconcile of this pod (the queue never hands one key to two
// workers), and a later write's span covers what is left of the earlier.
func (o *ownWrites) begin(key types.NamespacedName, from string) bool {
	rv, ok := parseRV(from)
	if !ok {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.spans[key] = &span{from: rv}
	return true
}

// prove records that the status write of pod key returned got for what was
// asked, want: when they agree (but for the resource version and managed
// fields, which the server sets), every change up to got's resource
// version is the syncer's own.
func (o *ownWrites) prove(key types.NamespacedName, want, got *corev1.Pod) {
	to, ok := parseRV(got.ResourceVersion)
	if !ok || !sameStoredPod(want, got) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.spans[key]; s != nil && s.to == 0 && to > s.from {
		s.to, s.proven = to, true
	}
}

// end closes the span of pod key and reports whether the pod must be
// reconciled again: something was held back that the write does not
// account for.
func (o *ownWrites) end(key types.NamespacedName) (requeue bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.spans[key]
	switch {
	case s == nil:
		return false
	case !s.proven:
		delete(o.spans, key)
		return s.heldBack > 0
	case s.heldBack > s.to:
		delete(o.spans, key)
		return true
	case s.heldBack == s.to:
		// The last echo came already.
		delete(o.spans, key)
	}
	return false
}

// echo reports whether an update of a tenant pod from old to new is held
// back: the syncer's own write (dropped), or one made while a write is in
// flight (decided by end).
func (o *ownWrites) echo(old, new client.Object) bool {
	key := client.ObjectKeyFromObject(new)
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.spans[key]
	if s == nil {
		return false
	}
	oldRV, ok1 := parseRV(old.GetResourceVersion())
	newRV, ok2 := parseRV(new.GetResourceVersion())
	// A resync (the same version twice) is never an echo.
	if !ok1 || !ok2 || oldRV == newRV || oldRV < s.from || newRV <= s.from {
		return false
	}
	if s.to == 0 {
		s.heldBack = max(s.heldBack, newRV)
		return true
	}
	if newRV >= s.to {
		delete(o.spans, key)
	}
	return newRV <= s.to
}

// forget drops the span of a deleted pod.
func (o *ownWrites) forget(obj client.Object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.spans[client.ObjectKeyFromObject(obj)]; s != nil && s.to != 0 {
		delete(o.spans, client.ObjectKeyFromObject(obj))
	}
}

// sameStoredPod reports whether the server stored got for want: equal but
// for the resource version and managed fields.
func sameStoredPod(want, got *corev1.Pod) bool {
	wm, gm := want.ObjectMeta, got.ObjectMeta
	wm.ResourceVersion, gm.ResourceVersion = "", ""
	wm.ManagedFields, gm.ManagedFields = nil, nil
	return equality.Semantic.DeepEqual(wm, gm) &&
		equality.Semantic.DeepEqual(want.Spec, got.Spec) &&
		equality.Semantic.DeepEqual(want.Status, got.Status)
}
