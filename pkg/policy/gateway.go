package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Gateway names the host's shared Gateway (Gateway API) the tenant's
// HTTPRoutes and GRPCRoutes attach to. The operator runs it, in its own
// namespace, with listeners that allow routes from the tenant's host
// namespace; tenants never create Gateways on the host. The tenant sees a
// Gateway of the same namespace and name (knestd creates it), and its
// routes' parentRefs must name that one: no other parent reaches the host.
type Gateway struct {
	// Namespace and Name are the host Gateway's.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// SectionName, if set, is the listener of the Gateway the routes
	// attach to; a tenant parentRef may name it or none. Empty: routes
	// attach to the Gateway's listeners that accept them, and a tenant
	// parentRef may name no listener.
	SectionName string `json:"sectionName,omitempty"`
}

// GatewayGroup is the Gateway API's group.
const GatewayGroup = gatewayv1.GroupName

func (g *Gateway) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsDNS1123Label(g.Namespace) {
		errs = append(errs, field.Invalid(path.Child("namespace"), g.Namespace, msg))
	}
	errs = append(errs, validateName(g.Name, path.Child("name"))...)
	if g.SectionName != "" {
		errs = append(errs, validateName(g.SectionName, path.Child("sectionName"))...)
	}
	return errs
}

// String is the Gateway as "namespace/name" or "namespace/name/section".
func (g *Gateway) String() string {
	s := g.Namespace + "/" + g.Name
	if g.SectionName != "" {
		s += "/" + g.SectionName
	}
	return s
}

// HostParentRef is the parentRef every host copy of a tenant route gets.
func (g *Gateway) HostParentRef() gatewayv1.ParentReference {
	ref := gatewayv1.ParentReference{
		Group:     ptr.To(gatewayv1.Group(GatewayGroup)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace(g.Namespace)),
		Name:      gatewayv1.ObjectName(g.Name),
	}
	if g.SectionName != "" {
		ref.SectionName = ptr.To(gatewayv1.SectionName(g.SectionName))
	}
	return ref
}

// refuseParent says why ref, a parentRef of a route in namespace ns,
// does not name the tenant's view of the operator's Gateway, or "".
func (g *Gateway) refuseParent(ref gatewayv1.ParentReference, ns string) string {
	want := fmt.Sprintf("name the Gateway %s/%s (group %s, kind Gateway, namespace %s)", g.Namespace, g.Name, GatewayGroup, g.Namespace)
	if g.SectionName != "" {
		want += fmt.Sprintf(", with sectionName %s or none", g.SectionName)
	}
	refNS := ns
	if ref.Namespace != nil {
		refNS = string(*ref.Namespace)
	}
	switch {
	case ref.Group != nil && *ref.Group != GatewayGroup, ref.Kind != nil && *ref.Kind != "Gateway":
		return "routes attach only to the host's shared Gateway; " + want
	case refNS != g.Namespace || string(ref.Name) != g.Name:
		return "routes attach only to the host's shared Gateway; " + want
	case ref.SectionName != nil && string(*ref.SectionName) != g.SectionName:
		if g.SectionName == "" {
			return "the operator attaches routes to the shared Gateway's listeners that accept them; name no sectionName"
		}
		return "the operator attaches routes to listener " + g.SectionName + "; name it or no sectionName"
	case ref.Port != nil:
		return "the operator picks the shared Gateway's listener; name no port"
	}
	return ""
}

// routeCheck is what HTTPRoutes and GRPCRoutes share.
type routeCheck struct {
	e    Exposure
	ns   string
	errs field.ErrorList
}

