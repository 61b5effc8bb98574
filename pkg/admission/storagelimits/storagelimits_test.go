package storagelimits

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/datastore"
	"github.com/knest-dev/knest/pkg/pki"
)

const mib = 1 << 20

func configMap(name string, data string, tweaks ...func(*corev1.ConfigMap)) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"}, Data: map[string]string{"k": data}}
	for _, tweak := range tweaks {
		tweak(cm)
	}
	return cm
}

func deleting(cm *corev1.ConfigMap) {
	now := metav1.Now()
	cm.DeletionTimestamp = &now
	cm.Finalizers = []string{"example.com/hold"}
}

type request struct {
	op          admission.Operation
	resource    schema.GroupVersionResource
	subresource string
	obj, old    runtime.Object
	user        string
}

var (
	configmaps = corev1.SchemeGroupVersion.WithResource("configmaps")
	leases     = coordinationv1.SchemeGroupVersion.WithResource("leases")
)

func (r request) attributes() admission.Attributes {
	name := ""
	if m, ok := r.obj.(metav1.Object); ok {
		name = m.GetName()
	}
	u := r.user
	if u == "" {
		u = "kubernetes-admin"
	}
	return admission.NewAttributesRecord(r.obj, r.old, schema.GroupVersionKind{}, "team", name, r.resource, r.subresource,
		r.op, nil, false, &user.DefaultInfo{Name: u, Groups: []string{"system:masters"}})
}

// readOnlyGuard is a guard whose last measurement put the tenant in
// read-only mode.
func readOnlyGuard() *datastore.Guard {
	g := datastore.NewGuard(datastore.Limits{QuotaBytes: 64 * mib, ObjectCounts: map[string]int{"configmaps": 100}})
	g.Observe(datastore.Usage{InUse: 60 * mib}, datastore.Pending{}, time.Now())
	return g
}

func TestReadOnlyMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     request
		refused bool
	}{
		{name: "the tenant admin's create is refused",
			req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x")}, refused: true},
		{name: "an update to a larger object is refused",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", "xxxx"), old: configMap("a", "x")}, refused: true},
		{name: "an update that does not grow the object is admitted",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", "y"), old: configMap("a", "x")}},
		{name: "an update that shrinks the object is admitted",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", ""), old: configMap("a", "xxxx")}},
		{name: "finalizer removal from an object being deleted is admitted, whatever its size",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", "xxxxxxxx", deleting), old: configMap("a", "x", deleting)}},
		{name: "a status write is admitted",
			req: request{op: admission.Update, resource: corev1.SchemeGroupVersion.WithResource("pods"), subresource: "status",
				obj: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Message: "longer than before"}},
				old: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}}},
		{name: "namespaces/finalize is admitted",
			req: request{op: admission.Update, resource: corev1.SchemeGroupVersion.WithResource("namespaces"), subresource: "finalize",
				obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, old: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}}},
		{name: "a Lease renewal is admitted",
			req: request{op: admission.Update, resource: leases,
				obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a-longer-holder")}},
				old: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a")}}}},
		{name: "a Lease create is refused",
			req: request{op: admission.Create, resource: leases, obj: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}}}, refused: true},
		{name: "a namespace's default ServiceAccount is admitted",
			req: request{op: admission.Create, resource: corev1.SchemeGroupVersion.WithResource("serviceaccounts"),
				obj: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}}},
		{name: "another ServiceAccount is refused",
			req: request{op: admission.Create, resource: corev1.SchemeGroupVersion.WithResource("serviceaccounts"),
				obj: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}}, refused: true},
		{name: "knestd's own create is admitted",
			req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x"), user: pki.InternalUser}},
		{name: "a tenant user claiming to be in knestd's group is refused",
			req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x"), user: "system:knest:other"}, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewFactory(readOnlyGuard(), false)(nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.(admission.ValidationInterface).Validate(context.Background(), tc.req.attributes(), nil)
			if !tc.refused {
				if err != nil {
					t.Fatalf("Validate = %v, want admitted", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) {
				t.Fatalf("Validate = %v, want Forbidden", err)
			}
			if !strings.Contains(err.Error(), "datastore is read-only") || !strings.Contains(err.Error(), "of its 64.0 MiB limit") {
				t.Errorf("refusal %q does not name the mode, the use and the limit", err)
			}
		})
	}
}

