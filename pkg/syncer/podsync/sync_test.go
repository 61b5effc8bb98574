package podsync

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/syncer/nodesync"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/translate"
)

const (
	// nodeAddress is what the virtual Nodes advertise.
	nodeAddress = "10.0.0.9"
	// hostNode is the host node the test's "scheduler" binds host pods to.
	hostNode = "host-node-1"
)

// fixture is one tenant with a pod reconciler and a tenant pod "app".
type fixture struct {
	e       *synctest.Env
	r       *Reconciler
	nodes   *nodesync.Manager
	key     types.NamespacedName
	hostKey types.NamespacedName
}

// plainPod is a tenant pod as kubectl run makes it; the tenant API server
// adds the service-account token volume.
func plainPod(namespace string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "app", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1"}},
			// Deleted at once when the host says so.
			TerminationGracePeriodSeconds: ptr.To[int64](30)},
	}
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

// newFixture makes a tenant and its pod reconciler; with tweaks (possibly
// none) it creates the tenant pod too.
func newFixture(t *testing.T, pol *policy.Policy, pod ...func(*corev1.Pod)) *fixture {
	t.Helper()
	return newFixtureWithAudience(t, pol, "", pod...)
}

// newFixtureWithAudience is newFixture with host-minted tokens for audience
// ("": off).
func newFixtureWithAudience(t *testing.T, pol *policy.Policy, audience string, pod ...func(*corev1.Pod)) *fixture {
	t.Helper()
	e := synctest.New(t, &clusters, synctest.Options{})
	nodes := nodesync.New(nodesync.Config{
		TenantClient: e.Writer.TenantClient, AliasKey: []byte("alias key of " + e.Tenant), Address: nodeAddress, KubeletPort: 10250,
		Version: "v1.37.2", Metrics: e.Writer.Metrics, HostPods: e.Writer.HostClient, Tenant: e.Tenant, HostNamespace: e.HostNamespace,
	})
	f := &fixture{
		e: e, nodes: nodes,
		r:   New(Config{Writer: e.Writer, Nodes: nodes, Policy: pol, TenantCA: e.TenantConfig.CAData, TokenAudience: audience, DNS: pods.DNS{Nameserver: "10.96.0.10", ClusterDomain: "cluster.local"}}),
		key: types.NamespacedName{Namespace: e.Namespace, Name: "app"},
	}
	f.hostKey = e.Writer.HostKey(f.key.Namespace, f.key.Name, translate.MaxSubdomainLength)
	if pod != nil {
		f.create(t, plainPod(e.Namespace, pod...))
	}
	return f
}

func soft() *policy.Policy { return policy.Default(policy.ProfileSoft) }

func (f *fixture) create(t *testing.T, obj client.Object) {
	t.Helper()
	c := f.e.TenantAdmin
	if obj.GetNamespace() == f.e.HostNamespace {
		c = f.e.HostAdmin
	}
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("failed to create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

func (f *fixture) reconcile(t *testing.T) (reconcile.Result, []string, error) {
	t.Helper()
	result, writes, err := f.e.Reconcile(t, f.r, f.key)
	return result, synctest.Ops(writes), err
}

// settle reconciles until nothing is written, then checks that one more
// reconcile writes nothing either.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	f.e.Settle(t, f.r, f.key)
	if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 {
		t.Errorf("a settled pod was reconciled with writes %v and error %v", writes, err)
	}
}

func (f *fixture) tenantPod(t *testing.T) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	if err := f.e.TenantAdmin.Get(t.Context(), f.key, p); kerrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) hostPod(t *testing.T) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	if err := f.e.HostAdmin.Get(t.Context(), f.hostKey, p); kerrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) tokenSecret(t *testing.T) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: f.hostKey.Namespace, Name: pods.TokenSecretName(f.hostKey.Name)}
	if err := f.e.HostAdmin.Get(t.Context(), key, s); kerrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return s
}

// runOnHost plays the host's scheduler and kubelet: the host pod is bound
// to hostNode and running.
func (f *fixture) runOnHost(t *testing.T) {
	t.Helper()
	f.scheduleOnHost(t)
	f.startOnHost(t)
}

// scheduleOnHost plays the host's scheduler: the host pod is bound to
// hostNode, not started.
func (f *fixture) scheduleOnHost(t *testing.T) {
	t.Helper()
	h := f.hostPod(t)
	if h == nil {
		t.Fatal("no host pod to schedule")
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: h.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: hostNode}}
	if err := f.e.HostAdmin.SubResource("binding").Create(t.Context(), h, binding); err != nil {
		t.Fatal(err)
	}
}

// startOnHost plays the host's kubelet: the scheduled host pod runs.
func (f *fixture) startOnHost(t *testing.T) {
	t.Helper()
	h := f.hostPod(t)
	now := metav1.Now()
	h.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "192.168.0.5", HostIPs: []corev1.HostIP{{IP: "192.168.0.5"}},
		PodIP: "10.244.0.7", PodIPs: []corev1.PodIP{{IP: "10.244.0.7"}}, StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Image: "nginx:1", ImageID: "sha256:1", Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
	}
	if err := f.e.HostAdmin.Status().Update(t.Context(), h); err != nil {
		t.Fatal(err)
	}
}

