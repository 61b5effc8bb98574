// Package podsync runs a tenant's pods on the host: the pod reconciler
// creates, updates and deletes each tenant pod's host pod (built and checked
// by resources/pods.Build), binds the tenant pod to the virtual Node of its
// host node, brings the host pod's status back, delivers the pod's
// service-account tokens, and finishes deletions the way a kubelet does.
package podsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/nodesync"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// Reasons the syncer gives a tenant pod it finishes itself.
const (
	// ReasonHostPodGone: the host removed the host pod of a running pod.
	ReasonHostPodGone = "HostPodGone"
	// ReasonDaemonSetRefused: DaemonSet pods are not run.
	ReasonDaemonSetRefused = "DaemonSetNotSupported"
	// ReasonFrozen: the tenant is frozen, the pod has no host pod.
	ReasonFrozen = "TenantFrozen"
	// ReasonSleeping: the tenant went to sleep, the pod has no host pod
	// until it wakes (knestd stops, and with it the pods' DNS server).
	ReasonSleeping = "TenantSleeping"
)

// ConditionFrozen is the condition of a tenant pod whose host pod a freeze
// removed (or never made): True while frozen. The pod keeps its phase (it
// is not Failed, so its controller does not replace it); Ready and
// ContainersReady are False with reason TenantFrozen.
const ConditionFrozen corev1.PodConditionType = "knest.dev/Frozen"

// Reconciler syncs tenant pods. Pods are not a plain Kind of the generic
// reconciler: the tenant pod's status comes back from the host, it is bound
// to a virtual Node, its tokens are issued by the tenant API server, and its
// deletion is finished the way a kubelet would finish it.
type Reconciler struct {
	w      *writer.Writer
	nodes  *nodesync.Manager
	tokens *tokenIssuer
	policy *policy.Policy
	dns    pods.DNS
	// audience is the host token audience of new pods ("": every token
	// through the token Secret).
	audience string
	frozen   bool
	// sleeping freezes the pods as frozen does, with ReasonSleeping: set
	// by Sleep and never unset (knestd exits after it). A pointer: tests
	// copy Reconcilers.
	sleeping *atomic.Bool
	// own tells the echoes of the status path's own tenant writes, which
	// queue no reconcile (see ownWrites).
	own *ownWrites
}

// Config configures a Reconciler.
type Config struct {
	// Writer reads and writes both clusters.
	Writer *writer.Writer
	// Nodes maintains the virtual Nodes pods are bound to.
	Nodes *nodesync.Manager
	// Policy is the tenant's isolation policy.
	Policy *policy.Policy
	// DNS is the tenant's DNS server as host pods reach it.
	DNS pods.DNS
	// TenantCA is the tenant cluster's CA bundle, for token volumes.
	TenantCA []byte
	// TokenAudience, if set, is the tenant's host token audience: a new
	// host pod's tokens without an audience of their own are minted by the
	// host kubelet for it (pkg/hosttoken authenticates them), which costs
	// no token Secret. Unset, every token goes through the Secret.
	TokenAudience string
	// Frozen freezes the tenant's pods: every host pod is deleted and none
	// made; tenant pods that were not finished stay as they are, with the
	// ConditionFrozen condition. Without it, a tenant pod with that
	// condition gets its host pod again: the one exception to "a pod whose
	// host pod is gone is never recreated".
	Frozen bool
}

// New returns a pod reconciler.
func New(c Config) *Reconciler {
	return &Reconciler{
		w: c.Writer, nodes: c.Nodes, policy: c.Policy, dns: c.DNS, audience: c.TokenAudience, frozen: c.Frozen,
		tokens: &tokenIssuer{w: c.Writer, caData: c.TenantCA}, sleeping: &atomic.Bool{}, own: newOwnWrites(),
	}
}

func (r *Reconciler) hostKey(req types.NamespacedName) types.NamespacedName {
	return r.w.HostKey(req.Namespace, req.Name, translate.MaxSubdomainLength)
}

