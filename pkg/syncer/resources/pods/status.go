package pods

import (
	corev1 "k8s.io/api/core/v1"
)

// Backward returns the tenant pod with the status its host pod reports: the
// host owns phase, conditions, message and reason, pod IPs, start time and
// the container statuses. The node address is the virtual node's (nodeIP),
// never the host node's. The QoS class is the tenant API server's. tenant
// is not modified.
func Backward(host, tenant *corev1.Pod, nodeIP string) *corev1.Pod {
	out := tenant.DeepCopy()
	hs := host.Status.DeepCopy()
	s := &out.Status
	s.Phase = hs.Phase
	s.Conditions = hs.Conditions
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

// Terminal reports whether a pod's phase is final.
func Terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
