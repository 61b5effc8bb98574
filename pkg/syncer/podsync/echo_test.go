package podsync

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
)

// rvPod is tenant pod ns/app at resource version rv.
func rvPod(rv string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", ResourceVersion: rv}}
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

func phaseRunning(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }

func TestOwnWrites(t *testing.T) {
	t.Parallel()
	key := types.NamespacedName{Namespace: "ns", Name: "app"}
	type update struct {
		old, new string
		wantHeld bool
	}
	tests := []struct {
		name string
		// The reconcile read the pod at from, wrote it, and the server
		// stored got (nil: no status patch) for want.
		from      string
		want, got *corev1.Pod
		// during: updates seen while the write was in flight; after:
		// those seen once it returned.
		during, after []update
		wantRequeue   bool
	}{
		{
			name: "the binding's and the status patch's echoes are dropped, a later change is not",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("12", phaseRunning),
			during: []update{{old: "10", new: "11", wantHeld: true}},
			after:  []update{{old: "11", new: "12", wantHeld: true}, {old: "12", new: "13"}},
		},
		{
			name: "echoes that came during the write are all the write's",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("12", phaseRunning),
			during: []update{{old: "10", new: "11", wantHeld: true}, {old: "11", new: "12", wantHeld: true}},
			after:  []update{{old: "12", new: "13"}},
		},
		{
			name: "a stored pod that differs from what was asked (someone else wrote it meanwhile) requeues what was held back",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("12", phaseRunning, func(p *corev1.Pod) { p.Labels = map[string]string{"someone": "else"} }),
			during:      []update{{old: "10", new: "11", wantHeld: true}},
			after:       []update{{old: "11", new: "12"}},
			wantRequeue: true,
		},
		{
			name: "a change held back that came after the write requeues",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("11", phaseRunning),
			during:      []update{{old: "10", new: "11", wantHeld: true}, {old: "11", new: "12", wantHeld: true}},
			wantRequeue: true,
		},
		{
			name: "no status patch (a binding alone) proves nothing: what was held back is requeued",
			from: "10", during: []update{{old: "10", new: "11", wantHeld: true}},
			after:       []update{{old: "11", new: "12"}},
			wantRequeue: true,
		},
		{
			name: "an update that started before the pod was read is not the write's",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("12", phaseRunning),
			during: []update{{old: "9", new: "10"}},
			after:  []update{{old: "10", new: "12", wantHeld: true}},
		},
		{
			name: "a resync of the written pod is not an echo",
			from: "10", want: rvPod("10", phaseRunning), got: rvPod("12", phaseRunning),
			after: []update{{old: "11", new: "11"}, {old: "11", new: "12", wantHeld: true}},
		},
		{
			name: "resource versions that are not numbers hold back nothing",
			from: "a", want: rvPod("a", phaseRunning), got: rvPod("b", phaseRunning),
			during: []update{{old: "a", new: "b"}},
			after:  []update{{old: "b", new: "c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOwnWrites()
			began := o.begin(key, tt.from)
			check := func(u update) {
				if held := o.echo(rvPod(u.old), rvPod(u.new)); held != u.wantHeld {
					t.Errorf("update %s -> %s held back: %v, want %v", u.old, u.new, held, u.wantHeld)
				}
			}
			for _, u := range tt.during {
				check(u)
			}
			if tt.got != nil {
				o.prove(key, tt.want, tt.got)
			}
			if requeue := began && o.end(key); requeue != tt.wantRequeue {
				t.Errorf("requeue: %v, want %v", requeue, tt.wantRequeue)
			}
			for _, u := range tt.after {
				check(u)
			}
			if len(o.spans) != 0 {
				t.Errorf("spans left: %v", o.spans)
			}
		})
	}
}

// watchTenantPod returns the tenant pod's updates after resource version
// rv, as the syncer's informer gets them.
func watchTenantPod(t *testing.T, f *fixture, rv string) watch.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(f.e.TenantConfig)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(f.key.Namespace).Watch(t.Context(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + f.key.Name, ResourceVersion: rv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// nextUpdate returns the tenant pod of the watch's next event.
func nextUpdate(t *testing.T, w watch.Interface) *corev1.Pod {
	t.Helper()
	ev, ok := <-w.ResultChan()
	if !ok {
		t.Fatal("the watch ended")
	}
	p, ok := ev.Object.(*corev1.Pod)
	if !ok || ev.Type != watch.Modified {
		t.Fatalf("watch event %s %T, want a modified pod", ev.Type, ev.Object)
	}
	return p
}

// The status path's writes (the binding, then the status patch), against
// the real tenant API server: the informer's updates that echo them are
// dropped, and the next change by someone else is not.
func TestTheStatusPathsOwnWritesQueueNoReconcile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	f.runOnHost(t)
	f.e.WaitCaches(t)
	old := f.tenantPod(t)
	w := watchTenantPod(t, f, old.ResourceVersion)
	result, writes, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) < 2 || writes[len(writes)-2] != "tenant create Pod/binding" || writes[len(writes)-1] != "tenant patch Pod/status" {
		t.Fatalf("writes %v, want the binding and then the status patch", writes)
	}
	if result.Requeue || result.RequeueAfter == heldBackRetry {
		t.Errorf("the reconcile asked to run again after writes it proved its own")
	}
	stored := f.tenantPod(t)
	for old.ResourceVersion != stored.ResourceVersion {
		p := nextUpdate(t, w)
		if !f.r.own.echo(old, p) {
			t.Errorf("the echo of the syncer's own write (resource version %s -> %s) would queue a reconcile", old.ResourceVersion, p.ResourceVersion)
		}
		old = p
	}

	// The tenant's user writes the pod: that is reconciled.
	stored.Labels = map[string]string{"app": "web", "tier": "front"}
	if err := f.e.TenantAdmin.Update(t.Context(), stored); err != nil {
		t.Fatal(err)
	}
	if p := nextUpdate(t, w); f.r.own.echo(old, p) {
		t.Errorf("the tenant's own change (resource version %s -> %s) queues no reconcile", old.ResourceVersion, p.ResourceVersion)
	}
	f.settle(t)
}

// Someone else writes the tenant pod while the syncer's status patch is in
// flight: the update held back meanwhile is not taken for an echo, and the
// reconcile asks to run again.
func TestAChangeDuringTheStatusWriteIsReconciled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, soft(), func(p *corev1.Pod) {})
	f.settle(t)
	f.runOnHost(t)
	f.e.WaitCaches(t)
	read := f.tenantPod(t)
	f.e.Inject(synctest.Tenant, interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
		if sub == "status" {
			// The tenant's user labels the pod, and the informer hands
			// the update to the reconciler's event filter.
			p := &corev1.Pod{}
			if err := f.e.TenantAdmin.Get(ctx, f.key, p); err != nil {
				return err
			}
			before := p.DeepCopy()
			p.Labels = map[string]string{"app": "web", "tier": "front"}
			if err := f.e.TenantAdmin.Update(ctx, p); err != nil {
				return err
			}
			if !f.r.own.echo(before, p) {
				t.Errorf("an update while the write is in flight (%s -> %s) was not held back", before.ResourceVersion, p.ResourceVersion)
			}
		}
		return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	}})
	result, writes, err := f.reconcile(t)
	f.e.Inject(synctest.Tenant, interceptor.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	if result.RequeueAfter != heldBackRetry || result.Requeue {
		t.Errorf("after writes %v with a change of someone else's held back, the reconcile returned %+v, want to run again at once (not rate-limited)", writes, result)
	}
	if len(f.r.own.spans) != 0 {
		t.Errorf("a span is left for a write that was not proven the syncer's own: %v", f.r.own.spans)
	}
	if read.ResourceVersion == "" {
		t.Fatal("no resource version")
	}
	f.settle(t)
}