// Reconcile brings a tenant pod and its host pod in line.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	start := time.Now()
	defer func() { r.w.Metrics.Observe("Pod", time.Since(start), err) }()
	logger := klog.FromContext(ctx).WithValues("kind", "Pod", "virtual", req.NamespacedName)
	ctx = klog.NewContext(ctx, logger)

	t, h := &corev1.Pod{}, &corev1.Pod{}
	if found, err := r.w.GetTenant(ctx, "Pod", req.NamespacedName, t); err != nil {
		return reconcile.Result{}, err
	} else if !found {
		t = nil
	}
	hostKey := r.hostKey(req.NamespacedName)
	if found, err := r.w.GetHost(ctx, "Pod", hostKey, h); err != nil {
		return reconcile.Result{}, err
	} else if !found {
		h = nil
	}
	id := translate.Object{Kind: "Pod", Namespace: req.Namespace, Name: req.Name}
	if t != nil {
		id.UID = t.UID
	}
	if h != nil {
		switch translate.Owns(r.w.Tenant, id, h) {
		case translate.NotOurs:
			if t != nil {
				r.w.NotOurs(t, hostKey)
			}
			return reconcile.Result{}, nil
		case translate.Stale:
			logger.Info("Deleting stale host pod", "host", hostKey, "hostUID", h.UID)
			if err := r.deleteHost(ctx, h, ptr.To[int64](0)); err != nil {
				return reconcile.Result{}, err
			}
			h = nil
		}
	}

	switch {
	case t == nil:
		// Gone from the tenant (force-deleted): the host pod goes too.
		if h != nil && h.DeletionTimestamp == nil {
			logger.Info("Deleting host pod of a deleted tenant pod", "host", hostKey)
			return reconcile.Result{}, r.deleteHost(ctx, h, nil)
		}
		return reconcile.Result{}, nil

	case t.DeletionTimestamp != nil:
		return r.finishDeletion(ctx, t, h)

	case r.frozen || r.sleeping.Load():
		return reconcile.Result{}, r.freeze(ctx, t, h)

	case h == nil:
		if pods.Terminal(t) {
			return reconcile.Result{}, nil
		}
		// The Frozen condition is in the tenant pod's status, which the
		// tenant can write: it decides only whether a pod that was on the
		// host is made again (the freeze's exception to "never
		// recreated"), never past the refusals and gates below.
		unfrozen := frozen(t)
		if wasOnHost(t) && !unfrozen {
			// Scheduled on the host once and now gone: evicted, preempted
			// or lost with its node. Never silently recreated.
			return reconcile.Result{}, r.fail(ctx, t, ReasonHostPodGone,
				"the host pod is gone (evicted, preempted or its node was lost); knest does not recreate pods, the pod's controller replaces it")
		}
		if reason := refusePod(t, r.nodes.Pool()); reason != "" {
			r.w.Warn(t, "SyncRefused", "%s", reason)
			return reconcile.Result{}, r.thaw(ctx, t)
		}
		if len(t.Spec.SchedulingGates) > 0 {
			// Held by the tenant: the host pod is made once the gates
			// are gone (their removal is an update, which brings us back).
			return reconcile.Result{}, r.thaw(ctx, t)
		}
		if unfrozen {
			logger.Info("Making the host pod of an unfrozen pod again", "host", hostKey)
		}
		return r.create(ctx, t, hostKey)
	}

	// Both exist.
	if frozen(t) && h.DeletionTimestamp != nil {
		// Unfrozen before the freeze's deletion finished: the pod is made
		// again once it is gone (its deletion brings us back).
		return reconcile.Result{}, nil
	}
	if pods.Terminal(t) && !pods.Terminal(h) {
		if h.DeletionTimestamp != nil {
			return reconcile.Result{}, nil
		}
		// The tenant pod was marked finished (by a tenant status write):
		// its containers stop, as a kubelet would stop them.
		logger.Info("Deleting host pod of a finished tenant pod", "host", hostKey, "phase", t.Status.Phase)
		return reconcile.Result{}, r.deleteHost(ctx, h, nil)
	}
	var requeue time.Duration
	if d, err := r.tokens.ensure(ctx, t, h); err != nil {
		return reconcile.Result{}, r.w.Failed(t, err)
	} else if d > 0 {
		requeue = d
	}
	if done, err := r.update(ctx, t, h, hostKey); err != nil || done {
		return reconcile.Result{Requeue: done, RequeueAfter: requeue}, err
	}
	if pods.Terminal(t) {
		return reconcile.Result{RequeueAfter: requeue}, nil
	}
	// The binding and the status write below are the syncer's own tenant
	// writes: their echoes queue no reconcile when the stored pod proves
	// them ours (ownWrites).
	began := false
	defer func() {
		if began && r.own.end(req.NamespacedName) && err == nil {
			// What was held back is looked at at once, as its events
			// would have had it: a plain add, not the rate-limited
			// requeue of a failure (the next reconcile sets the token
			// renewal again).
			result.Requeue, result.RequeueAfter = false, heldBackRetry
		}
	}()
	if h.Spec.NodeName != "" && t.Spec.NodeName == "" {
		began = r.own.begin(req.NamespacedName, t.ResourceVersion)
		alias, err := r.bind(ctx, t, h.Spec.NodeName)
		if err != nil {
			return reconcile.Result{}, err
		}
		// The status write below is a merge patch without a
		// resourceVersion (the binding's is not known), so it applies on
		// top of the binding without waiting for its watch event. The
		// binding set PodScheduled true, as the host's does: a host pod
		// that is scheduled and no further needs no status write after
		// the binding (pods.Backward keeps the tenant's condition).
		bound := t.DeepCopy()
		bound.Spec.NodeName = alias
		bound.ResourceVersion = ""
		setScheduled(bound)
		t = bound
		// The host pod may have moved on while the binding was in flight
		// (a simulated node starts it tens of milliseconds after it is
		// scheduled; a busy tenant API server takes as long to bind): the
		// status write carries what the host cache holds now, so a pod
		// that started meanwhile is Running in the tenant after two
		// serial writes (bind, status), not three (bind, the scheduled
		// status, then the running one from the next reconcile).
		if latest := (&corev1.Pod{}); r.refreshAfterBind(ctx, hostKey, h.UID, latest) {
			h = latest
		}
	}
	if err := r.copyStatus(ctx, t, h, &statusWrite{
		before: func() {
			if !began {
				began = r.own.begin(req.NamespacedName, t.ResourceVersion)
			}
		},
		after: func(want, got *corev1.Pod) {
			if began {
				r.own.prove(req.NamespacedName, want, got)
			}
		},
	}); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// update brings a running host pod in line with its tenant pod: metadata,
