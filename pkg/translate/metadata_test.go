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

func TestReservedAndRewriteKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key      string
		reserved bool
		want     string
	}{
		{key: "app", want: "app"},
		{key: "app.kubernetes.io/name", want: "app.kubernetes.io/name"},
		{key: "knest.io/tenant", reserved: true, want: "tenant.knest.io/knest.io_tenant"},
		{key: "knest.io/namespace", reserved: true, want: "tenant.knest.io/knest.io_namespace"},
		{key: "sub.knest.io/x", reserved: true, want: "tenant.knest.io/sub.knest.io_x"},
		{key: "tenant.knest.io/knest.io_tenant", reserved: true, want: "tenant.knest.io/tenant.knest.io_knest.io_tenant"},
		{key: "pod-security.kubernetes.io/enforce", reserved: true, want: "tenant.knest.io/pod-security.kubernetes.io_enforce"},
		{key: "kubernetes.io/metadata.name", reserved: true, want: "tenant.knest.io/kubernetes.io_metadata.name"},
		{key: "notknest.io/x", want: "notknest.io/x"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			if got := Reserved(tc.key); got != tc.reserved {
				t.Errorf("Reserved(%q) = %v, want %v", tc.key, got, tc.reserved)
			}
			got := RewriteKey(tc.key)
			if got != tc.want {
				t.Errorf("RewriteKey(%q) = %q, want %q", tc.key, got, tc.want)
			}
			if msgs := validation.IsQualifiedName(got); len(msgs) > 0 {
				t.Errorf("rewritten key %q is not a valid label key: %v", got, msgs)
			}
			if tc.reserved && !strings.HasPrefix(got, RewrittenPrefix) {
				t.Errorf("reserved key %q is not rewritten under %s: %q", tc.key, RewrittenPrefix, got)
			}
		})
	}
	long := "knest.io/" + strings.Repeat("k", 60)
	got := RewriteKey(long)
	if msgs := validation.IsQualifiedName(got); len(msgs) > 0 {
		t.Errorf("a long reserved key rewrites to an invalid key %q: %v", got, msgs)
	}
	if got == RewriteKey(long+"2") {
		t.Errorf("two long reserved keys rewrite to the same key")
	}
}

func TestHostMetaCannotBeSpoofedByTenantLabels(t *testing.T) {
	t.Parallel()
	obj := Object{Kind: "Pod", Namespace: "web", Name: "api", UID: "uid-1"}
	tenantLabels := map[string]string{"app": "api", LabelTenant: "other", LabelNamespace: "kube-system"}
	before := maps.Clone(tenantLabels)
	labels, annotations := HostMeta("acme", obj, tenantLabels)
	want := map[string]string{
		"app": "api", LabelTenant: "acme", LabelNamespace: "web",
		"tenant.knest.io/knest.io_tenant": "other", "tenant.knest.io/knest.io_namespace": "kube-system",
	}
	if diff := cmp.Diff(want, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{AnnotationName: "api", AnnotationNamespace: "web", AnnotationKind: "Pod", AnnotationUID: "uid-1"}
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
	labels, annotations := HostMeta("acme", obj, nil)
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
	want := map[string]string{"app": "web", "tenant.knest.io/knest.io_namespace": "kube-system", LabelTenant: "acme", LabelNamespace: "shop"}
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
	otherLabels, _ := HostMeta("acme", Object{Kind: "Pod", Namespace: "other", Name: "p"}, map[string]string{"app": "web"})
	if matches(got, otherLabels) {
		t.Errorf("the selector of shop/web matches a pod of namespace other")
	}
	ownLabels, _ := HostMeta("acme", Object{Kind: "Pod", Namespace: "shop", Name: "p"}, map[string]string{"app": "web", LabelNamespace: "kube-system"})
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