// running is a fixture whose pod runs on the host, bound and settled.
func running(t *testing.T, pod ...func(*corev1.Pod)) *fixture {
	t.Helper()
	f := newFixture(t, soft(), append([]func(*corev1.Pod){func(*corev1.Pod) {}}, pod...)...)
	f.settle(t)
	f.runOnHost(t)
	f.settle(t)
	return f
}

var errInjected = kerrors.NewInternalError(errors.New("injected failure"))

func TestCreate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	result, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host create Pod", "tenant create ServiceAccount/token", "host create Secret"}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	// The API server's token volume asks for 3607 s; renewal is due at 80%.
	if result.RequeueAfter < 45*time.Minute || result.RequeueAfter > 49*time.Minute {
		t.Errorf("Reconcile asks to look again in %s, want at 80%% of the token's hour", result.RequeueAfter)
	}
	h := f.hostPod(t)
	if h == nil {
		t.Fatal("no host pod")
	}
	tp := f.tenantPod(t)
	id := translate.Object{Kind: "Pod", Namespace: tp.Namespace, Name: tp.Name, UID: tp.UID}
	if translate.Owns(f.e.Tenant, id, h) != translate.Ours {
		t.Errorf("the host pod is not the tenant pod's: %v %v", h.Labels, h.Annotations)
	}
	if h.Spec.ServiceAccountName != pods.HostServiceAccount {
		t.Errorf("host pod runs as %q, want %q", h.Spec.ServiceAccountName, pods.HostServiceAccount)
	}
	s := f.tokenSecret(t)
	if s == nil {
		t.Fatal("no token Secret")
	}
	if len(s.Data[pods.TokenKey(0)]) == 0 || string(s.Data[pods.CAKey]) != string(f.e.TenantConfig.CAData) {
		t.Errorf("token Secret holds %d token bytes and CA %q, want a token and the tenant CA", len(s.Data[pods.TokenKey(0)]), s.Data[pods.CAKey])
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != h.UID {
		t.Errorf("token Secret is owned by %v, want the host pod %s", s.OwnerReferences, h.UID)
	}
	f.settle(t)
}

func TestCreateWithHostMintedToken(t *testing.T) {
	t.Parallel()
	const audience = "knest:0123abcd"
	t.Run("the default token costs no host write but the pod", func(t *testing.T) {
		t.Parallel()
		f := newFixtureWithAudience(t, soft(), audience, func(p *corev1.Pod) {})
		_, writes, err := f.reconcile(t)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"host create Pod"}, writes); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		h := f.hostPod(t)
		if h == nil {
			t.Fatal("no host pod")
		}
		if got := pods.HostTokenAudience(h); got != audience {
			t.Errorf("host pod projects a host token for %q, want %q", got, audience)
		}
		if f.tokenSecret(t) != nil {
			t.Error("a token Secret was made for the default token")
		}
		f.settle(t)
	})
	t.Run("a token with the tenant's own audience still goes through the Secret", func(t *testing.T) {
		t.Parallel()
		f := newFixtureWithAudience(t, soft(), audience, func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t", Audience: "vault", ExpirationSeconds: ptr.To[int64](600)}}},
			}}})
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "vault", MountPath: "/vault"})
		})
		_, writes, err := f.reconcile(t)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"host create Pod", "tenant create ServiceAccount/token", "host create Secret"}, writes); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		s := f.tokenSecret(t)
		if s == nil || len(s.Data[pods.TokenKey(0)]) == 0 || len(s.Data) != 2 {
			t.Fatalf("token Secret %v, want one token (the vault one) and the CA", s)
		}
		f.settle(t)
	})
}

func TestRefusedPods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  func(*corev1.Pod)
		want string
	}{
		{name: "a DaemonSet's pod", want: "DaemonSet", pod: func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds-uid", Controller: ptr.To(true)}}
		}},
		{name: "a pod on the host network", want: "hostNetwork", pod: func(p *corev1.Pod) { p.Spec.HostNetwork = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused with an event and never reaches the host", func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, soft(), tt.pod)
			result, writes, err := f.reconcile(t)
			if err != nil || len(writes) > 0 || result != (reconcile.Result{}) {
				t.Errorf("Reconcile = %+v, %v with writes %v; want nothing", result, err, writes)
			}
			events := f.e.Events()
			if len(events) != 1 || events[0].Reason != "SyncRefused" || !strings.Contains(events[0].Message, tt.want) {
				t.Errorf("events %+v, want one SyncRefused mentioning %q", events, tt.want)
			}
			if f.hostPod(t) != nil {
				t.Error("the refused pod has a host pod")
			}
		})
	}
}