// images and activeDeadlineSeconds, then ephemeral containers and in-place
// resizes through their subresources, all built and checked by pods.Build.
// One write a call: each changes the pod the next one starts from. done
// reports a write (or a conflict), so the caller requeues.
func (r *Reconciler) update(ctx context.Context, t, h *corev1.Pod, hostKey types.NamespacedName) (done bool, err error) {
	if h.DeletionTimestamp != nil {
		return false, nil
	}
	env, err := r.env(ctx, t, hostKey, nil)
	if err != nil {
		return false, err
	}
	desired, err := pods.Build(t, h, r.meta(t, hostKey), env, r.policy)
	if err != nil {
		// Nothing is written; the tenant is told why (the pod keeps
		// running as it was).
		r.w.Warn(t, "SyncRefused", "%s", err.Error())
		return false, nil
	}
	writes := pods.Writes(h, desired)
	if len(writes) == 0 {
		return false, nil
	}
	w := writes[0]
	logger := klog.FromContext(ctx)
	if w.Subresource == "" {
		logger.Info("Updating host pod", "host", hostKey)
		if _, err := r.w.PatchHost(ctx, "Pod", t, w.Pod, h); err != nil {
			return false, err
		}
		return true, nil
	}
	if pods.Terminal(t) {
		return false, nil
	}
	logger.Info("Updating host pod", "host", hostKey, "subresource", w.Subresource)
	err = r.w.HostClient.SubResource(w.Subresource).Update(ctx, w.Pod)
	if kerrors.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, r.w.Failed(t, fmt.Errorf("failed to update %s of Pod %s in host cluster: %w", w.Subresource, hostKey, err))
	}
	r.w.Metrics.HostWrite("Pod", w.Subresource)
	return true, nil
}

// env is what a host pod gets from outside its tenant pod; serviceEnv only
// matters to a new one (a running pod's environment cannot change).
func (r *Reconciler) env(ctx context.Context, t *corev1.Pod, hostKey types.NamespacedName, serviceEnv []corev1.EnvVar) (pods.Env, error) {
	var ns corev1.Namespace
	if err := r.w.TenantClient.Get(ctx, types.NamespacedName{Name: t.Namespace}, &ns); err != nil && !kerrors.IsNotFound(err) {
		return pods.Env{}, fmt.Errorf("failed to get Namespace %s in tenant cluster: %w", t.Namespace, err)
	}
	return pods.Env{
		ServiceEnv: serviceEnv, TokenSecret: pods.TokenSecretName(hostKey.Name), TokenAudience: r.audience, DNS: r.dns, NodeAddress: r.nodes.Address(),
		NamespaceLabels: ns.Labels,
		HostNodes:       func(alias string) (string, bool) { return r.nodes.HostNode(ctx, alias) },
		VirtualNodes:    func() []policy.VirtualNode { return r.nodes.VirtualNodes(ctx) },
	}, nil
}

