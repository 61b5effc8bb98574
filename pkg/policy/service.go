package policy

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CheckService refuses what a tenant Service may not ask of the host under
// policy p: externalIPs (the host's nodes would capture traffic to
// addresses the tenant does not own) and the types that reach beyond the
// cluster (NodePort, LoadBalancer) or name arbitrary hosts (ExternalName)
// unless the policy allows them. ClusterIP, headless included, is always
// allowed. Errors name fields under "spec".
func CheckService(spec *corev1.ServiceSpec, p *Policy) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec")
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, field.Invalid(path.Child("externalIPs").Index(i), ip, fmt.Sprintf(
			"external IPs are not allowed in the %s profile: every host node would capture traffic to them; remove externalIPs", p.profile())))
	}
	switch t := spec.Type; {
	case t == "" || t == corev1.ServiceTypeClusterIP:
	case slices.Contains(p.ServiceTypes, t):
	default:
		allowed := []string{string(corev1.ServiceTypeClusterIP)}
		for _, a := range p.ServiceTypes {
			if a != corev1.ServiceTypeClusterIP {
				allowed = append(allowed, string(a))
			}
		}
		errs = append(errs, field.Invalid(path.Child("type"), string(t), fmt.Sprintf(
			"Service type is not allowed in the %s profile; use one of %s (clusterIP: None for a headless Service)",
			p.profile(), quoteList(allowed))))
	}
	if max := p.HostLimits.ServicePorts; max > 0 && len(spec.Ports) > max {
		errs = append(errs, field.TooMany(path.Child("ports"), len(spec.Ports), max))
	}
	return errs
}
