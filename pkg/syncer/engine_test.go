package syncer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/translate"
)

// testPolicy is the soft profile with a host object size cap small enough
// to refuse a test ConfigMap.
func testPolicy() *policy.Policy {
	p := policy.Default(policy.ProfileSoft)
	p.HostLimits.ObjectBytes = 64
	return p
}

// kind returns the syncer's Kind of the given name under pol.
func kind(t *testing.T, pol *policy.Policy, name string) Kind {
	t.Helper()
	for _, k := range Kinds(pol) {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no kind %s", name)
	return Kind{}
}

func newReconciler(e *synctest.Env, k Kind, pol *policy.Policy) *reconciler {
	return &reconciler{kind: k, w: e.Writer, pass: passthrough(pol)}
}

// hold is a finalizer that keeps a deleted tenant object around, deleting.
const hold = "synctest.knest.io/hold"

// Tenant ConfigMap states: whether it exists, is deleting, is wanted on the
// host (a pod references it) and is refused there (too large).
type tenantState int

const (
	tenantAbsent tenantState = iota
	tenantWanted
	tenantDeleting
	tenantUnwanted
	tenantRefused
)

// Host copy states.
type hostState int

const (
	hostAbsent hostState = iota
	// hostOurs is the copy the engine makes of the tenant object (or of an
	// earlier object of the same name when there is none).
	hostOurs
	// hostOutdated is ours, with other data.
	hostOutdated
	// hostStale is ours, made for an earlier tenant object (another UID).
	hostStale
	// hostUnmarked has the host name and no marker: the host cache does not
	// see it.
	hostUnmarked
	// hostOtherIdentity has the tenant's marker and claims another tenant
	// object.
	hostOtherIdentity
)

// What the host copy is after a reconcile.
type hostOutcome int

const (
	wantAbsent hostOutcome = iota
	// wantCopy is the tenant object's up-to-date copy.
	wantCopy
	// wantUntouched is the object the test made, as it was.
	wantUntouched
)

// setUpConfigMap makes the tenant ConfigMap "cm" in the given state and its
// host copy in the given state, and returns the tenant object (nil if
// absent) and the host object (nil if absent).
func setUpConfigMap(t *testing.T, e *synctest.Env, k Kind, pol *policy.Policy, ts tenantState, hs hostState) (*corev1.ConfigMap, *corev1.ConfigMap) {
	t.Helper()
	ctx := t.Context()
	key := types.NamespacedName{Namespace: e.Namespace, Name: "cm"}
	var cm *corev1.ConfigMap
	if ts != tenantAbsent {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{"app": "shop"}},
			Data: map[string]string{"k": "v"}}
		if ts == tenantDeleting {
			cm.Finalizers = []string{hold}
		}
		if ts == tenantRefused {
			cm.Data["k"] = strings.Repeat("x", 100)
		}
		create(t, e.TenantAdmin, cm)
		if ts != tenantUnwanted {
			create(t, e.TenantAdmin, podUsing(e.Namespace, "user", key.Name))
		}
		if ts == tenantDeleting {
			if err := e.TenantAdmin.Delete(ctx, cm); err != nil {
				t.Fatal(err)
			}
			if err := e.TenantAdmin.Get(ctx, key, cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The copy is made from the tenant object, or from an earlier one of
	// the same name.
	from := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, UID: "earlier-uid"}, Data: map[string]string{"k": "v"}}
	if cm != nil && hs != hostStale {
		from = cm
	}
	hostKey := e.Writer.HostKey(key.Namespace, key.Name, k.MaxNameLength)
	var h *corev1.ConfigMap
	switch hs {
	case hostAbsent:
		return cm, nil
	case hostOurs, hostOutdated, hostStale:
		h = hostCopy(e, k, pol, from).(*corev1.ConfigMap)
		if hs == hostOutdated {
			h.Data = map[string]string{"k": "old"}
		}
	case hostUnmarked:
		h = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: hostKey.Namespace, Name: hostKey.Name}, Data: map[string]string{"owner": "someone else"}}
	case hostOtherIdentity:
		other := from.DeepCopy()
		other.Name = "another"
		h = hostCopy(e, k, pol, other).(*corev1.ConfigMap)
		h.Name = hostKey.Name
	}
	create(t, e.HostAdmin, h)
	return cm, h
}