func TestObjectCountCap(t *testing.T) {
	t.Parallel()
	g := datastore.NewGuard(datastore.Limits{QuotaBytes: 64 * mib, ObjectCounts: map[string]int{"configmaps": 2}})
	g.Observe(datastore.Usage{InUse: mib, Counts: map[string]int{"configmaps": 1}}, datastore.Pending{}, time.Now())
	p, err := NewFactory(g, false)(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := p.(admission.ValidationInterface)
	create := request{op: admission.Create, resource: configmaps, obj: configMap("a", "x")}
	if err := v.Validate(context.Background(), create.attributes(), nil); err != nil {
		t.Fatalf("the create under the cap was refused: %v", err)
	}
	err = v.Validate(context.Background(), create.attributes(), nil)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "holds 2 configmaps, its limit") {
		t.Fatalf("the create over the cap = %v, want Forbidden naming the count", err)
	}
	update := request{op: admission.Update, resource: configmaps, obj: configMap("a", "xx"), old: configMap("a", "x")}
	if err := v.Validate(context.Background(), update.attributes(), nil); err != nil {
		t.Errorf("an update at the cap was refused: %v", err)
	}
}

func TestFrozen(t *testing.T) {
	t.Parallel()
	// A writable, nearly empty datastore: the freeze alone refuses.
	g := datastore.NewGuard(datastore.Limits{QuotaBytes: 64 * mib})
	g.Observe(datastore.Usage{InUse: mib}, datastore.Pending{}, time.Now())
	secrets := corev1.SchemeGroupVersion.WithResource("secrets")
	tests := []struct {
		name    string
		req     request
		refused bool
	}{
		{name: "an admin's create", req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x")}, refused: true},
		{name: "an admin's update that shrinks",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", "x"), old: configMap("a", "xx")}, refused: true},
		{name: "an admin's delete", req: request{op: admission.Delete, resource: secrets}, refused: true},
		{name: "a status write", req: request{op: admission.Update, resource: configmaps, subresource: "status", obj: configMap("a", "x"), old: configMap("a", "x")}, refused: true},
		{name: "a controller's ServiceAccount write",
			req: request{op: admission.Update, resource: configmaps, obj: configMap("a", "x"), old: configMap("a", "x"), user: "system:serviceaccount:kube-system:replicaset-controller"}, refused: true},
		{name: "a user claiming knestd's prefix", req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x"), user: "system:knest:other"}, refused: true},
		{name: "knestd's own status write", req: request{op: admission.Update, resource: configmaps, subresource: "status", obj: configMap("a", "x"), old: configMap("a", "x"), user: pki.InternalUser}},
		{name: "a namespace's default ServiceAccount (knestd's start-up probe)",
			req: request{op: admission.Create, resource: corev1.SchemeGroupVersion.WithResource("serviceaccounts"), obj: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
				user: "system:serviceaccount:kube-system:service-account-controller"}},
		{name: "another ServiceAccount", req: request{op: admission.Create, resource: corev1.SchemeGroupVersion.WithResource("serviceaccounts"), obj: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}}, refused: true},
		{name: "the controller-manager's own create", req: request{op: admission.Create, resource: configmaps, obj: configMap("a", "x"), user: "system:kube-controller-manager"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewFactory(g, true)(nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.(admission.ValidationInterface).Validate(context.Background(), tc.req.attributes(), nil)
			if !tc.refused {
				if err != nil {
					t.Fatalf("Validate = %v, want admitted", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the tenant is frozen by its operator") {
				t.Fatalf("Validate = %v, want Forbidden naming the freeze", err)
			}
		})
	}
	// Unfrozen, the same delete is admitted.
	p, err := NewFactory(g, false)(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.(admission.ValidationInterface).Validate(context.Background(), request{op: admission.Delete, resource: secrets}.attributes(), nil); err != nil {
		t.Errorf("a delete when not frozen: %v", err)
	}
}
