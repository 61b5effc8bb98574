// Package ingresses translates tenant Ingresses to host Ingresses, served
// by the host's shared ingress controllers.
//
// Forward (tenant -> host): the host IngressClass the policy maps the
// tenant's class to (always set, so the host's default class never picks
// a copy up by accident), the rules with their hosts and paths, each
// Service backend renamed to the host copy of the tenant's Service in the
// same namespace, and TLS entries with their secretName renamed to the host
// copy of the tenant's Secret (which the syncer copies while an Ingress
// references it). Hostnames, classes, defaultBackend and resource backends
// are checked by Refuse before any host write; Forward keeps only what the
// policy allows even if called without it. The metadata the syncer owns
// flows too, and tenant annotations only on the operator's allowlist:
// controller-specific annotations (snippets, auth URLs, rewrites) steer a
// shared controller.
//
// Backward (host -> tenant): status (the load balancer addresses the
// host's controller publishes).
package ingresses

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// Refuse returns why tenant Ingress ing must not reach the host under pol,
// or "": the tenant API refuses the same, but an Ingress stored before the
// policy tightened (or by a path that skipped admission) stops here.
func Refuse(ing *networkingv1.Ingress, pol *policy.Policy) string {
	if errs := policy.CheckIngress(&ing.Spec, pol); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	return ""
}

// Forward returns the desired host Ingress for tenant Ingress ing. host is
// the current host copy or nil; fields the syncer does not own are kept
// from it. Neither input is modified.
func Forward(ing, host *networkingv1.Ingress, meta translate.Meta, pol *policy.Policy) *networkingv1.Ingress {
	out := &networkingv1.Ingress{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	e := pol.Exposure
	out.Spec = networkingv1.IngressSpec{}
	if class, ok := e.HostIngressClass(ing.Spec.IngressClassName); ok {
		out.Spec.IngressClassName = &class
	}
	for _, r := range ing.Spec.Rules {
		if r.Host == "" || !e.AllowsHostname(r.Host) {
			continue
		}
		rule := networkingv1.IngressRule{Host: r.Host}
		if r.HTTP != nil {
			rule.HTTP = &networkingv1.HTTPIngressRuleValue{}
			for _, p := range r.HTTP.Paths {
				if b, ok := backend(p.Backend, meta); ok {
					p = *p.DeepCopy()
					p.Backend = b
					rule.HTTP.Paths = append(rule.HTTP.Paths, p)
				}
			}
		}
		out.Spec.Rules = append(out.Spec.Rules, rule)
	}
	for _, t := range ing.Spec.TLS {
		tls := networkingv1.IngressTLS{}
		for _, h := range t.Hosts {
			if e.AllowsHostname(h) {
				tls.Hosts = append(tls.Hosts, h)
			}
		}
		if len(tls.Hosts) == 0 {
			continue
		}
		if t.SecretName != "" {
			tls.SecretName = translate.HostName(meta.Tenant, meta.TenantNamespace, t.SecretName, translate.MaxSubdomainLength)
		}
		out.Spec.TLS = append(out.Spec.TLS, tls)
	}
	return out
}

// backend renames a Service backend to the host copy of the tenant's
// Service; other backends have no host counterpart.
func backend(b networkingv1.IngressBackend, meta translate.Meta) (networkingv1.IngressBackend, bool) {
	if b.Service == nil || b.Resource != nil {
		return networkingv1.IngressBackend{}, false
	}
	svc := *b.Service
	svc.Name = translate.HostName(meta.Tenant, meta.TenantNamespace, svc.Name, translate.MaxLabelLength)
	return networkingv1.IngressBackend{Service: &svc}, true
}

// Backward returns tenant Ingress ing with the host copy's status.
func Backward(host, ing *networkingv1.Ingress) *networkingv1.Ingress {
	out := ing.DeepCopy()
	out.Status = *host.Status.DeepCopy()
	return out
}

// SecretRefs returns the names of the Secrets ing's TLS entries reference:
// they reach the host while it does.
func SecretRefs(ing *networkingv1.Ingress) []string {
	var out []string
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			out = append(out, t.SecretName)
		}
	}
	return out
}
