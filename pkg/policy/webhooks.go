package policy

import (
	"net/netip"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CheckWebhookURL refuses a webhook's or a conversion webhook's
// clientConfig.url whose host is not in the policy's WebhookURLHosts: the
// tenant API server would call it from inside the host network. A nil url
// (the webhook names a service) passes. The dial is checked again when it
// is made, so a listed name that resolves elsewhere still goes nowhere.
func CheckWebhookURL(u *string, path *field.Path, p *Policy) field.ErrorList {
	if u == nil {
		return nil
	}
	parsed, err := url.Parse(*u)
	if err != nil || parsed.Hostname() == "" {
		return field.ErrorList{field.Invalid(path, *u, "must be a URL with a host")}
	}
	if webhookHostAllowed(parsed.Hostname(), p.WebhookURLHosts) {
		return nil
	}
	return field.ErrorList{field.Forbidden(path, "host "+parsed.Hostname()+
		" is not in the operator's webhookURLHosts: the tenant API server calls webhook URLs from the host network; "+
		"point the webhook at a Service of this cluster (clientConfig.service) instead")}
}

// webhookHostAllowed matches host against the allowlist: DNS names without
// regard to case or a trailing dot, IP addresses by value (so ::1 and
// 0:0::1 are one address).
func webhookHostAllowed(host string, allowed []string) bool {
	ip, ipErr := netip.ParseAddr(host)
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, a := range allowed {
		if ipErr == nil {
			if aip, err := netip.ParseAddr(a); err == nil && aip.Unmap() == ip.Unmap() {
				return true
			}
			continue
		}
		if strings.TrimSuffix(strings.ToLower(a), ".") == name {
			return true
		}
	}
	return false
}
