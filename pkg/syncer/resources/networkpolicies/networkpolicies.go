// Package networkpolicies translates tenant NetworkPolicies to host
// NetworkPolicies in the tenant's one host namespace, confined to the tenant.
//
// Forward (tenant -> host): policy types, ports, and selectors rewritten:
//
//   - spec.podSelector and podSelector peers select host pods of the same
//     tenant and tenant namespace (the knest.io/tenant and knest.io/namespace
//     labels are added; reserved keys are rewritten as on the pods);
//   - namespaceSelector peers become pod selectors over the tenant-namespace
//     labels host pods carry (ns.knest.io/...), within the tenant; an empty
//     namespaceSelector means every namespace of the tenant, never the host's;
//   - ipBlock peers are kept only where they lie inside the policy's egress
//     allowlist (the host's networks and other tenants stay out of reach);
//   - a rule without peers (everyone) is limited to the tenant's pods and,
//     for egress, the allowlisted networks; a rule whose peers were all
//     dropped is dropped rather than left empty, which would allow everyone.
//
// Nothing flows back. Host NetworkPolicies only add to what the chart's
// policies allow (default deny; the tenant's pods among themselves; knestd):
// a tenant policy can open allowlisted networks, but it cannot isolate the
// tenant's own pods from each other while the chart allows that traffic.
package networkpolicies

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// Forward returns the host NetworkPolicy for tenant policy np. host is the
// current host copy or nil; egress is the policy's egress allowlist (CIDRs).
// Neither input is modified.
func Forward(np, host *networkingv1.NetworkPolicy, meta translate.Meta, egress []string) *networkingv1.NetworkPolicy {
	out := &networkingv1.NetworkPolicy{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	t := translator{tenant: meta.Tenant, namespace: meta.TenantNamespace, egress: parsePrefixes(egress)}
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: t.podSelector(&np.Spec.PodSelector, true),
		PolicyTypes: append([]networkingv1.PolicyType(nil), np.Spec.PolicyTypes...),
	}
	for _, r := range np.Spec.Ingress {
		peers, ok := t.peers(r.From, false)
		if !ok {
			continue
		}
		spec.Ingress = append(spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: clonePorts(r.Ports), From: peers})
	}
	for _, r := range np.Spec.Egress {
		peers, ok := t.peers(r.To, true)
		if !ok {
			continue
		}
		spec.Egress = append(spec.Egress, networkingv1.NetworkPolicyEgressRule{Ports: clonePorts(r.Ports), To: peers})
	}
	// An ingress or egress list that had rules and lost them all must stay
	// a list of no rules (deny), which a nil slice already is.
	out.Spec = spec
	return out
}

type translator struct {
	tenant, namespace string
	egress            []netip.Prefix
}

// podSelector confines a tenant pod selector to the tenant, and to the
// tenant namespace when sameNamespace.
func (t translator) podSelector(in *metav1.LabelSelector, sameNamespace bool) metav1.LabelSelector {
	if in == nil {
		// Everyone: the tenant's pods.
		in = &metav1.LabelSelector{}
	}
	var namespace *string
	if sameNamespace {
		namespace = &t.namespace
	}
	return *translate.ConfineSelector(in, t.tenant, namespace)
}

// peers translates a rule's peers. ok is false when the rule must be
// dropped: it named peers and none of them is allowed.
func (t translator) peers(in []networkingv1.NetworkPolicyPeer, egress bool) (out []networkingv1.NetworkPolicyPeer, ok bool) {
	if len(in) == 0 {
		// Everyone: the tenant's pods, and for egress the allowlist.
		all := t.podSelector(nil, false)
		out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &all})
		if egress {
			for _, p := range t.egress {
				out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: p.String()}})
			}
		}
		return out, true
	}
	for _, p := range in {
		switch {
		case p.IPBlock != nil:
			if b, allowed := t.ipBlock(p.IPBlock); allowed {
				out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: b})
			}
		case p.NamespaceSelector != nil:
			sel := t.podSelector(p.PodSelector, false)
			for k, v := range p.NamespaceSelector.MatchLabels {
				sel.MatchLabels[translate.NamespaceLabelKey(k)] = v
			}
			for _, e := range p.NamespaceSelector.MatchExpressions {
				e = *e.DeepCopy()
				e.Key = translate.NamespaceLabelKey(e.Key)
				sel.MatchExpressions = append(sel.MatchExpressions, e)
			}
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &sel})
		default:
			sel := t.podSelector(p.PodSelector, true)
			out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: &sel})
		}
	}
	return out, len(out) > 0
}

// ipBlock keeps a block that lies inside the egress allowlist.
func (t translator) ipBlock(b *networkingv1.IPBlock) (*networkingv1.IPBlock, bool) {
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, false
	}
	for _, allowed := range t.egress {
		if allowed.Bits() <= p.Bits() && allowed.Contains(p.Masked().Addr()) {
			return b.DeepCopy(), true
		}
	}
	return nil, false
}

func parsePrefixes(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func clonePorts(in []networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for _, p := range in {
		out = append(out, *p.DeepCopy())
	}
	return out
}