// hostCopy is the host copy the engine makes of tenant object obj.
func hostCopy(e *synctest.Env, k Kind, pol *policy.Policy, obj client.Object) client.Object {
	id := translate.Object{Kind: k.Name, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()}
	hostKey := e.Writer.HostKey(obj.GetNamespace(), obj.GetName(), k.MaxNameLength)
	labels, annotations := translate.HostMeta(e.Tenant, id, obj.GetLabels(), obj.GetAnnotations(), passthrough(pol))
	return k.Forward(obj, nil, translate.Meta{
		Name: hostKey.Name, Namespace: hostKey.Namespace, Labels: labels, Annotations: annotations,
		Tenant: e.Tenant, TenantNamespace: obj.GetNamespace(),
	})
}

// podUsing is a tenant pod that takes its environment from ConfigMap cm.
func podUsing(namespace, name, cm string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}}}}},
	}
}

// The helpers every test of this package uses.
var (
	create           = synctest.Create
	exists           = synctest.Exists
	eventuallyWithin = synctest.EventuallyWithin
	runHostPod       = synctest.RunHostPod
)

// errInjected stands for a host API failure a retry may fix.
var errInjected = kerrors.NewInternalError(errors.New("injected failure"))

func TestEngineExistence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tenant tenantState
		host   hostState
		// hostFuncs are injected into the Writer's host client.
		hostFuncs func(e *synctest.Env, k Kind, pol *policy.Policy) interceptor.Funcs
		want      hostOutcome
		writes    []string
		events    []string
		result    reconcile.Result
		wantErr   bool
		// neverSettles: every reconcile tries a write (a create the host
		// cache cannot know is taken).
		neverSettles bool
	}{
		{name: "nothing on either side: nothing to do", tenant: tenantAbsent, host: hostAbsent, want: wantAbsent},
		{name: "our copy of a gone tenant object is deleted", tenant: tenantAbsent, host: hostOurs, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}},
		{name: "our copy of an earlier tenant object is deleted once it is gone too", tenant: tenantAbsent, host: hostStale, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}},
		{name: "a host object without our marker is left alone", tenant: tenantAbsent, host: hostUnmarked, want: wantUntouched},
		{name: "a marked host object claiming another tenant object is left alone", tenant: tenantAbsent, host: hostOtherIdentity, want: wantUntouched},

		{name: "a wanted tenant object gets a host copy", tenant: tenantWanted, host: hostAbsent, want: wantCopy,
			writes: []string{"host create ConfigMap"}},
		{name: "an up-to-date copy is not written", tenant: tenantWanted, host: hostOurs, want: wantCopy},
		{name: "an outdated copy is patched", tenant: tenantWanted, host: hostOutdated, want: wantCopy,
			writes: []string{"host patch ConfigMap"}},
		{name: "a copy of an earlier tenant object is replaced", tenant: tenantWanted, host: hostStale, want: wantCopy,
			writes: []string{"host delete ConfigMap", "host create ConfigMap"}},
		{name: "a host name taken by an object without our marker: the tenant is told, the object left alone", tenant: tenantWanted, host: hostUnmarked,
			want: wantUntouched, writes: []string{"host create ConfigMap"}, events: []string{"HostNameConflict"},
			result: reconcile.Result{RequeueAfter: notOursRetryForTest}, neverSettles: true},
		{name: "a host name taken by another tenant object: the tenant is told, the object left alone", tenant: tenantWanted, host: hostOtherIdentity,
			want: wantUntouched, events: []string{"HostNameConflict"}},
		{name: "our copy made by another worker between the cache read and the create: looked at again soon", tenant: tenantWanted, host: hostAbsent,
			hostFuncs: func(e *synctest.Env, k Kind, pol *policy.Policy) interceptor.Funcs {
				return interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if err := e.HostAdmin.Create(ctx, obj.DeepCopyObject().(client.Object)); err != nil {
						return err
					}
					return c.Create(ctx, obj, opts...)
				}}
			},
			want: wantCopy, writes: []string{"host create ConfigMap"}, result: reconcile.Result{RequeueAfter: time.Second}},
		{name: "a failed create is a SyncFailed event and an error", tenant: tenantWanted, host: hostAbsent,
			hostFuncs: failing("Create"), want: wantAbsent, events: []string{"SyncFailed"}, wantErr: true},
		{name: "a patch that loses a race is retried without an error", tenant: tenantWanted, host: hostOutdated,
			hostFuncs: func(e *synctest.Env, k Kind, pol *policy.Policy) interceptor.Funcs {
				return interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
					return kerrors.NewConflict(corev1.Resource("configmaps"), obj.GetName(), errors.New("injected"))
				}}
			},
			want: wantUntouched, result: reconcile.Result{Requeue: true}},
		{name: "a failed patch is a SyncFailed event and an error", tenant: tenantWanted, host: hostOutdated,
			hostFuncs: failing("Patch"), want: wantUntouched, events: []string{"SyncFailed"}, wantErr: true},
		{name: "a failed delete of a stale copy is a SyncFailed event and an error", tenant: tenantWanted, host: hostStale,
			hostFuncs: failing("Delete"), want: wantUntouched, events: []string{"SyncFailed"}, wantErr: true},
		{name: "a failed host read is an error", tenant: tenantWanted, host: hostOurs,
			hostFuncs: failing("Get"), want: wantUntouched, wantErr: true},

		{name: "a deleting tenant object gets no copy", tenant: tenantDeleting, host: hostAbsent, want: wantAbsent},
		{name: "the copy of a deleting tenant object is deleted", tenant: tenantDeleting, host: hostOurs, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}},
		{name: "a stale copy of a deleting tenant object is deleted", tenant: tenantDeleting, host: hostStale, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}},
		{name: "a deleting tenant object leaves a foreign host object alone, silently", tenant: tenantDeleting, host: hostUnmarked, want: wantUntouched},

		{name: "an unwanted tenant object gets no copy", tenant: tenantUnwanted, host: hostAbsent, want: wantAbsent},
		{name: "the copy of an object no pod uses any more is deleted", tenant: tenantUnwanted, host: hostOurs, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}},
		{name: "a failed delete of an unwanted copy is an error", tenant: tenantUnwanted, host: hostOurs,
			hostFuncs: failing("Delete"), want: wantUntouched, wantErr: true},
		{name: "an unwanted tenant object leaves a foreign host object alone, silently", tenant: tenantUnwanted, host: hostOtherIdentity, want: wantUntouched},

		{name: "a refused tenant object gets no copy, an event, and another look later", tenant: tenantRefused, host: hostAbsent, want: wantAbsent,
			events: []string{"SyncRefused"}, result: reconcile.Result{RequeueAfter: refusedRetry}},
		{name: "the copy of a refused tenant object is deleted", tenant: tenantRefused, host: hostOurs, want: wantAbsent,
			writes: []string{"host delete ConfigMap"}, events: []string{"SyncRefused"}, result: reconcile.Result{RequeueAfter: refusedRetry}},
		{name: "a refused tenant object leaves a foreign host object alone", tenant: tenantRefused, host: hostUnmarked, want: wantUntouched,
			events: []string{"SyncRefused"}, result: reconcile.Result{RequeueAfter: refusedRetry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			k := kind(t, pol, "ConfigMap")
			r := newReconciler(e, k, pol)
			cm, before := setUpConfigMap(t, e, k, pol, tt.tenant, tt.host)
			if tt.hostFuncs != nil {
				e.Inject(synctest.Host, tt.hostFuncs(e, k, pol))
			}
			key := types.NamespacedName{Namespace: e.Namespace, Name: "cm"}

			result, writes, err := e.Reconcile(t, r, key)
			if (err != nil) != tt.wantErr {
				t.Errorf("Reconcile error = %v, want an error: %t", err, tt.wantErr)
			}
			if result != tt.result {
				t.Errorf("Reconcile result = %+v, want %+v", result, tt.result)
			}
			if diff := cmp.Diff(tt.writes, synctest.Ops(writes)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.events, e.Reasons(key)); diff != "" {
				t.Errorf("events on the tenant object (-want +got):\n%s", diff)
			}
			checkHostCopy(t, e, k, pol, cm, before, tt.want)

			if tt.neverSettles {
				return
			}
			// Whatever happened, the next reconciles converge, and then
			// write nothing.
			e.Inject(synctest.Host, interceptor.Funcs{})
			e.Settle(t, r, key)
			if _, writes, err := e.Reconcile(t, r, key); err != nil || len(writes) > 0 {
				t.Errorf("a settled object was reconciled with writes %v and error %v", writes, err)
			}
		})
	}
}