// wasOnHost reports whether a tenant pod has had a host pod that was
// scheduled: the host's PodScheduled condition, copied onto it, is true.
// A pod that only waited may be made again: unschedulable on the host or
// on the tenant's nodes, or held by scheduling gates (the tenant API server
// gives such a pod a PodScheduled condition of its own, reason
// SchedulingGated, which stays after the gates are removed).
func wasOnHost(t *corev1.Pod) bool {
	for _, c := range t.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// refusePod says why a tenant pod must not reach the host, or "". Without
// pool nodes, DaemonSet pods are not run: the tenant's nodes stand only for
// the host nodes its pods run on.
func refusePod(t *corev1.Pod, poolNodes bool) string {
	if ref := metav1.GetControllerOf(t); ref != nil && ref.Kind == "DaemonSet" && !poolNodes {
		return "DaemonSet pods are not run: this tenant's nodes stand only for the host nodes its pods run on (the operator did not turn on pool nodes); use a Deployment"
	}
	return ""
}

// meta says which host pod a tenant pod has and whose it is; pods.Build
// computes the rest of its metadata.
func (r *Reconciler) meta(t *corev1.Pod, hostKey types.NamespacedName) translate.Meta {
	return translate.Meta{Name: hostKey.Name, Namespace: hostKey.Namespace, Tenant: r.w.Tenant, TenantNamespace: t.Namespace}
}

// heldBackRetry is how soon a pod is reconciled again when updates held
// back during its write were not the write's own (see ownWrites).
const heldBackRetry = time.Millisecond

// unschedulableRetry is how soon a pod no node matched is looked at again:
// the tenant's nodes may change without an event on the pod.
const unschedulableRetry = 30 * time.Second

// unschedulable tells the tenant that no node matches its pod, as a
// scheduler would: PodScheduled false with reason Unschedulable, and a
// FailedScheduling Event when that is news.
func (r *Reconciler) unschedulable(ctx context.Context, t *corev1.Pod, reason string) error {
	for _, c := range t.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == reason {
			return nil
		}
	}
	desired := t.DeepCopy()
	cond := corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: reason, LastTransitionTime: metav1.Now(),
	}
	replaced := false
	for i, c := range desired.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			desired.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		desired.Status.Conditions = append(desired.Status.Conditions, cond)
	}
	desired.Status.Phase = corev1.PodPending
	klog.FromContext(ctx).V(1).Info("Tenant pod is unschedulable", "reason", reason)
	if patched, err := r.writeStatus(ctx, t, desired); !patched {
		return err
	}
	r.w.Warn(t, "FailedScheduling", "%s", reason)
	return nil
}

// create makes the host pod of a tenant pod, then its token Secret if it
// needs one (the host pod owns it, so it needs the pod's UID): only for
// tokens with audiences of the tenant's choosing, when host-minted tokens
// are on.
func (r *Reconciler) create(ctx context.Context, t *corev1.Pod, hostKey types.NamespacedName) (reconcile.Result, error) {
	env, err := r.serviceEnv(ctx, t)
	if err != nil {
		return reconcile.Result{}, err
	}
	podEnv, err := r.env(ctx, t, hostKey, env)
	if err != nil {
		return reconcile.Result{}, err
	}
	desired, err := pods.Build(t, nil, r.meta(t, hostKey), podEnv, r.policy)
	var unschedulable *pods.UnschedulableError
	if errors.As(err, &unschedulable) {
		return reconcile.Result{RequeueAfter: unschedulableRetry}, r.unschedulable(ctx, t, unschedulable.Reason)
	}
	if err != nil {
		// Never created: the tenant is told why.
		r.w.Warn(t, "SyncRefused", "%s", err.Error())
		return reconcile.Result{}, nil
	}
	klog.FromContext(ctx).Info("Creating host pod", "host", hostKey)
	id := translate.Object{Kind: "Pod", Namespace: t.Namespace, Name: t.Name, UID: t.UID}
	if created, result, err := r.w.CreateHost(ctx, t, id, desired); !created {
		return result, err
	}
	d, err := r.tokens.issue(ctx, t, desired, true)
	if err != nil {
		return reconcile.Result{}, r.w.Failed(t, err)
	}
	return reconcile.Result{RequeueAfter: d}, nil
}

