package policy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EndpointAddress is one address of a tenant EndpointSlice or Endpoints
// object, with its field path.
type EndpointAddress struct {
	Path    *field.Path
	Address string
}

// PodAddresses returns the addresses a tenant's EndpointSlices and Endpoints
// may use for pod p: its pod IPs while the pod has not finished. A finished
// pod's IP goes back to the host's pool, where it may become another tenant's
// pod's, so it is no longer the tenant's to point at.
func PodAddresses(p *corev1.Pod) []string {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		out = append(out, p.Status.PodIP)
	}
	return out
}

// CheckEndpointAddresses refuses every address that is not one of the
// tenant's own pods' (owns decides, from PodAddresses): the host would send
// the Service's traffic there, whether it is another tenant's pod, a host
// node or anything else the host network reaches. An error from owns is
// reported as an internal error of that address.
func CheckEndpointAddresses(addrs []EndpointAddress, owns func(string) (bool, error)) field.ErrorList {
	var errs field.ErrorList
	for _, a := range addrs {
		ok, err := owns(a.Address)
		switch {
		case err != nil:
			errs = append(errs, field.InternalError(a.Path, err))
		case !ok:
			errs = append(errs, field.Invalid(a.Path, a.Address,
				"not an IP of a running pod of this cluster; endpoints may only point at the cluster's own pods (use a Service selector, or the IP of a running pod)"))
		}
	}
	return errs
}
