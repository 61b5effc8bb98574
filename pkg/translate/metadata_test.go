package translate

import (
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestTenantKeyIsKnestsOwnValidAndInjective(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want string
	}{
		{key: "app", want: "t.knest.io/app"},
		{key: "app.kubernetes.io/name", want: "tp.knest.io/app.kubernetes.io_name"},
		{key: "knest.io/tenant", want: "tp.knest.io/knest.io_tenant"},
		{key: "sidecar.istio.io/inject", want: "tp.knest.io/sidecar.istio.io_inject"},
		{key: "a_b", want: "t.knest.io/a_b"},
		{key: "a/b", want: "tp.knest.io/a_b"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			got := TenantKey(tc.key)
			if got != tc.want {
				t.Errorf("TenantKey(%q) = %q, want %q", tc.key, got, tc.want)
			}
			if msgs := validation.IsQualifiedName(got); len(msgs) > 0 {
				t.Errorf("host key %q is not a valid label key: %v", got, msgs)
			}
		})
	}
	long := "example.com/" + strings.Repeat("k", 60)
	got := TenantKey(long)
	if msgs := validation.IsQualifiedName(got); len(msgs) > 0 {
		t.Errorf("a long key maps to an invalid key %q: %v", got, msgs)
	}
	if got == TenantKey(long+"2") {
		t.Errorf("two long keys map to the same key")
	}
	if ann := TenantAnnotationKey("example.com/" + strings.Repeat("a", 70)); len(validation.IsQualifiedName(ann)) > 0 {
		t.Errorf("a long annotation key maps to an invalid key %q", ann)
	}
}

func TestHostMetaCannotBeSpoofedByTenantLabels(t *testing.T) {
	t.Parallel()
	obj := Object{Kind: "Pod", Namespace: "web", Name: "api", UID: "uid-1"}
	tenantLabels := map[string]string{"app": "api", LabelTenant: "other", LabelNamespace: "kube-system", "sidecar.istio.io/inject": "true"}
	tenantAnnotations := map[string]string{AnnotationUID: "forged", "kubectl.kubernetes.io/default-container": "web", "cni.projectcalico.org/ipAddrs": "[\"10.0.0.1\"]"}
	before := maps.Clone(tenantLabels)
	// An allowlist that (wrongly) names knest's keys still cannot let the
	// tenant replace them.
	pass := Passthrough{
		Label:      func(k string) bool { return k == LabelTenant },
		Annotation: func(k string) bool { return k == "kubectl.kubernetes.io/default-container" || k == AnnotationUID },
	}
	labels, annotations := HostMeta("acme", obj, tenantLabels, tenantAnnotations, pass)
	want := map[string]string{
		LabelTenant: "acme", LabelNamespace: "web",
		"t.knest.io/app": "api", "tp.knest.io/knest.io_tenant": "other", "tp.knest.io/knest.io_namespace": "kube-system",
		"tp.knest.io/sidecar.istio.io_inject": "true",
	}
	if diff := cmp.Diff(want, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{
		AnnotationName: "api", AnnotationNamespace: "web", AnnotationKind: "Pod", AnnotationUID: "uid-1",
		"kubectl.kubernetes.io/default-container": "web",
	}
	if diff := cmp.Diff(wantAnn, annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, tenantLabels); diff != "" {
		t.Errorf("HostMeta mutated its input (-before +after):\n%s", diff)
	}
}

func TestOwns(t *testing.T) {
	t.Parallel()
	obj := Object{Kind: "ConfigMap", Namespace: "web", Name: "cfg", UID: "uid-1"}
	labels, annotations := HostMeta("acme", obj, nil, nil, Passthrough{})
	host := func(tweak func(*metav1.ObjectMeta)) *corev1.ConfigMap {
		m := metav1.ObjectMeta{Name: HostName("acme", "web", "cfg", MaxSubdomainLength), Labels: maps.Clone(labels), Annotations: maps.Clone(annotations)}
		tweak(&m)
		return &corev1.ConfigMap{ObjectMeta: m}
	}
	tests := []struct {
		name string
		host *corev1.ConfigMap
		obj  Object
		want Ownership
	}{
		{name: "our copy", host: host(func(*metav1.ObjectMeta) {}), obj: obj, want: Ours},
		{name: "a copy of an earlier object of the same name is stale", host: host(func(m *metav1.ObjectMeta) { m.Annotations[AnnotationUID] = "uid-0" }), obj: obj, want: Stale},
		{name: "a copy made before the tenant object had a UID is ours, to adopt", host: host(func(m *metav1.ObjectMeta) { m.Annotations[AnnotationUID] = "" }), obj: obj, want: Ours},
		{name: "with the tenant object gone any UID is ours, to delete", host: host(func(m *metav1.ObjectMeta) {}), obj: Object{Kind: "ConfigMap", Namespace: "web", Name: "cfg"}, want: Ours},
		{name: "no marker label: not ours", host: host(func(m *metav1.ObjectMeta) { delete(m.Labels, LabelTenant) }), obj: obj, want: NotOurs},
		{name: "another tenant's marker: not ours", host: host(func(m *metav1.ObjectMeta) { m.Labels[LabelTenant] = "other" }), obj: obj, want: NotOurs},
		{name: "another kind: not ours", host: host(func(m *metav1.ObjectMeta) { m.Annotations[AnnotationKind] = "Secret" }), obj: obj, want: NotOurs},
		{name: "another namespace: not ours", host: host(func(m *metav1.ObjectMeta) { m.Annotations[AnnotationNamespace] = "db" }), obj: obj, want: NotOurs},
		{name: "another name: not ours", host: host(func(m *metav1.ObjectMeta) { m.Annotations[AnnotationName] = "cfg2" }), obj: obj, want: NotOurs},
		{name: "no annotations at all: not ours", host: host(func(m *metav1.ObjectMeta) { m.Annotations = nil }), obj: obj, want: NotOurs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Owns("acme", tc.obj, tc.host); got != tc.want {
				t.Errorf("Owns = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSelectorOnlyMatchesTheSameTenantNamespace(t *testing.T) {
	t.Parallel()
	in := map[string]string{"app": "web", LabelNamespace: "kube-system"}
	before := maps.Clone(in)
	got := Selector("acme", "shop", in)
	want := map[string]string{"t.knest.io/app": "web", "tp.knest.io/knest.io_namespace": "kube-system", LabelTenant: "acme", LabelNamespace: "shop"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("Selector mutated its input:\n%s", diff)
	}
	if Selector("acme", "shop", nil) != nil {
		t.Errorf("an empty selector must stay empty (selects nothing)")
	}
	// A pod of another tenant namespace carrying the same app label does not match.
	otherLabels, _ := HostMeta("acme", Object{Kind: "Pod", Namespace: "other", Name: "p"}, map[string]string{"app": "web"}, nil, Passthrough{})
	if matches(got, otherLabels) {
		t.Errorf("the selector of shop/web matches a pod of namespace other")
	}
	ownLabels, _ := HostMeta("acme", Object{Kind: "Pod", Namespace: "shop", Name: "p"}, map[string]string{"app": "web", LabelNamespace: "kube-system"}, nil, Passthrough{})
	if !matches(got, ownLabels) {
		t.Errorf("the selector does not match the namespace's own pod")
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