func TestPodsNoTenantNodeMatchesStayPending(t *testing.T) {
	t.Parallel()
	for name, tweak := range map[string]func(*corev1.Pod){
		"a node name of no virtual node": func(p *corev1.Pod) { p.Spec.NodeName = "my-node" },
		"a node label no virtual node carries": func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"x-test.k8s.io/unsatisfiable": "not-schedulable"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, soft(), tweak)
			result, writes, err := f.reconcile(t)
			if err != nil || result.RequeueAfter == 0 || !cmp.Equal(writes, []string{"tenant update Pod/status"}) {
				t.Errorf("Reconcile = %+v, %v with writes %v; want the tenant pod's status only, and a look later", result, err, writes)
			}
			if events := f.e.Events(); len(events) != 1 || events[0].Reason != "FailedScheduling" {
				t.Errorf("events %+v, want one FailedScheduling", events)
			}
			p := f.tenantPod(t)
			var scheduled *corev1.PodCondition
			for i := range p.Status.Conditions {
				if p.Status.Conditions[i].Type == corev1.PodScheduled {
					scheduled = &p.Status.Conditions[i]
				}
			}
			if scheduled == nil || scheduled.Status != corev1.ConditionFalse || scheduled.Reason != corev1.PodReasonUnschedulable {
				t.Errorf("PodScheduled condition %+v, want False, Unschedulable", scheduled)
			}
			if f.hostPod(t) != nil {
				t.Error("an unschedulable pod has a host pod")
			}
			// Settled: the same answer writes nothing again.
			if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 {
				t.Errorf("again: writes %v, error %v; want none", writes, err)
			}
		})
	}
}

func TestSchedulingGatesHoldThePod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	})
	if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 || len(f.e.Events()) > 0 {
		t.Errorf("a gated pod was reconciled with writes %v, events %v and error %v, want none", writes, f.e.Events(), err)
	}
	if f.hostPod(t) != nil {
		t.Fatal("a gated pod has a host pod")
	}
	p := f.tenantPod(t)
	p.Spec.SchedulingGates = nil
	if err := f.e.TenantAdmin.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if f.hostPod(t) == nil {
		t.Error("the pod has no host pod once its gates are gone")
	}
}

func TestBindingAndStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	f.runOnHost(t)
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"tenant create Node", "tenant create Pod/binding", "tenant patch Pod/status"} {
		if !slices.Contains(writes, w) {
			t.Errorf("writes %v, want among them %q", writes, w)
		}
	}
	if i, j := slices.Index(writes, "tenant create Pod/binding"), slices.Index(writes, "tenant patch Pod/status"); i > j {
		t.Errorf("writes %v: the status is written before the binding", writes)
	}
	f.settle(t)

	p := f.tenantPod(t)
	alias := f.nodes.Alias(hostNode)
	if p.Spec.NodeName != alias || strings.Contains(alias, hostNode) {
		t.Errorf("tenant pod is bound to %q, want the virtual Node %q (not naming the host node)", p.Spec.NodeName, alias)
	}
	var node corev1.Node
	if err := f.e.TenantAdmin.Get(t.Context(), types.NamespacedName{Name: alias}, &node); err != nil {
		t.Fatalf("no virtual Node %s: %v", alias, err)
	}
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != "10.244.0.7" {
		t.Errorf("tenant pod is %s with IP %q, want Running with the host pod's IP", p.Status.Phase, p.Status.PodIP)
	}
	if p.Status.HostIP != nodeAddress {
		t.Errorf("tenant pod's host IP is %q, want the virtual Node's %q, never the host node's", p.Status.HostIP, nodeAddress)
	}

	// The host reports a change: it comes back, once.
	h := f.hostPod(t)
	h.Status.ContainerStatuses[0].RestartCount = 1
	if err := f.e.HostAdmin.Status().Update(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if _, writes, err := f.reconcile(t); err != nil || !cmp.Equal(writes, []string{"tenant update Pod/status"}) {
		t.Errorf("a host status change was reconciled with writes %v and error %v, want one status update", writes, err)
	}
	f.settle(t)
	if got := f.tenantPod(t).Status.ContainerStatuses[0].RestartCount; got != 1 {
		t.Errorf("tenant pod's restart count is %d, want the host's 1", got)
	}
}

// A pod the host has scheduled but not started is bound in the tenant with
// one write: the binding marks it scheduled, as the host's scheduler did,
// and no status patch follows until the host pod starts.
func TestAPodScheduledOnTheHostIsBoundWithoutAStatusWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	f.scheduleOnHost(t)
	f.e.WaitCaches(t)
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(writes, "tenant patch Pod/status") || !slices.Contains(writes, "tenant create Pod/binding") {
		t.Errorf("binding a pod the host only scheduled wrote %v, want the binding and no status patch", writes)
	}
	f.settle(t)
	p := f.tenantPod(t)
	if p.Spec.NodeName == "" || !wasOnHost(p) || p.Status.Phase != corev1.PodPending {
		t.Errorf("tenant pod bound to %q, phase %s, conditions %v; want bound, Pending and PodScheduled true", p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
	}

	// The host starts it: one status write, and it is Running.
	f.startOnHost(t)
	f.e.WaitCaches(t)
	if _, writes, err := f.reconcile(t); err != nil || !cmp.Equal(writes, []string{"tenant update Pod/status"}) {
		t.Errorf("the host pod's start was reconciled with writes %v and error %v, want one status update", writes, err)
	}
	f.settle(t)
	if p := f.tenantPod(t); p.Status.Phase != corev1.PodRunning || p.Status.PodIP != "10.244.0.7" {
		t.Errorf("tenant pod is %s with IP %q, want Running with the host pod's IP", p.Status.Phase, p.Status.PodIP)
	}
}