// serviceEnv lists the Services whose variables the pod gets, as a kubelet
// would: the API server's always, the namespace's unless service links are
// off.
func (r *Reconciler) serviceEnv(ctx context.Context, t *corev1.Pod) ([]corev1.EnvVar, error) {
	var services []corev1.Service
	if t.Spec.EnableServiceLinks == nil || *t.Spec.EnableServiceLinks {
		var list corev1.ServiceList
		if err := r.w.TenantClient.List(ctx, &list, client.InNamespace(t.Namespace)); err != nil {
			return nil, fmt.Errorf("failed to list Services in tenant cluster: %w", err)
		}
		services = list.Items
	}
	if t.Namespace != metav1.NamespaceDefault || len(services) == 0 {
		var api corev1.Service
		if err := r.w.TenantClient.Get(ctx, types.NamespacedName{Namespace: metav1.NamespaceDefault, Name: "kubernetes"}, &api); err != nil {
			return nil, fmt.Errorf("failed to get Service default/kubernetes in tenant cluster: %w", err)
		}
		services = append(services, api)
	}
	return pods.ServiceEnv(services), nil
}

// bind binds the tenant pod to the virtual Node of its host pod's node and
// returns the Node's name.
func (r *Reconciler) bind(ctx context.Context, t *corev1.Pod, hostNode string) (string, error) {
	alias, err := r.nodes.Ensure(ctx, hostNode)
	if err != nil {
		return "", err
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace, UID: t.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: alias},
	}
	if err := r.w.TenantClient.SubResource("binding").Create(ctx, t, binding); err != nil {
		if kerrors.IsConflict(err) || kerrors.IsNotFound(err) {
			// Bound meanwhile, or gone: the next event tells.
			return alias, nil
		}
		return "", fmt.Errorf("failed to bind Pod %s/%s to %s in tenant cluster: %w", t.Namespace, t.Name, alias, err)
	}
	klog.FromContext(ctx).V(1).Info("Bound tenant pod", "node", alias)
	r.w.Metrics.TenantWrite("Pod", "bind")
	return alias, nil
}

// setScheduled marks p scheduled as a binding does (the tenant API server
// sets PodScheduled true, with the time of the binding).
func setScheduled(p *corev1.Pod) {
	// To the second, as the API stores it: the status write that follows
	// the binding is then stored as asked (ownWrites compares the two).
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now().Rfc3339Copy()}
	for i, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			if c.Status != corev1.ConditionTrue {
				p.Status.Conditions[i] = cond
			}
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, cond)
}

// refreshAfterBind reads the host pod again from the host cache into
// latest and reports whether it is still the one the reconcile started
// with (same UID, not being deleted); anything else is left to the next
// reconcile, which its event brings.
func (r *Reconciler) refreshAfterBind(ctx context.Context, hostKey types.NamespacedName, uid types.UID, latest *corev1.Pod) bool {
	found, err := r.w.GetHost(ctx, "Pod", hostKey, latest)
	return err == nil && found && latest.UID == uid && latest.DeletionTimestamp == nil
}

// statusWrite is told about copyStatus's write: before it is sent, and
// after it is stored, with what was asked (want) and what the server
// stored (got).
type statusWrite struct {
	before func()
	after  func(want, got *corev1.Pod)
}

// copyStatus brings the host pod's status to the tenant pod, telling w (if
// not nil) about the write when there is one.
func (r *Reconciler) copyStatus(ctx context.Context, t, h *corev1.Pod, w *statusWrite) error {
	desired := pods.Backward(h, t, r.nodes.Address())
	if equality.Semantic.DeepEqual(desired.Status, t.Status) {
		return nil
	}
	var want *corev1.Pod
	if w != nil {
		w.before()
		want = desired.DeepCopy()
	}
	// The write decodes the stored pod into desired.
	if patched, err := r.writeStatus(ctx, t, desired); !patched {
		return err
	}
	if w != nil {
		w.after(want, desired)
	}
	return nil
}

