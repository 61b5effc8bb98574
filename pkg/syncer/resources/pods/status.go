package pods

import (
	corev1 "k8s.io/api/core/v1"
)

// Backward returns the tenant pod with the status its host pod reports: the
// host owns phase, conditions, message and reason, pod IPs, start time and
// the container statuses. The node address is the virtual node's (nodeIP),
// never the host node's. The QoS class is the tenant API server's.
// Readiness gates are the tenant's: their conditions, which tenant
// controllers set, stay, and the pod is Ready only when the host says so
// and every gate is True, as a kubelet decides. tenant is not modified.
func Backward(host, tenant *corev1.Pod, nodeIP string) *corev1.Pod {
	out := tenant.DeepCopy()
	hs := host.Status.DeepCopy()
	s := &out.Status
	s.Phase = hs.Phase
	s.Conditions = withTenantScheduled(withReadinessGates(hs.Conditions, tenant), tenant)
	s.Message = hs.Message
	s.Reason = hs.Reason
	s.PodIP = hs.PodIP
	s.PodIPs = hs.PodIPs
	s.StartTime = hs.StartTime
	s.InitContainerStatuses = hs.InitContainerStatuses
	s.ContainerStatuses = hs.ContainerStatuses
	s.EphemeralContainerStatuses = hs.EphemeralContainerStatuses
	s.NominatedNodeName = ""
	s.HostIP, s.HostIPs = "", nil
	if hs.HostIP != "" && nodeIP != "" {
		s.HostIP = nodeIP
		s.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	}
	return out
}

// withTenantScheduled keeps the tenant pod's own PodScheduled condition in
// place of the host's when both say the same (status, reason, message):
// the tenant's binding sets it when the syncer binds the pod, and the
// host's differs only in its timestamps, which belong to the host's
// scheduling. Copying them cost every pod a status write between the
// binding and its start that told the tenant nothing new.
func withTenantScheduled(conds []corev1.PodCondition, tenant *corev1.Pod) []corev1.PodCondition {
	var own *corev1.PodCondition
	for i := range tenant.Status.Conditions {
		if tenant.Status.Conditions[i].Type == corev1.PodScheduled {
			own = &tenant.Status.Conditions[i]
		}
	}
	if own == nil {
		return conds
	}
	for i, c := range conds {
		if c.Type == corev1.PodScheduled && c.Status == own.Status && c.Reason == own.Reason && c.Message == own.Message {
			conds[i] = *own.DeepCopy()
		}
	}
	return conds
}

// Terminal reports whether a pod's phase is final.
func Terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// withReadinessGates returns the host's conditions with the tenant pod's
// readiness-gate conditions kept, and Ready (and ContainersReady untouched)
// false unless every gate is True.
func withReadinessGates(host []corev1.PodCondition, tenant *corev1.Pod) []corev1.PodCondition {
	if len(tenant.Spec.ReadinessGates) == 0 {
		return host
	}
	out := host
	allTrue := true
	for _, g := range tenant.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range tenant.Status.Conditions {
			if tenant.Status.Conditions[i].Type == g.ConditionType {
				found = &tenant.Status.Conditions[i]
			}
		}
		if found == nil || found.Status != corev1.ConditionTrue {
			allTrue = false
		}
		if found != nil {
			out = append(out, *found.DeepCopy())
		}
	}
	if allTrue {
		return out
	}
	for i := range out {
		if out[i].Type == corev1.PodReady && out[i].Status == corev1.ConditionTrue {
			out[i].Status = corev1.ConditionFalse
			out[i].Reason = "ReadinessGatesNotReady"
			out[i].Message = "the pod's readiness gates are not all True"
		}
	}
	return out
}