// Someone else writes the tenant pod's status between the syncer's read
// and its status write (a controller of a readiness gate, here): the update,
// which carries the resourceVersion the syncer read, conflicts, and a
// strategic merge patch of the syncer's change follows, which keeps the
// other writer's condition.
func TestAStatusWriteThatConflictsFallsBackToAMergePatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	f.scheduleOnHost(t)
	f.e.WaitCaches(t)
	if _, _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	f.startOnHost(t)
	f.e.WaitCaches(t)
	gate := corev1.PodCondition{Type: "example.com/gate", Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	f.e.Inject(synctest.Tenant, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		if sub == "status" {
			p := &corev1.Pod{}
			if err := f.e.TenantAdmin.Get(ctx, f.key, p); err != nil {
				return err
			}
			p.Status.Conditions = append(p.Status.Conditions, gate)
			if err := f.e.TenantAdmin.Status().Update(ctx, p); err != nil {
				return err
			}
		}
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}})
	_, writes, err := f.e.Reconcile(t, f.r, f.key)
	f.e.Inject(synctest.Tenant, interceptor.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, w := range writes {
		op := w.Op + " " + w.Kind + "/" + w.Subresource
		if w.Err != nil {
			if !kerrors.IsConflict(w.Err) {
				t.Errorf("%s failed with %v, want a conflict", op, w.Err)
			}
			op += " (conflict)"
		}
		ops = append(ops, op)
	}
	if diff := cmp.Diff([]string{"update Pod/status (conflict)", "patch Pod/status"}, ops); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	p := f.tenantPod(t)
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("tenant pod is %s, want the host's Running", p.Status.Phase)
	}
	if !slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == gate.Type }) {
		t.Errorf("conditions %v: the other writer's %s is gone", p.Status.Conditions, gate.Type)
	}
	f.settle(t)
}

// A simulated host node starts a pod tens of milliseconds after it is
// scheduled, so the host pod is often Running before the tenant's binding
// returns. The status patch after the binding carries the host cache's
// latest: the tenant pod is Running after the binding and one status write.
func TestAHostPodThatStartsDuringTheBindingIsRunningAfterOneStatusWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	// Scheduled on the host, not started yet.
	f.scheduleOnHost(t)
	started := false
	f.e.Inject(synctest.Tenant, interceptor.Funcs{SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
		if err := c.SubResource(sub).Create(ctx, obj, subObj, opts...); err != nil || sub != "binding" {
			return err
		}
		// The host starts the pod while the binding is in flight, and
		// knestd's host cache sees it before the binding returns.
		f.startOnHost(t)
		f.e.WaitCaches(t)
		started = true
		return nil
	}})
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	f.e.Inject(synctest.Tenant, interceptor.Funcs{})
	if !started {
		t.Fatalf("no binding in the reconcile's writes %v", writes)
	}
	var statusWrites int
	for _, w := range writes {
		if w == "tenant patch Pod/status" {
			statusWrites++
		}
	}
	if p := f.tenantPod(t); p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || statusWrites != 1 {
		t.Errorf("after one reconcile (writes %v) the tenant pod is bound to %q and %s, want bound and Running after one status write",
			writes, p.Spec.NodeName, p.Status.Phase)
	}
	f.settle(t)
}