// finishDeletion deletes the host pod of a deleted tenant pod with the same
// grace period, and once it is gone finishes the tenant pod as a kubelet
// does: a terminal phase first, then deletion with grace period 0. Job
// failure and replacement policies depend on that order.
func (r *Reconciler) finishDeletion(ctx context.Context, t, h *corev1.Pod) (reconcile.Result, error) {
	if h != nil {
		if h.DeletionTimestamp == nil {
			klog.FromContext(ctx).Info("Deleting host pod", "host", client.ObjectKeyFromObject(h), "gracePeriod", ptr.Deref(t.DeletionGracePeriodSeconds, -1))
			if err := r.deleteHost(ctx, h, t.DeletionGracePeriodSeconds); err != nil {
				return reconcile.Result{}, r.w.Failed(t, err)
			}
			return reconcile.Result{}, nil
		}
		if !pods.Terminal(t) {
			return reconcile.Result{}, r.copyStatus(ctx, t, h, nil)
		}
		return reconcile.Result{}, nil
	}
	if !pods.Terminal(t) {
		desired := t.DeepCopy()
		desired.Status.Phase = corev1.PodFailed
		if allSucceeded(t) {
			desired.Status.Phase = corev1.PodSucceeded
		}
		for i := range desired.Status.ContainerStatuses {
			terminate(&desired.Status.ContainerStatuses[i])
		}
		if patched, err := r.writeStatus(ctx, t, desired); !patched {
			return reconcile.Result{}, err
		}
	}
	uid := t.UID
	if err := r.w.TenantClient.Delete(ctx, t, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid}); err != nil && !kerrors.IsNotFound(err) && !kerrors.IsConflict(err) {
		return reconcile.Result{}, fmt.Errorf("failed to delete Pod %s/%s in tenant cluster: %w", t.Namespace, t.Name, err)
	}
	r.w.Metrics.TenantWrite("Pod", "delete")
	return reconcile.Result{}, nil
}

// allSucceeded reports whether every container of the pod exited 0.
func allSucceeded(t *corev1.Pod) bool {
	if len(t.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, s := range t.Status.ContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return true
}

// terminate marks a container that was still running as killed.
func terminate(s *corev1.ContainerStatus) {
	if s.State.Terminated != nil {
		return
	}
	started := metav1.Time{}
	if s.State.Running != nil {
		started = s.State.Running.StartedAt
	}
	s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "Error", StartedAt: started, FinishedAt: metav1.Now(),
	}}
	s.Ready = false
	s.Started = ptr.To(false)
}

// fail turns a tenant pod whose host pod is gone Failed, with the reason,
// so its controller replaces it.
func (r *Reconciler) fail(ctx context.Context, t *corev1.Pod, reason, message string) error {
	desired := t.DeepCopy()
	desired.Status.Phase = corev1.PodFailed
	desired.Status.Reason = reason
	desired.Status.Message = message
	for i := range desired.Status.ContainerStatuses {
		terminate(&desired.Status.ContainerStatuses[i])
	}
	now := metav1.Now()
	desired.Status.Conditions = append(desired.Status.Conditions, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now,
	})
	for i, c := range desired.Status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			desired.Status.Conditions[i].Status = corev1.ConditionFalse
			desired.Status.Conditions[i].LastTransitionTime = now
		}
	}
	klog.FromContext(ctx).Info("Tenant pod failed: its host pod is gone", "reason", reason)
	if patched, err := r.writeStatus(ctx, t, desired); !patched {
		return err
	}
	r.w.Warn(t, reason, "%s", message)
	return nil
}

// deleteHost deletes host pod h with grace period grace (nil: the pod's).
func (r *Reconciler) deleteHost(ctx context.Context, h *corev1.Pod, grace *int64) error {
	if grace != nil {
		return r.w.DeleteHost(ctx, "Pod", h, client.GracePeriodSeconds(*grace))
	}
	return r.w.DeleteHost(ctx, "Pod", h)
}