// common checks the spec fields both route kinds share: parentRefs (only
// the tenant's view of the operator's Gateway) and hostnames (at least
// one, each on the allowlist: a route without hostnames takes every
// hostname of the shared Gateway's listener).
func (c *routeCheck) common(path *field.Path, common gatewayv1.CommonRouteSpec, hostnames []gatewayv1.Hostname) {
	gw := c.e.Gateway
	if gw == nil {
		c.errs = append(c.errs, field.Forbidden(path.Child("parentRefs"),
			"this tenant's routes reach no host Gateway: the operator did not name one (exposure.gateway)"))
		return
	}
	if len(common.ParentRefs) == 0 {
		c.errs = append(c.errs, field.Required(path.Child("parentRefs"), fmt.Sprintf(
			"a route attaches to the host's shared Gateway only when it names it: add a parentRef to Gateway %s/%s", gw.Namespace, gw.Name)))
	}
	for i, ref := range common.ParentRefs {
		if why := gw.refuseParent(ref, c.ns); why != "" {
			c.errs = append(c.errs, field.Forbidden(path.Child("parentRefs").Index(i), why))
		}
	}
	c.rest(path, common, "parentRefs", "useDefaultGateways")
	if common.UseDefaultGateways != "" {
		c.errs = append(c.errs, field.Forbidden(path.Child("useDefaultGateways"),
			"routes attach only to the Gateway they name; remove useDefaultGateways"))
	}
	allowed := quoteList(c.e.AllowedHostnames())
	if len(hostnames) == 0 {
		c.errs = append(c.errs, field.Required(path.Child("hostnames"), fmt.Sprintf(
			"a route without hostnames would take every hostname of the host's shared Gateway; name one of %s", allowed)))
	}
	for i, h := range hostnames {
		if !c.e.AllowsHostname(string(h)) {
			c.errs = append(c.errs, field.Invalid(path.Child("hostnames").Index(i), string(h), fmt.Sprintf(
				"hostname is not allowed for this tenant; it may claim %s (a wildcard allows the names one label below it)", allowed)))
		}
	}
}

// backend checks a backendRef (or a mirror's): a Service of the route's own
// namespace, which the host copy names by its host name. Other kinds name
// objects on the host the tenant does not own; another namespace would
// need a ReferenceGrant, which knest does not map.
func (c *routeCheck) backend(path *field.Path, ref gatewayv1.BackendObjectReference) {
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") {
		c.errs = append(c.errs, field.Forbidden(path.Child("kind"), fmt.Sprintf(
			"backends are Services of the route's namespace; %s/%s is not supported", deref(ref.Group), deref(ref.Kind))))
	}
	if ref.Namespace != nil && string(*ref.Namespace) != c.ns {
		c.errs = append(c.errs, field.Forbidden(path.Child("namespace"),
			"backends are Services of the route's own namespace: knest does not map ReferenceGrants to the host"))
	}
}

func deref[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// rest refuses what is set in v (a struct) beyond the allowlisted fields
// named in allowed, by their json names: a field is honoured or refused,
// never dropped, also when a newer CRD brings fields this code does not
// know.
func (c *routeCheck) rest(path *field.Path, v any, allowed ...string) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || slices.Contains(allowed, name) || rv.Field(i).IsZero() {
			continue
		}
		c.errs = append(c.errs, field.Forbidden(path.Child(name),
			"not supported on the host's shared Gateway (not on knest's allowlist of route fields)"))
	}
}

// httpFilterFields maps the HTTPRoute filter types on the allowlist to the
// field that carries each. ExtensionRef names an implementation-specific
// object in the host namespace; ExternalAuth sends every request to a
// backend of its own.
var httpFilterFields = map[gatewayv1.HTTPRouteFilterType]string{
	gatewayv1.HTTPRouteFilterRequestHeaderModifier:  "requestHeaderModifier",
	gatewayv1.HTTPRouteFilterResponseHeaderModifier: "responseHeaderModifier",
	gatewayv1.HTTPRouteFilterRequestRedirect:        "requestRedirect",
	gatewayv1.HTTPRouteFilterURLRewrite:             "urlRewrite",
	gatewayv1.HTTPRouteFilterRequestMirror:          "requestMirror",
	gatewayv1.HTTPRouteFilterCORS:                   "cors",
}