func TestHostPodGone(t *testing.T) {
	t.Parallel()
	f := running(t)
	// Evicted: the host pod is gone without the tenant asking.
	h := f.hostPod(t)
	if err := f.e.HostAdmin.Delete(t.Context(), h, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenant update Pod/status"}, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	p := f.tenantPod(t)
	if p.Status.Phase != corev1.PodFailed || p.Status.Reason != ReasonHostPodGone {
		t.Errorf("tenant pod is %s (%s), want Failed (%s)", p.Status.Phase, p.Status.Reason, ReasonHostPodGone)
	}
	if s := p.Status.ContainerStatuses[0].State; s.Terminated == nil || s.Terminated.ExitCode != 137 {
		t.Errorf("container state %+v, want terminated with 137", s)
	}
	var disrupted, ready bool
	for _, c := range p.Status.Conditions {
		disrupted = disrupted || c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue
		ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	}
	if !disrupted || ready {
		t.Errorf("conditions %+v, want DisruptionTarget and not Ready", p.Status.Conditions)
	}
	if diff := cmp.Diff([]string{ReasonHostPodGone}, f.e.Reasons(f.key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// Never recreated.
	f.settle(t)
	if f.hostPod(t) != nil {
		t.Error("the failed pod got a new host pod")
	}
}

func TestDeletionOrder(t *testing.T) {
	t.Parallel()
	f := running(t)
	tp := f.tenantPod(t)
	if err := f.e.TenantAdmin.Delete(t.Context(), tp, client.GracePeriodSeconds(17)); err != nil {
		t.Fatal(err)
	}

	// First the host pod, with the tenant's grace period.
	_, writes, err := f.reconcile(t)
	if err != nil || !cmp.Equal(writes, []string{"host delete Pod"}) {
		t.Fatalf("first reconcile after the delete: writes %v, error %v; want the host pod deleted", writes, err)
	}
	h := f.hostPod(t)
	if h == nil || h.DeletionTimestamp == nil || ptr.Deref(h.DeletionGracePeriodSeconds, -1) != 17 {
		t.Fatalf("host pod %v, want it terminating with the tenant's grace period 17", h)
	}
	// While it terminates, the tenant pod waits.
	if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 {
		t.Errorf("while the host pod terminates: writes %v, error %v; want none", writes, err)
	}
	if f.tenantPod(t) == nil {
		t.Fatal("the tenant pod went before its host pod")
	}

	// The host's kubelet is done.
	if err := f.e.HostAdmin.Delete(t.Context(), h, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	var phases []corev1.PodPhase
	f.e.Inject(synctest.Tenant, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			phases = append(phases, obj.(*corev1.Pod).Status.Phase)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			o := (&client.DeleteOptions{}).ApplyOptions(opts)
			if ptr.Deref(o.GracePeriodSeconds, -1) != 0 {
				t.Errorf("the tenant pod is deleted with grace period %v, want 0", o.GracePeriodSeconds)
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	_, writes, err = f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenant update Pod/status", "tenant delete Pod"}, writes); diff != "" {
		t.Errorf("once the host pod is gone: writes (-want +got):\n%s", diff)
	}
	if !cmp.Equal(phases, []corev1.PodPhase{corev1.PodFailed}) {
		t.Errorf("the tenant pod was marked %v before its deletion, want Failed", phases)
	}
	if f.tenantPod(t) != nil {
		t.Error("the tenant pod is still there")
	}
	f.e.Inject(synctest.Tenant, interceptor.Funcs{})
	f.settle(t)
}

func TestForceDeletedTenantPod(t *testing.T) {
	t.Parallel()
	f := running(t)
	if err := f.e.TenantAdmin.Delete(t.Context(), f.tenantPod(t), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	_, writes, err := f.reconcile(t)
	if err != nil || !cmp.Equal(writes, []string{"host delete Pod"}) {
		t.Errorf("writes %v, error %v; want the host pod deleted", writes, err)
	}
	if h := f.hostPod(t); h != nil && h.DeletionTimestamp == nil {
		t.Error("the host pod is not being deleted")
	}
	f.settle(t)
}

func TestTerminalTenantPod(t *testing.T) {
	t.Parallel()
	f := running(t)
	// A tenant status write finishes the pod.
	p := f.tenantPod(t)
	p.Status.Phase = corev1.PodSucceeded
	if err := f.e.TenantAdmin.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	_, writes, err := f.reconcile(t)
	if err != nil || !cmp.Equal(writes, []string{"host delete Pod"}) {
		t.Errorf("writes %v, error %v; want the host pod deleted", writes, err)
	}
	// While the host pod terminates, nothing more.
	if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 {
		t.Errorf("while the host pod terminates: writes %v, error %v; want none", writes, err)
	}
}

func TestHostPodUpdates(t *testing.T) {
	t.Parallel()
	f := running(t, func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelOSStable: "linux"} })
	p := f.tenantPod(t)
	p.Labels["tier"] = "frontend"
	p.Spec.Containers[0].Image = "nginx:2"
	if err := f.e.TenantAdmin.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	_, writes, err := f.reconcile(t)
	if err != nil || !cmp.Equal(writes, []string{"host patch Pod"}) {
		t.Errorf("writes %v, error %v; want one host pod patch", writes, err)
	}
	h := f.hostPod(t)
	if h.Spec.Containers[0].Image != "nginx:2" || h.Labels[translate.TenantKey("tier")] != "frontend" {
		t.Errorf("host pod has image %s and labels %v, want the tenant's new image and label", h.Spec.Containers[0].Image, h.Labels)
	}
	f.settle(t)

	// An ephemeral container goes through its subresource.
	p = f.tenantPod(t)
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox", TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent}}}
	if err := f.e.TenantAdmin.SubResource("ephemeralcontainers").Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	f.e.Inject(synctest.Host, interceptor.Funcs{SubResourceUpdate: func(_ context.Context, _ client.Client, _ string, obj client.Object, _ ...client.SubResourceUpdateOption) error {
		return kerrors.NewConflict(corev1.Resource("pods"), obj.GetName(), errors.New("injected"))
	}})
	if result, _, err := f.reconcile(t); err != nil || !result.Requeue {
		t.Errorf("a conflicting subresource update: Reconcile = %+v, %v; want a requeue", result, err)
	}
	f.e.Inject(synctest.Host, interceptor.Funcs{SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
		return errInjected
	}})
	if _, _, err := f.reconcile(t); err == nil || !slices.Contains(f.e.Reasons(f.key), "SyncFailed") {
		t.Errorf("a failed subresource update: error %v, events %v; want an error and SyncFailed", err, f.e.Reasons(f.key))
	}
	f.e.Inject(synctest.Host, interceptor.Funcs{})
	_, writes, err = f.reconcile(t)
	if err != nil || !cmp.Equal(writes, []string{"host update Pod/ephemeralcontainers"}) {
		t.Errorf("writes %v, error %v; want the host pod's ephemeral containers updated", writes, err)
	}
	f.settle(t)
	if h := f.hostPod(t); len(h.Spec.EphemeralContainers) != 1 {
		t.Errorf("host pod has ephemeral containers %v, want the tenant's debug container", h.Spec.EphemeralContainers)
	}

	// Under a tighter policy (the pod was admitted before it changed),
	// nothing is written and the tenant is told why.
	tight := soft()
	tight.PodSecurityLevel = psapi.LevelRestricted
	hard := New(Config{Writer: f.e.Writer, Nodes: f.nodes, Policy: tight, TenantCA: f.e.TenantConfig.CAData})
	p = f.tenantPod(t)
	p.Spec.Containers[0].Image = "nginx:3"
	if err := f.e.TenantAdmin.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, writes, err := f.e.Reconcile(t, hard, f.key); err != nil || len(writes) > 0 {
		t.Errorf("under a tighter policy: writes %v, error %v; want none", synctest.Ops(writes), err)
	}
	if reasons := f.e.Reasons(f.key); reasons[len(reasons)-1] != "SyncRefused" {
		t.Errorf("events %v, want a SyncRefused last", reasons)
	}
	if h := f.hostPod(t); h.Spec.Containers[0].Image != "nginx:2" {
		t.Errorf("host pod runs %s, want the image it had", h.Spec.Containers[0].Image)
	}
}

func TestStaleAndForeignHostPods(t *testing.T) {
	t.Parallel()
	t.Run("a host pod of an earlier tenant pod of the same name is replaced", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		earlier := f.stalePod(t)
		f.create(t, earlier)
		_, writes, err := f.reconcile(t)
		if err != nil {
			t.Fatal(err)
		}
		if len(writes) < 2 || writes[0] != "host delete Pod" || writes[1] != "host create Pod" {
			t.Errorf("writes %v, want the stale host pod deleted, then a new one created", writes)
		}
		if h := f.hostPod(t); h == nil || h.UID == earlier.UID {
			t.Error("the stale host pod was not replaced")
		}
		f.settle(t)
	})
	t.Run("a host pod of a gone tenant pod is deleted", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft())
		f.create(t, f.stalePod(t))
		_, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"host delete Pod"}) {
			t.Errorf("writes %v, error %v; want the host pod deleted", writes, err)
		}
		f.settle(t)
	})
	t.Run("a host name taken by a pod that is not ours: the tenant is told, the pod left alone", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.hostKey.Namespace, Name: f.hostKey.Name},
			Spec: corev1.PodSpec{ServiceAccountName: pods.HostServiceAccount, Containers: []corev1.Container{{Name: "x", Image: "x"}}}}
		f.create(t, foreign)
		result, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"host create Pod"}) || result.RequeueAfter == 0 {
			t.Errorf("Reconcile = %+v, %v with writes %v; want one failed create and a later look", result, err, writes)
		}
		if diff := cmp.Diff([]string{"HostNameConflict"}, f.e.Reasons(f.key)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if h := f.hostPod(t); h.UID != foreign.UID || h.ResourceVersion != foreign.ResourceVersion {
			t.Error("the foreign host pod was written")
		}
	})
	t.Run("a marked host pod claiming another tenant pod: the tenant is told", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		other := f.stalePod(t)
		other.Annotations[translate.AnnotationName] = "another"
		f.create(t, other)
		if _, writes, err := f.reconcile(t); err != nil || len(writes) > 0 {
			t.Errorf("writes %v, error %v; want none", writes, err)
		}
		if diff := cmp.Diff([]string{"HostNameConflict"}, f.e.Reasons(f.key)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("our host pod made by another worker between the cache read and the create: looked at again soon", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		f.e.Inject(synctest.Host, interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Pod); ok {
				if err := f.e.HostAdmin.Create(ctx, obj.DeepCopyObject().(client.Object)); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		}})
		result, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"host create Pod"}) || result.RequeueAfter != time.Second {
			t.Errorf("Reconcile = %+v, %v with writes %v; want one failed create and a look in a second", result, err, writes)
		}
		if len(f.e.Events()) > 0 {
			t.Errorf("events %v, want none", f.e.Events())
		}
		f.e.Inject(synctest.Host, interceptor.Funcs{})
		f.settle(t)
		if f.tokenSecret(t) == nil {
			t.Error("the pod got no token Secret")
		}
	})
}

