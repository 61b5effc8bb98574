package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Exposure says how a tenant may expose its apps through the host's shared
// ingress controllers: which hostnames it may claim and which host
// IngressClasses its Ingresses get.
type Exposure struct {
	// Hostnames are the hostnames the tenant's Ingresses may claim: exact
	// names (shop.example.com) and wildcards (*.t1.apps.example.com). A
	// wildcard allows the names one label below it and the same wildcard,
	// as an ingress controller matches it; never a broader or deeper one.
	// When left out: *.<tenant>.<baseDomain>. An empty list allows none.
	Hostnames []string `json:"hostnames,omitempty"`
	// BaseDomain is the domain under which each tenant gets its default
	// wildcard. Default apps.example.com.
	BaseDomain string `json:"baseDomain,omitempty"`
	// IngressClasses maps an IngressClass name a tenant Ingress may name
	// to the host IngressClass its host copy gets. None by default: the
	// tenant cannot expose anything until the operator names a class.
	IngressClasses map[string]string `json:"ingressClasses,omitempty"`
	// DefaultIngressClass is the tenant class (a key of IngressClasses)
	// of Ingresses that name none. Empty: such Ingresses are refused.
	DefaultIngressClass string `json:"defaultIngressClass,omitempty"`
	// Gateway is the host's shared Gateway the tenant's Gateway API
	// routes attach to (gateway.go). Nil: routes are not synced, and
	// knestd serves the tenant no Gateway API kinds.
	Gateway *Gateway `json:"gateway,omitempty"`

	// Tenant is the tenant's name (knestd --name), for the default
	// hostnames; not part of the policy file.
	Tenant string `json:"-"`
}

// DefaultBaseDomain is the base domain of tenants' default hostnames.
const DefaultBaseDomain = "apps.example.com"

// AllowedHostnames are the hostnames the tenant may claim.
func (e Exposure) AllowedHostnames() []string {
	if e.Hostnames != nil {
		return e.Hostnames
	}
	if e.Tenant == "" {
		return nil
	}
	base := e.BaseDomain
	if base == "" {
		base = DefaultBaseDomain
	}
	return []string{"*." + e.Tenant + "." + base}
}

// AllowsHostname reports whether the tenant may claim host (an exact name
// or a wildcard "*.domain").
func (e Exposure) AllowsHostname(host string) bool {
	host = strings.ToLower(host)
	for _, a := range e.AllowedHostnames() {
		a = strings.ToLower(a)
		if host == a {
			return true
		}
		// *.d allows x.d: one label, not a wildcard, as a controller
		// matches it.
		if d, ok := strings.CutPrefix(a, "*."); ok {
			label, rest, found := strings.Cut(host, ".")
			if found && rest == d && label != "*" && label != "" {
				return true
			}
		}
	}
	return false
}

// HostIngressClass returns the host IngressClass of a tenant Ingress naming
// class (nil: none), and whether the policy allows it.
func (e Exposure) HostIngressClass(class *string) (string, bool) {
	name := e.DefaultIngressClass
	if class != nil {
		name = *class
	}
	if name == "" {
		return "", false
	}
	host, ok := e.IngressClasses[name]
	return host, ok
}

func (e Exposure) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, h := range e.Hostnames {
		errs = append(errs, validateHostnamePattern(h, path.Child("hostnames").Index(i))...)
	}
	if e.BaseDomain != "" {
		for _, msg := range content.IsDNS1123Subdomain(e.BaseDomain) {
			errs = append(errs, field.Invalid(path.Child("baseDomain"), e.BaseDomain, msg))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.IngressClasses)) {
		at := path.Child("ingressClasses").Key(k)
		errs = append(errs, validateName(k, at)...)
		errs = append(errs, validateName(e.IngressClasses[k], at)...)
	}
	if d := e.DefaultIngressClass; d != "" {
		if _, ok := e.IngressClasses[d]; !ok {
			errs = append(errs, field.Invalid(path.Child("defaultIngressClass"), d, "must be one of ingressClasses"))
		}
	}
	if e.Gateway != nil {
		errs = append(errs, e.Gateway.validate(path.Child("gateway"))...)
	}
	return errs
}

