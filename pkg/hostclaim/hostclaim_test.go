package hostclaim

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

func TestName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ hostname, want string }{
		{"shop.demo.apps.example.com", "e.shop.demo.apps.example.com"},
		{"Shop.Demo.apps.example.com", "e.shop.demo.apps.example.com"},
		{"*.demo.apps.example.com", "w.demo.apps.example.com"},
		// A host literally named like the wildcard's claim stays apart.
		{"w.demo.apps.example.com", "e.w.demo.apps.example.com"},
		{"*.*.example.com", ""},
		{strings.Repeat("a", 252), ""},
	} {
		if got := Name(tc.hostname); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.hostname, got, tc.want)
		}
	}
}

func TestManifest(t *testing.T) {
	t.Parallel()
	objs, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	var policies int
	for _, o := range objs {
		if p, ok := o.(*admissionregistrationv1.ValidatingAdmissionPolicy); ok {
			policies++
			if ns := p.Spec.MatchConstraints.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; ns != Namespace {
				t.Errorf("the policy applies to namespace %q, want %s", ns, Namespace)
			}
		}
	}
	if len(objs) != 4 || policies != 1 {
		t.Errorf("manifest holds %d objects (%d policies), want the namespace, ClusterRole, policy and binding", len(objs), policies)
	}
}