// stalePod is a host pod of this tenant's "app" made for an earlier tenant
// pod of the same name.
func (f *fixture) stalePod(t *testing.T) *corev1.Pod {
	t.Helper()
	id := translate.Object{Kind: "Pod", Namespace: f.key.Namespace, Name: f.key.Name, UID: "earlier-uid"}
	labels, annotations := translate.HostMeta(f.e.Tenant, id, nil, nil, translate.Passthrough{})
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.hostKey.Namespace, Name: f.hostKey.Name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{ServiceAccountName: pods.HostServiceAccount, Containers: []corev1.Container{{Name: "web", Image: "nginx:0"}}}}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	t.Run("tokens due for renewal are issued again", func(t *testing.T) {
		t.Parallel()
		f := running(t)
		s := f.tokenSecret(t)
		before := string(s.Data[pods.TokenKey(0)])
		s.Annotations[annotationTokenRefresh] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		if err := f.e.HostAdmin.Update(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		// Tokens issued within the same second are identical: make sure
		// this one is not.
		time.Sleep(time.Second)
		_, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"tenant create ServiceAccount/token", "host update Secret"}) {
			t.Errorf("writes %v, error %v; want a new token and the Secret updated", writes, err)
		}
		if after := string(f.tokenSecret(t).Data[pods.TokenKey(0)]); after == before {
			t.Error("the token was not renewed")
		}
		f.settle(t)
	})
	t.Run("a token Secret removed from the host is made again", func(t *testing.T) {
		t.Parallel()
		f := running(t)
		if err := f.e.HostAdmin.Delete(t.Context(), f.tokenSecret(t)); err != nil {
			t.Fatal(err)
		}
		_, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"tenant create ServiceAccount/token", "host create Secret"}) {
			t.Errorf("writes %v, error %v; want a new token Secret", writes, err)
		}
		f.settle(t)
	})
	t.Run("a token Secret left by an earlier host pod of the same name is taken over", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		id := translate.Object{Kind: kindToken, Namespace: f.key.Namespace, Name: f.key.Name, UID: "earlier-uid"}
		labels, annotations := translate.HostMeta(f.e.Tenant, id, nil, nil, translate.Passthrough{})
		left := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.hostKey.Namespace, Name: pods.TokenSecretName(f.hostKey.Name),
			Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: f.hostKey.Name, UID: "earlier-host-uid"}}},
			Data: map[string][]byte{"token-0": []byte("old")}}
		f.create(t, left)
		_, writes, err := f.reconcile(t)
		want := []string{"host create Pod", "tenant create ServiceAccount/token", "host create Secret", "tenant create ServiceAccount/token", "host update Secret"}
		if err != nil || !cmp.Equal(writes, want) {
			t.Errorf("writes %v, error %v; want %v", writes, err, want)
		}
		s := f.tokenSecret(t)
		if h := f.hostPod(t); len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != h.UID {
			t.Errorf("token Secret is owned by %v, want the new host pod %s", s.OwnerReferences, h.UID)
		}
		f.settle(t)
	})
	t.Run("a failed token request is a SyncFailed event and an error", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) {})
		f.e.Inject(synctest.Tenant, interceptor.Funcs{SubResourceCreate: func(context.Context, client.Client, string, client.Object, client.Object, ...client.SubResourceCreateOption) error {
			return errInjected
		}})
		if _, _, err := f.reconcile(t); err == nil {
			t.Error("no error")
		}
		if diff := cmp.Diff([]string{"SyncFailed"}, f.e.Reasons(f.key)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		// Retried on the running pod's path, then settled.
		if _, _, err := f.reconcile(t); err == nil {
			t.Error("no error on the retry while token requests fail")
		}
		f.e.Inject(synctest.Tenant, interceptor.Funcs{})
		f.settle(t)
		if f.tokenSecret(t) == nil {
			t.Error("no token Secret once token requests work")
		}
	})
	t.Run("a pod without tokens gets no Secret", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, soft(), func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr.To(false) })
		_, writes, err := f.reconcile(t)
		if err != nil || !cmp.Equal(writes, []string{"host create Pod"}) {
			t.Errorf("writes %v, error %v; want the host pod only", writes, err)
		}
		f.settle(t)
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := running(t)
	for _, m := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"kind": "Pod", "cluster": "host", "op": "create"}, 1},
		{map[string]string{"kind": "Pod", "cluster": "tenant", "op": "bind"}, 1},
		{map[string]string{"kind": "ServiceAccountToken", "cluster": "host", "op": "create"}, 1},
		{map[string]string{"kind": "TokenRequest", "cluster": "tenant", "op": "create"}, 1},
	} {
		if got := f.e.Counter(t, "knest_syncer_writes_total", m.labels); got != m.want {
			t.Errorf("knest_syncer_writes_total%v = %v, want %v", m.labels, got, m.want)
		}
	}
	if got := f.e.Counter(t, "knest_syncer_reconciles_total", map[string]string{"kind": "Pod"}); got < 4 {
		t.Errorf("knest_syncer_reconciles_total{kind=Pod} = %v, want every reconcile counted", got)
	}
}

