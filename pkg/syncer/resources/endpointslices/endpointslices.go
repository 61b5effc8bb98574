// Package endpointslices translates the EndpointSlices of selector-less
// tenant Services to host EndpointSlices.
//
// Only slices a tenant manages itself flow (directly, or mirrored by the
// tenant's endpointslice-mirroring controller from Endpoints): slices of
// Services with a selector are computed on the host from the host pods.
// Forward (tenant -> host): address type, ports, and per endpoint the
// addresses, conditions and hostname; target references and node names
// name tenant objects and are dropped. The slice is tied to the host copy of
// its Service and marked as managed by knest, so the host's endpoint
// controllers leave it alone. Nothing flows back.
//
// A slice reaches the host only if every address is an IP of one of the
// tenant's own host pods (Refuse): otherwise a tenant could point its
// Service, and anyone trusting its name, at any address on the host network.
package endpointslices

import (
	"fmt"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of host
// copies.
const ManagedBy = "syncer.knest.io"

// TenantManaged reports whether a tenant slice is the tenant's own (not one
// the tenant's endpointslice controller computed from a selector).
func TenantManaged(s *discoveryv1.EndpointSlice) bool {
	return s.Labels[discoveryv1.LabelServiceName] != "" && s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io"
}

// Refuse returns why a slice must not reach the host, or "" if it may:
// every address must be one of tenantPodIPs.
func Refuse(s *discoveryv1.EndpointSlice, tenantPodIPs map[string]bool) string {
	for _, ep := range s.Endpoints {
		for _, addr := range ep.Addresses {
			if !tenantPodIPs[addr] {
				return fmt.Sprintf("address %s is not an IP of one of this tenant's pods; EndpointSlices may only point at the tenant's own pods", addr)
			}
		}
	}
	return ""
}

// Forward returns the desired host EndpointSlice for tenant slice s. host is
// the current host copy or nil. Neither input is modified.
func Forward(s, host *discoveryv1.EndpointSlice, meta translate.Meta) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	labels := out.GetLabels()
	labels[discoveryv1.LabelServiceName] = translate.HostName(meta.Tenant, meta.TenantNamespace, s.Labels[discoveryv1.LabelServiceName], translate.MaxLabelLength)
	labels[discoveryv1.LabelManagedBy] = ManagedBy
	out.AddressType = s.AddressType
	out.Ports = nil
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, *p.DeepCopy())
	}
	out.Endpoints = nil
	for _, ep := range s.Endpoints {
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{
			Addresses:  slices.Clone(ep.Addresses),
			Conditions: *ep.Conditions.DeepCopy(),
			Hostname:   ep.Hostname,
		})
	}
	return out
}
