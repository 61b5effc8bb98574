package pods

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// UnschedulableError says why no node of the tenant can take a pod: it
// stays Pending, as on any cluster without a matching node.
type UnschedulableError struct {
	Reason string
}

func (e *UnschedulableError) Error() string { return e.Reason }

// place sets a new host pod's scheduling fields from tenant pod t: its node
// selection as the tenant's virtual Nodes see it (policy.HostNodeSelection:
// allowlisted node label keys as they are, node names as their host
// nodes', other keys decided and left out; an *UnschedulableError, once
// every other field is placed, if no node matches), tolerations within the policy's allowlist (tenant
// admission refused the rest, and CheckHostPod checks again), pod affinity
// and topology spread confined to the tenant's own pods, and the host
// priority class the policy maps the tenant's to. The forced fields come
// after, from policy.ForceHostPod.
func place(t, h *corev1.Pod, meta translate.Meta, env Env, pol *policy.Policy) error {
	s := &h.Spec
	var virtualNodes []policy.VirtualNode
	if env.VirtualNodes != nil {
		virtualNodes = env.VirtualNodes()
	}
	sel := policy.HostNodeSelection(&t.Spec, pol, env.HostNodes, virtualNodes)
	s.NodeSelector = sel.NodeSelector
	s.Tolerations = nil
	for _, tol := range t.Spec.Tolerations {
		s.Tolerations = append(s.Tolerations, *tol.DeepCopy())
	}
	s.Affinity = nil
	if sel.Affinity != nil {
		s.Affinity = &corev1.Affinity{NodeAffinity: sel.Affinity}
	}
	if a := t.Spec.Affinity; a != nil {
		s.Affinity = &corev1.Affinity{
			NodeAffinity:    sel.Affinity,
			PodAffinity:     podAffinity(a.PodAffinity, meta),
			PodAntiAffinity: podAntiAffinity(a.PodAntiAffinity, meta),
		}
	}
	s.TopologySpreadConstraints = nil
	for _, c := range t.Spec.TopologySpreadConstraints {
		c = *c.DeepCopy()
		// Spreading counts the pods of the pod's own namespace.
		c.LabelSelector = translate.ConfineSelector(c.LabelSelector, meta.Tenant, ptr.To(meta.TenantNamespace))
		c.MatchLabelKeys = tenantKeys(c.MatchLabelKeys)
		s.TopologySpreadConstraints = append(s.TopologySpreadConstraints, c)
	}
	s.RuntimeClassName = t.Spec.RuntimeClassName
	s.PriorityClassName = ""
	if name := t.Spec.PriorityClassName; name != "" {
		hostClass, ok := pol.HostPriorityClass(name)
		if !ok {
			return fmt.Errorf("priority class %q has no host class in %s", name, pol.Describe())
		}
		s.PriorityClassName = hostClass
	}
	if sel.Unschedulable != "" {
		return &UnschedulableError{Reason: sel.Unschedulable}
	}
	return nil
}

func podAffinity(in *corev1.PodAffinity, meta translate.Meta) *corev1.PodAffinity {
	if in == nil {
		return nil
	}
	return &corev1.PodAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution:  affinityTerms(in.RequiredDuringSchedulingIgnoredDuringExecution, meta),
		PreferredDuringSchedulingIgnoredDuringExecution: weightedTerms(in.PreferredDuringSchedulingIgnoredDuringExecution, meta),
	}
}

func podAntiAffinity(in *corev1.PodAntiAffinity, meta translate.Meta) *corev1.PodAntiAffinity {
	if in == nil {
		return nil
	}
	return &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution:  affinityTerms(in.RequiredDuringSchedulingIgnoredDuringExecution, meta),
		PreferredDuringSchedulingIgnoredDuringExecution: weightedTerms(in.PreferredDuringSchedulingIgnoredDuringExecution, meta),
	}
}

func affinityTerms(in []corev1.PodAffinityTerm, meta translate.Meta) []corev1.PodAffinityTerm {
	var out []corev1.PodAffinityTerm
	for _, t := range in {
		out = append(out, affinityTerm(t, meta))
	}
	return out
}

func weightedTerms(in []corev1.WeightedPodAffinityTerm, meta translate.Meta) []corev1.WeightedPodAffinityTerm {
	var out []corev1.WeightedPodAffinityTerm
	for _, t := range in {
		out = append(out, corev1.WeightedPodAffinityTerm{Weight: t.Weight, PodAffinityTerm: affinityTerm(t.PodAffinityTerm, meta)})
	}
	return out
}

// affinityTerm confines a pod affinity term to the tenant's pods. All of a
// tenant's host pods share one host namespace, so the term's namespaces
// become a selector over the tenant-namespace label host pods carry, and
// its namespace selector one over the namespace labels they carry
// (translate.NamespaceLabels). A term with neither means the pod's own
// namespace; an empty namespace selector means every namespace of the
// tenant. Terms with both a list and a non-empty selector are refused at
// admission (policy.CheckPod).
func affinityTerm(in corev1.PodAffinityTerm, meta translate.Meta) corev1.PodAffinityTerm {
	out := corev1.PodAffinityTerm{
		TopologyKey:       in.TopologyKey,
		MatchLabelKeys:    tenantKeys(in.MatchLabelKeys),
		MismatchLabelKeys: tenantKeys(in.MismatchLabelKeys),
	}
	if in.LabelSelector == nil {
		// A term without a selector matches no pod; it stays so.
		return out
	}
	switch ns := in.NamespaceSelector; {
	case ns != nil && len(ns.MatchLabels) == 0 && len(ns.MatchExpressions) == 0:
		out.LabelSelector = translate.ConfineSelector(in.LabelSelector, meta.Tenant, nil)
	case ns != nil:
		out.LabelSelector = translate.ConfineSelector(in.LabelSelector, meta.Tenant, nil)
		for _, k := range slices.Sorted(maps.Keys(ns.MatchLabels)) {
			out.LabelSelector.MatchLabels[translate.NamespaceLabelKey(k)] = ns.MatchLabels[k]
		}
		for _, e := range ns.MatchExpressions {
			e = *e.DeepCopy()
			e.Key = translate.NamespaceLabelKey(e.Key)
			out.LabelSelector.MatchExpressions = append(out.LabelSelector.MatchExpressions, e)
		}
	case len(in.Namespaces) > 0:
		out.LabelSelector = translate.ConfineSelector(in.LabelSelector, meta.Tenant, nil)
		out.LabelSelector.MatchExpressions = append(out.LabelSelector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: translate.LabelNamespace, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(in.Namespaces),
		})
	default:
		out.LabelSelector = translate.ConfineSelector(in.LabelSelector, meta.Tenant, ptr.To(meta.TenantNamespace))
	}
	return out
}

func tenantKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, translate.TenantKey(k))
	}
	return out
}