// setFrozen restarts the fixture's reconciler frozen or not, as knestd
// restarted with or without --frozen would be.
func (f *fixture) setFrozen(frozen bool) {
	r := *f.r
	r.frozen = frozen
	f.r = &r
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestFreezeAndUnfreeze(t *testing.T) {
	t.Parallel()
	f := running(t)
	f.setFrozen(true)
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenant update Pod/status", "host delete Pod"}, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	// The host's kubelet finishes the deletion.
	if h := f.hostPod(t); h != nil {
		if err := f.e.HostAdmin.Delete(t.Context(), h, client.GracePeriodSeconds(0)); err != nil && !kerrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	f.settle(t)
	if f.hostPod(t) != nil {
		t.Fatal("a frozen pod has a host pod")
	}
	p := f.tenantPod(t)
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("a frozen pod is %s, want it to stay Running (not Failed: its controller would replace it)", p.Status.Phase)
	}
	if c := condition(p, ConditionFrozen); c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonFrozen || !strings.Contains(c.Message, "frozen") {
		t.Errorf("condition %s = %+v, want True with reason %s", ConditionFrozen, c, ReasonFrozen)
	}
	if c := condition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != ReasonFrozen {
		t.Errorf("Ready = %+v, want False with reason %s", c, ReasonFrozen)
	}

	// Unfrozen: the pod that still exists gets a host pod again (the one
	// exception to "never recreated"), and the host's status replaces the
	// frozen one.
	f.setFrozen(false)
	_, writes, err = f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) == 0 || writes[0] != "host create Pod" {
		t.Errorf("writes %v, want the host pod made again", writes)
	}
	f.runOnHost(t)
	f.settle(t)
	p = f.tenantPod(t)
	if c := condition(p, ConditionFrozen); c != nil {
		t.Errorf("an unfrozen running pod still has %+v", c)
	}
	if c := condition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("Ready = %+v, want True from the host", c)
	}
	// An eviction after the unfreeze is still never recreated.
	if err := f.e.HostAdmin.Delete(t.Context(), f.hostPod(t), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if p := f.tenantPod(t); p.Status.Phase != corev1.PodFailed || f.hostPod(t) != nil {
		t.Errorf("an evicted pod after the unfreeze is %s with host pod %v, want Failed and none", p.Status.Phase, f.hostPod(t) != nil)
	}
}

