package pods

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// EphemeralContainers returns the host pod with the tenant pod's ephemeral
// containers added (translated like any container), or nil when the host
// pod has them all. Ephemeral containers are only ever added, through the
// ephemeralcontainers subresource. Neither input is modified.
func EphemeralContainers(t, h *corev1.Pod, meta translate.Meta) *corev1.Pod {
	names := func(name string) string {
		return translate.HostName(meta.Tenant, meta.TenantNamespace, name, translate.MaxSubdomainLength)
	}
	out := h.DeepCopy()
	added := false
	for _, ec := range t.Spec.EphemeralContainers {
		if slices.ContainsFunc(out.Spec.EphemeralContainers, func(have corev1.EphemeralContainer) bool { return have.Name == ec.Name }) {
			continue
		}
		c := forwardContainer(corev1.Container(ec.EphemeralContainerCommon), t, Env{}, names)
		// Ephemeral containers get no ports, probes or lifecycle.
		c.Ports, c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil, nil, nil
		out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon(c),
			TargetContainerName:      ec.TargetContainerName,
		})
		added = true
	}
	if !added {
		return nil
	}
	return out
}

// Resize returns the host pod with the tenant pod's container resources
// (an in-place resize, through the resize subresource), or nil when they
// already match. Neither input is modified.
func Resize(t, h *corev1.Pod) *corev1.Pod {
	out := h.DeepCopy()
	changed := false
	for i := range out.Spec.Containers {
		hc := &out.Spec.Containers[i]
		j := slices.IndexFunc(t.Spec.Containers, func(c corev1.Container) bool { return c.Name == hc.Name })
		if j < 0 {
			continue
		}
		want := t.Spec.Containers[j].Resources
		// Only what the tenant set: the host may have defaulted the rest
		// (LimitRange), and a resize cannot take those away.
		changed = merge(&hc.Resources.Requests, want.Requests) || changed
		changed = merge(&hc.Resources.Limits, want.Limits) || changed
	}
	if !changed {
		return nil
	}
	return out
}

// merge sets into *dst every quantity of want that differs, and reports
// whether anything changed.
func merge(dst *corev1.ResourceList, want corev1.ResourceList) bool {
	changed := false
	for name, q := range want {
		if have, ok := (*dst)[name]; ok && have.Cmp(q) == 0 {
			continue
		}
		if *dst == nil {
			*dst = corev1.ResourceList{}
		}
		(*dst)[name] = q.DeepCopy()
		changed = true
	}
	return changed
}