// freeze marks a tenant pod frozen (unless it is finished) and deletes its
// host pod: the tenant pod stays, in its phase, so its controller does not
// replace it.
func (r *Reconciler) freeze(ctx context.Context, t, h *corev1.Pod) error {
	if !pods.Terminal(t) && !frozen(t) {
		desired := t.DeepCopy()
		now := metav1.Now()
		reason, message := ReasonFrozen, "the tenant is frozen by its operator: the pod has no host pod until the tenant is unfrozen"
		if !r.frozen {
			reason, message = ReasonSleeping, "the tenant is asleep: the pod has no host pod until the tenant wakes (its next API request wakes it)"
		}
		desired.Status.Conditions = append(desired.Status.Conditions, corev1.PodCondition{
			Type: ConditionFrozen, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now,
		})
		for i, c := range desired.Status.Conditions {
			if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				desired.Status.Conditions[i] = corev1.PodCondition{Type: c.Type, Status: corev1.ConditionFalse, Reason: reason, Message: message, LastTransitionTime: now}
			}
		}
		for i := range desired.Status.ContainerStatuses {
			desired.Status.ContainerStatuses[i].Ready = false
		}
		klog.FromContext(ctx).Info("Tenant pod frozen")
		if patched, err := r.writeStatus(ctx, t, desired); !patched {
			return err
		}
	}
	if h != nil && h.DeletionTimestamp == nil {
		klog.FromContext(ctx).Info("Deleting host pod of a frozen tenant", "host", client.ObjectKeyFromObject(h))
		return r.deleteHost(ctx, h, nil)
	}
	return nil
}

// writeStatus writes desired's status over tenant pod t's and counts the
// write; it reports false, with no error, if the pod is gone.
//
// When desired carries t's resourceVersion (t is the stored pod, from the
// syncer's cache), the write is an update (PUT) of the status with that
// resourceVersion, which the API server decodes from protobuf. A merge
// patch costs the server more: it encodes the stored pod as JSON, merges
// the patch into it and decodes the result (runtime traces of paced status
// writes: ~1.7 ms of server CPU before its etcd call as a patch, ~1.3 ms
// as an update). If the update conflicts (someone else wrote the pod
// since t), a strategic merge patch of what the syncer changed (t to
// desired) follows (counted as op "status-conflict" of
// knest_syncer_writes_total). Right after a binding, whose resourceVersion the
// syncer does not learn, the write is a merge patch of that change.
func (r *Reconciler) writeStatus(ctx context.Context, t, desired *corev1.Pod) (bool, error) {
	var err error
	if desired.ResourceVersion == "" {
		err = r.w.TenantClient.Status().Patch(ctx, desired, client.MergeFrom(t))
	} else if err = r.w.TenantClient.Status().Update(ctx, desired); kerrors.IsConflict(err) {
		r.w.Metrics.TenantWrite("Pod", "status-conflict")
		// A failed update leaves desired as it was. Someone else wrote
		// the pod since t: a strategic merge patch keeps the conditions
		// it added (merged by type, as the kubelet's status patches are).
		err = r.w.TenantClient.Status().Patch(ctx, desired, client.StrategicMergeFrom(t))
	}
	if err != nil {
		if kerrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to update status of Pod %s/%s in tenant cluster: %w", t.Namespace, t.Name, err)
	}
	r.w.Metrics.TenantWrite("Pod", "status")
	return true, nil
}

// thaw removes the Frozen condition of a pod that stays without a host pod
// after the freeze (refused, or held by its gates): it is no longer the
// freeze that holds it. A pod that gets a host pod loses the condition when
// the host's status is copied.
func (r *Reconciler) thaw(ctx context.Context, t *corev1.Pod) error {
	if !frozen(t) {
		return nil
	}
	desired := t.DeepCopy()
	desired.Status.Conditions = slices.DeleteFunc(desired.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == ConditionFrozen })
	_, err := r.writeStatus(ctx, t, desired)
	return err
}

// Sleep puts the tenant's pods to sleep before knestd stops: from now on
// every pod is handled as a frozen tenant's (its host pod deleted, the
// tenant pod kept with ConditionFrozen, reason ReasonSleeping), and Sleep
// does that to every tenant pod now, returning once each was done (the
// host deletions are issued, not waited for). The next knestd, not
// sleeping, makes their host pods again, as an unfreeze does.
func (r *Reconciler) Sleep(ctx context.Context) error {
	r.sleeping.Store(true)
	var list corev1.PodList
	if err := r.w.TenantClient.List(ctx, &list); err != nil {
		return fmt.Errorf("failed to list Pods in tenant cluster: %w", err)
	}
	var errs []error
	for i := range list.Items {
		p := &list.Items[i]
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// frozen reports whether a freeze removed (or held back) the pod's host pod.
func frozen(t *corev1.Pod) bool {
	for _, c := range t.Status.Conditions {
		if c.Type == ConditionFrozen {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
