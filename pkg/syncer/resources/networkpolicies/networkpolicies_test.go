package networkpolicies

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "web-x-shop-x-acme", Namespace: "knest-acme",
	Labels: map[string]string{translate.LabelTenant: "acme"}, Tenant: "acme", TenantNamespace: "shop",
}

var egress = []string{"203.0.113.0/24"}

func policy(tweak func(*networkingv1.NetworkPolicySpec)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	tweak(&np.Spec)
	return np
}

func sel(labels map[string]string, exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: labels, MatchExpressions: exprs}
}

func TestForward(t *testing.T) {
	t.Parallel()
	// Tenant label keys are written as the tenant wrote them and mapped
	// to their host keys here; knest's own keys (and the namespace labels
	// host pods carry) are written as they are on the host.
	hostKey := func(k string) string {
		if strings.HasPrefix(k, "ns.knest.io/") || strings.HasPrefix(k, "tp.knest.io/") {
			return k
		}
		return translate.TenantKey(k)
	}
	inShop := func(extra map[string]string) map[string]string {
		m := map[string]string{translate.LabelTenant: "acme", translate.LabelNamespace: "shop"}
		for k, v := range extra {
			m[hostKey(k)] = v
		}
		return m
	}
	tenant := func(extra map[string]string) map[string]string {
		m := map[string]string{translate.LabelTenant: "acme"}
		for k, v := range extra {
			m[hostKey(k)] = v
		}
		return m
	}
	port := []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(80))}}
	tests := []struct {
		name string
		in   *networkingv1.NetworkPolicy
		want networkingv1.NetworkPolicySpec
	}{
		{
			name: "pod selectors are confined to the tenant namespace, reserved keys rewritten",
			in: policy(func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: port, From: []networkingv1.NetworkPolicyPeer{{
					PodSelector: sel(map[string]string{"role": "fe", "knest.io/tenant": "other"}),
				}}}}
			}),
			want: networkingv1.NetworkPolicySpec{
				PodSelector: *sel(inShop(map[string]string{"app": "web"})),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: port, From: []networkingv1.NetworkPolicyPeer{{
					PodSelector: sel(inShop(map[string]string{"role": "fe", translate.TenantKey("knest.io/tenant"): "other"})),
				}}}},
			},
		},
		{
			name: "a namespace selector becomes a pod selector over the namespace labels host pods carry",
			in: policy(func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: sel(map[string]string{"team": "a"}), PodSelector: sel(map[string]string{"role": "db"})},
					{NamespaceSelector: sel(nil, metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"ops"}})},
					{NamespaceSelector: sel(nil)},
				}}}
			}),
			want: networkingv1.NetworkPolicySpec{
				PodSelector: *sel(inShop(map[string]string{"app": "web"})),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: sel(tenant(map[string]string{"role": "db", "ns.knest.io/team": "a"}))},
					{PodSelector: sel(tenant(nil), metav1.LabelSelectorRequirement{Key: "ns.knest.io/kubernetes.io_metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"ops"}})},
					{PodSelector: sel(tenant(nil))},
				}}},
			},
		},
		{
			name: "everyone means the tenant's pods (and the egress allowlist), never the host",
			in: policy(func(s *networkingv1.NetworkPolicySpec) {
				s.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
				s.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
			}),
			want: networkingv1.NetworkPolicySpec{
				PodSelector: *sel(inShop(map[string]string{"app": "web"})),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel(tenant(nil))}}}},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
					{PodSelector: sel(tenant(nil))},
					{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24"}},
				}}},
			},
		},
		{
			name: "ip blocks outside the allowlist are dropped, and a rule left without peers with them",
			in: policy(func(s *networkingv1.NetworkPolicySpec) {
				s.Egress = []networkingv1.NetworkPolicyEgressRule{
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.128/25"}}, {IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}}},
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}},
				}
			}),
			want: networkingv1.NetworkPolicySpec{
				PodSelector: *sel(inShop(map[string]string{"app": "web"})),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.128/25"}}}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := forwardtest.Forward(t, tt.in, nil, func(np, h *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
				return Forward(np, h, meta, egress)
			})
			if diff := cmp.Diff(tt.want, got.Spec); diff != "" {
				t.Errorf("host spec (-want +got):\n%s", diff)
			}
		})
	}
}
