package endpointslices

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "db-1-x-shop-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme", discoveryv1.LabelServiceName: "db"},
	Annotations: map[string]string{translate.AnnotationName: "db-1"},
	Tenant:      "acme", TenantNamespace: "shop",
}

func slice(addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName: ptr.To("virtual-node-1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "db-0"},
		})
	}
	return s
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	own := map[string]bool{"10.244.0.5": true, "10.244.0.6": true}
	if got := Refuse(slice("10.244.0.5", "10.244.0.6"), own); got != "" {
		t.Errorf("own pod IPs refused: %s", got)
	}
	for _, addr := range []string{"10.244.0.9", "169.254.169.254", "10.96.0.1"} {
		if got := Refuse(slice("10.244.0.5", addr), own); !strings.Contains(got, "address "+addr+" is not an IP of one of this tenant's pods") {
			t.Errorf("address %s: Refuse = %q", addr, got)
		}
	}
}

func TestTenantManaged(t *testing.T) {
	t.Parallel()
	s := slice()
	if !TenantManaged(s) {
		t.Errorf("a hand-made slice is the tenant's")
	}
	s.Labels[discoveryv1.LabelManagedBy] = "endpointslicemirroring-controller.k8s.io"
	if !TenantManaged(s) {
		t.Errorf("a slice mirrored from the tenant's Endpoints is the tenant's")
	}
	s.Labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
	if TenantManaged(s) {
		t.Errorf("a slice computed from a selector is not synced")
	}
}

func TestForward(t *testing.T) {
	t.Parallel()
	in := slice("10.244.0.5")
	got := forwardtest.Forward(t, in, nil, func(s, host *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice { return Forward(s, host, meta) })
	if got.Labels[discoveryv1.LabelServiceName] != "db-x-shop-x-acme" || got.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		t.Errorf("labels = %v", got.Labels)
	}
	want := []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}
	if diff := cmp.Diff(want, got.Endpoints); diff != "" {
		t.Errorf("endpoints (tenant node names and pod references dropped) (-want +got):\n%s", diff)
	}
}