// validateHostnamePattern checks an allowlist entry: a DNS name, or a
// wildcard "*." followed by a domain of at least two labels (a wildcard on
// a top-level domain would claim every name under it).
func validateHostnamePattern(h string, path *field.Path) field.ErrorList {
	name := h
	if d, ok := strings.CutPrefix(h, "*."); ok {
		name = d
		if !strings.Contains(d, ".") {
			return field.ErrorList{field.Invalid(path, h, "a wildcard must be below a domain of at least two labels")}
		}
	}
	var errs field.ErrorList
	for _, msg := range content.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(path, h, msg))
	}
	return errs
}

// CheckIngress refuses what a tenant Ingress may not ask of the host's
// shared ingress controllers under policy p: a class the operator did not
// allow, hostnames outside the tenant's allowlist (TLS hosts included),
// rules without a host and a defaultBackend (each would capture traffic
// meant for others), and resource backends (they name objects of any kind,
// which the host would look up in the tenant's host namespace). Errors
// name fields under "spec".
func CheckIngress(spec *networkingv1.IngressSpec, p *Policy) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec")
	e := p.Exposure
	allowed := quoteList(e.AllowedHostnames())
	if _, ok := e.HostIngressClass(spec.IngressClassName); !ok {
		classes := quoteList(slices.Sorted(maps.Keys(e.IngressClasses)))
		if spec.IngressClassName == nil {
			errs = append(errs, field.Required(path.Child("ingressClassName"), fmt.Sprintf(
				"this tenant has no default IngressClass; name one of %s", classes)))
		} else {
			errs = append(errs, field.Invalid(path.Child("ingressClassName"), *spec.IngressClassName, fmt.Sprintf(
				"IngressClass is not allowed for this tenant; use one of %s (the operator's exposure.ingressClasses)", classes)))
		}
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, field.Forbidden(path.Child("defaultBackend"),
			"a default backend would take every request the host's shared ingress controller matches no rule for; give each rule a host"))
	}
	checkHost := func(h string, at *field.Path) {
		switch {
		case h == "":
			errs = append(errs, field.Required(at, fmt.Sprintf(
				"a rule without a host would take every hostname of the host's shared ingress controller; name one of %s", allowed)))
		case !e.AllowsHostname(h):
			errs = append(errs, field.Invalid(at, h, fmt.Sprintf(
				"hostname is not allowed for this tenant; it may claim %s (a wildcard allows the names one label below it)", allowed)))
		}
	}
	for i, r := range spec.Rules {
		at := path.Child("rules").Index(i)
		checkHost(r.Host, at.Child("host"))
		if r.HTTP == nil {
			continue
		}
		for j, pth := range r.HTTP.Paths {
			if pth.Backend.Resource != nil {
				errs = append(errs, field.Forbidden(at.Child("http", "paths").Index(j).Child("backend", "resource"),
					"resource backends are not supported; use a Service backend"))
			}
		}
	}
	for i, t := range spec.TLS {
		at := path.Child("tls").Index(i)
		if len(t.Hosts) == 0 {
			errs = append(errs, field.Required(at.Child("hosts"), fmt.Sprintf(
				"TLS without hosts would apply to every hostname of the host's shared ingress controller; name one of %s", allowed)))
		}
		for j, h := range t.Hosts {
			checkHost(h, at.Child("hosts").Index(j))
		}
	}
	return errs
}

// IngressHostnames returns the hostnames an Ingress claims (rules and TLS),
// lower-cased, sorted and without duplicates.
func IngressHostnames(spec *networkingv1.IngressSpec) []string {
	var out []string
	for _, r := range spec.Rules {
		out = append(out, strings.ToLower(r.Host))
	}
	for _, t := range spec.TLS {
		for _, h := range t.Hosts {
			out = append(out, strings.ToLower(h))
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