// grpcFilterFields is httpFilterFields for GRPCRoutes.
var grpcFilterFields = map[gatewayv1.GRPCRouteFilterType]string{
	gatewayv1.GRPCRouteFilterRequestHeaderModifier:  "requestHeaderModifier",
	gatewayv1.GRPCRouteFilterResponseHeaderModifier: "responseHeaderModifier",
	gatewayv1.GRPCRouteFilterRequestMirror:          "requestMirror",
}

func (c *routeCheck) httpFilters(path *field.Path, filters []gatewayv1.HTTPRouteFilter) {
	for i, f := range filters {
		at := path.Index(i)
		name, ok := httpFilterFields[f.Type]
		if !ok {
			c.errs = append(c.errs, field.NotSupported(at.Child("type"), f.Type, sortedKeys(httpFilterFields)))
			continue
		}
		c.rest(at, f, "type", name)
		if f.RequestMirror != nil {
			c.backend(at.Child("requestMirror", "backendRef"), f.RequestMirror.BackendRef)
		}
	}
}

func (c *routeCheck) grpcFilters(path *field.Path, filters []gatewayv1.GRPCRouteFilter) {
	for i, f := range filters {
		at := path.Index(i)
		name, ok := grpcFilterFields[f.Type]
		if !ok {
			c.errs = append(c.errs, field.NotSupported(at.Child("type"), f.Type, sortedKeys(grpcFilterFields)))
			continue
		}
		c.rest(at, f, "type", name)
		if f.RequestMirror != nil {
			c.backend(at.Child("requestMirror", "backendRef"), f.RequestMirror.BackendRef)
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CheckHTTPRoute refuses what a tenant HTTPRoute in namespace ns may not
// ask of the host's shared Gateway under policy p: parents other than the
// operator's Gateway, no hostnames or hostnames outside the allowlist
// (wildcards included), backends that are not Services of ns, filters off
// the allowlist (ExtensionRef, ExternalAuth) and any field knest does not
// carry to the host. Errors name fields under "spec".
func CheckHTTPRoute(spec *gatewayv1.HTTPRouteSpec, ns string, p *Policy) field.ErrorList {
	c := &routeCheck{e: p.Exposure, ns: ns}
	path := field.NewPath("spec")
	c.common(path, spec.CommonRouteSpec, spec.Hostnames)
	c.rest(path, *spec, "parentRefs", "useDefaultGateways", "hostnames", "rules")
	for i, r := range spec.Rules {
		at := path.Child("rules").Index(i)
		c.rest(at, r, "name", "matches", "filters", "backendRefs", "timeouts", "retry")
		c.httpFilters(at.Child("filters"), r.Filters)
		for j, b := range r.BackendRefs {
			bat := at.Child("backendRefs").Index(j)
			c.backend(bat, b.BackendObjectReference)
			c.httpFilters(bat.Child("filters"), b.Filters)
		}
	}
	return c.errs
}

// CheckGRPCRoute is CheckHTTPRoute for GRPCRoutes.
func CheckGRPCRoute(spec *gatewayv1.GRPCRouteSpec, ns string, p *Policy) field.ErrorList {
	c := &routeCheck{e: p.Exposure, ns: ns}
	path := field.NewPath("spec")
	c.common(path, spec.CommonRouteSpec, spec.Hostnames)
	c.rest(path, *spec, "parentRefs", "useDefaultGateways", "hostnames", "rules")
	for i, r := range spec.Rules {
		at := path.Child("rules").Index(i)
		c.rest(at, r, "name", "matches", "filters", "backendRefs")
		c.grpcFilters(at.Child("filters"), r.Filters)
		for j, b := range r.BackendRefs {
			bat := at.Child("backendRefs").Index(j)
			c.backend(bat, b.BackendObjectReference)
			c.grpcFilters(bat.Child("filters"), b.Filters)
		}
	}
	return c.errs
}

// RouteHostnames returns a route's hostnames lower-cased, sorted and
// without duplicates: the hostnames it claims on the host.
func RouteHostnames(hostnames []gatewayv1.Hostname) []string {
	out := make([]string, 0, len(hostnames))
	for _, h := range hostnames {
		if h != "" {
			out = append(out, strings.ToLower(string(h)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
