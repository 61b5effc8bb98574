// Package services translates tenant Services to host Services.
//
// Forward (tenant -> host): ports (without node ports), the selector
// (confined to the tenant namespace's pods), session affinity,
// publishNotReadyAddresses, and the ClusterIP, which the host assigned in the
// first place (the hostservices admission plugin creates the host copy when
// the tenant creates the Service). The type is always ClusterIP. Nothing
// flows back: the tenant Service's IP is fixed at creation.
package services

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// Forward returns the desired host Service for tenant Service svc. host is
// the current host copy or nil. Neither input is modified.
func Forward(svc, host *corev1.Service, meta translate.Meta) *corev1.Service {
	out := &corev1.Service{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	out.Spec.Type = corev1.ServiceTypeClusterIP
	out.Spec.ClusterIP = svc.Spec.ClusterIP
	out.Spec.ClusterIPs = append([]string(nil), svc.Spec.ClusterIPs...)
	out.Spec.Selector = translate.Selector(meta.Tenant, meta.TenantNamespace, svc.Spec.Selector)
	out.Spec.Ports = nil
	for _, p := range svc.Spec.Ports {
		p.NodePort = 0
		out.Spec.Ports = append(out.Spec.Ports, p)
	}
	out.Spec.SessionAffinity = svc.Spec.SessionAffinity
	out.Spec.SessionAffinityConfig = svc.Spec.SessionAffinityConfig.DeepCopy()
	out.Spec.PublishNotReadyAddresses = svc.Spec.PublishNotReadyAddresses
	out.Spec.ExternalIPs = nil
	return out
}

// Recreate reports whether host cannot become desired in place: a
// Service's ClusterIP is immutable.
func Recreate(desired, host *corev1.Service) bool {
	return desired.Spec.ClusterIP != host.Spec.ClusterIP
}