func TestFrozenMakesNoHostPod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.setFrozen(true)
	f.settle(t)
	if f.hostPod(t) != nil {
		t.Fatal("a new pod of a frozen tenant got a host pod")
	}
	if c := condition(f.tenantPod(t), ConditionFrozen); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("condition %s = %+v, want True", ConditionFrozen, c)
	}
	f.setFrozen(false)
	f.settle(t)
	if f.hostPod(t) == nil {
		t.Error("the pod got no host pod after the unfreeze")
	}
}

// TestFrozenConditionIsNoWayPastTheRefusals: the Frozen condition lives in
// the tenant pod's status, which a tenant admin can write. Whether a freeze
// put it there or the tenant did, an unfrozen pod is still refused what any
// pod is refused (a DaemonSet's pod without pool nodes) and still held by
// its scheduling gates.
func TestFrozenConditionIsNoWayPastTheRefusals(t *testing.T) {
	t.Parallel()
	daemonSet := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds-uid", Controller: ptr.To(true)}}
	}
	gated := func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}} }
	for _, tt := range []struct {
		name    string
		pod     func(*corev1.Pod)
		refused bool
	}{
		{"a DaemonSet's pod", daemonSet, true},
		{"a gated pod", gated, false},
	} {
		t.Run(tt.name+", frozen and unfrozen", func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, soft(), tt.pod)
			f.setFrozen(true)
			f.settle(t)
			if c := condition(f.tenantPod(t), ConditionFrozen); c == nil || c.Status != corev1.ConditionTrue {
				t.Fatalf("condition %s = %+v, want True", ConditionFrozen, c)
			}
			f.setFrozen(false)
			f.settle(t)
			if f.hostPod(t) != nil {
				t.Error("the unfrozen pod got a host pod")
			}
			if refused := slices.ContainsFunc(f.e.Events(), func(e synctest.Event) bool { return e.Reason == "SyncRefused" }); refused != tt.refused {
				t.Errorf("SyncRefused event %v, want %v (events %+v)", refused, tt.refused, f.e.Events())
			}
			// No longer the freeze's: the condition goes.
			if c := condition(f.tenantPod(t), ConditionFrozen); c != nil {
				t.Errorf("the unfrozen pod without a host pod still has %+v", c)
			}
		})
		t.Run(tt.name+", with a Frozen condition the tenant wrote", func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, soft(), tt.pod)
			p := f.tenantPod(t)
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
				Type: ConditionFrozen, Status: corev1.ConditionTrue, Reason: ReasonFrozen, LastTransitionTime: metav1.Now(),
			})
			if err := f.e.TenantAdmin.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			f.settle(t)
			if f.hostPod(t) != nil {
				t.Error("a Frozen condition the tenant wrote got the pod a host pod")
			}
		})
	}
}

// TestSleepAndWake is not parallel: Sleep handles every pod of the tenant
// cluster, which the tests share, and the parallel tests' pods must not be
// put to sleep (parallel tests wait until the sequential ones are done).
func TestSleepAndWake(t *testing.T) {
	f := running(t)
	if err := f.r.Sleep(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The host's kubelet finishes the deletion.
	if h := f.hostPod(t); h != nil {
		if h.DeletionTimestamp == nil {
			t.Error("after Sleep the host pod is not being deleted")
		}
		if err := f.e.HostAdmin.Delete(t.Context(), h, client.GracePeriodSeconds(0)); err != nil && !kerrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	f.settle(t)
	if f.hostPod(t) != nil {
		t.Fatal("a sleeping tenant's pod has a host pod")
	}
	p := f.tenantPod(t)
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("a sleeping tenant's pod is %s, want it to stay Running", p.Status.Phase)
	}
	if c := condition(p, ConditionFrozen); c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonSleeping || !strings.Contains(c.Message, "asleep") {
		t.Errorf("condition %s = %+v, want True with reason %s", ConditionFrozen, c, ReasonSleeping)
	}

	// The next knestd's reconciler is awake: the pod gets its host pod
	// again, as after an unfreeze.
	f.r = New(Config{Writer: f.e.Writer, Nodes: f.nodes, Policy: f.r.policy, TenantCA: f.e.TenantConfig.CAData})
	_, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) == 0 || writes[0] != "host create Pod" {
		t.Errorf("writes %v, want the host pod made again", writes)
	}
	f.runOnHost(t)
	f.settle(t)
	if c := condition(f.tenantPod(t), ConditionFrozen); c != nil {
		t.Errorf("a woken running pod still has %+v", c)
	}
}
