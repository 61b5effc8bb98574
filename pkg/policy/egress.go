package policy

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// What the tenant API server itself may reach.
//
// knestd's API server runs inside the host network, and a tenant decides
// where some of its connections go: the Nodes and pod addresses it proxies
// to, its webhooks and conversion webhooks, its APIServices. knestd checks
// every such connection when it is dialled (pkg/egress) and allows the
// tenant's own host pods and Services, knestd's kubelet API, and:
//
//   - APIServerEgressCIDRs: networks the operator lets the tenant API
//     server reach besides those, in CIDR notation, such as a network of
//     webhook servers outside the cluster. Nothing by default.
//   - WebhookURLHosts: the hosts (DNS names or IP addresses, exactly as
//     written in the url) that admission webhooks and CRD conversion
//     webhooks may name in clientConfig.url. A webhook of the tenant's own
//     uses a service reference instead, which needs no entry. A listed host
//     must still resolve into APIServerEgressCIDRs (or to the tenant's
//     pods) to be reached: the host name is checked when the object is
//     written, the address when the connection is made. Nothing by default.

// validateAPIServerEgress checks APIServerEgressCIDRs and WebhookURLHosts.
func (p *Policy) validateAPIServerEgress() field.ErrorList {
	var errs field.ErrorList
	for i, c := range p.APIServerEgressCIDRs {
		errs = append(errs, validateCIDR(c, field.NewPath("apiServerEgressCIDRs").Index(i))...)
	}
	for i, h := range p.WebhookURLHosts {
		path := field.NewPath("webhookURLHosts").Index(i)
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.Zone() != "" {
				errs = append(errs, field.Invalid(path, h, "must be a DNS name or an IP address without a zone"))
			}
			continue
		}
		for _, msg := range content.IsDNS1123Subdomain(h) {
			errs = append(errs, field.Invalid(path, h, "must be a DNS name or an IP address: "+msg))
		}
	}
	return errs
}