// notOursRetryForTest is the writer's retry delay for a host name taken by
// an object that is not ours.
const notOursRetryForTest = 30 * time.Second

// failing injects errInjected into the named host client calls.
func failing(calls ...string) func(*synctest.Env, Kind, *policy.Policy) interceptor.Funcs {
	return func(*synctest.Env, Kind, *policy.Policy) interceptor.Funcs {
		var f interceptor.Funcs
		for _, c := range calls {
			switch c {
			case "Get":
				f.Get = func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
					return errInjected
				}
			case "Create":
				f.Create = func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
					return errInjected
				}
			case "Patch":
				f.Patch = func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
					return errInjected
				}
			case "Delete":
				f.Delete = func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
					return errInjected
				}
			}
		}
		return f
	}
}

// checkHostCopy checks the host object at the tenant ConfigMap's host name.
func checkHostCopy(t *testing.T, e *synctest.Env, k Kind, pol *policy.Policy, cm, before *corev1.ConfigMap, want hostOutcome) {
	t.Helper()
	hostKey := e.Writer.HostKey(e.Namespace, "cm", k.MaxNameLength)
	got := &corev1.ConfigMap{}
	err := e.HostAdmin.Get(t.Context(), hostKey, got)
	switch want {
	case wantAbsent:
		if !kerrors.IsNotFound(err) {
			t.Errorf("host object %s: got %v, want none", hostKey, err)
		}
	case wantUntouched:
		if before == nil {
			if !kerrors.IsNotFound(err) {
				t.Errorf("host object %s: got %v, want none", hostKey, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("host object %s: %v", hostKey, err)
		}
		if got.UID != before.UID || got.ResourceVersion != before.ResourceVersion {
			t.Errorf("host object %s was written: %s at %s, was %s at %s", hostKey, got.UID, got.ResourceVersion, before.UID, before.ResourceVersion)
		}
	case wantCopy:
		if err != nil {
			t.Fatalf("host copy %s: %v", hostKey, err)
		}
		id := translate.Object{Kind: k.Name, Namespace: cm.Namespace, Name: cm.Name, UID: cm.UID}
		if o := translate.Owns(e.Tenant, id, got); o != translate.Ours || got.Annotations[translate.AnnotationUID] != string(cm.UID) {
			t.Errorf("host copy %s is not the tenant object's: ownership %v, annotations %v", hostKey, o, got.Annotations)
		}
		if diff := cmp.Diff(cm.Data, got.Data); diff != "" {
			t.Errorf("host copy data (-tenant +host):\n%s", diff)
		}
		if got.Labels[translate.LabelTenant] != e.Tenant {
			t.Errorf("host copy has no marker label: %v", got.Labels)
		}
	}
}
