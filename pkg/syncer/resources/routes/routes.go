// Package routes translates tenant Gateway API routes (HTTPRoute and
// GRPCRoute, gateway.networking.k8s.io/v1) to host routes attached to the
// host's shared Gateway the operator names in the policy
// (policy.Gateway). The two kinds share everything but their rule types,
// so they share this package.
//
// Forward (tenant -> host): the hostnames, the rules (matches, filters,
// timeouts, retries) as they are, with one parentRef, the operator's
// Gateway (namespace, name and listener from the policy), in place of the
// tenant's, which name the tenant's view of that Gateway; each Service
// backendRef (and a RequestMirror filter's) renamed to the host copy of
// the tenant's Service in the route's namespace, with no namespace (the
// host copy is in the same host namespace). policy.CheckHTTPRoute and
// CheckGRPCRoute are checked by Refuse before any host write; Forward
// keeps only what they allow even if called without them. The metadata
// the syncer owns flows too, and tenant annotations only on the
// operator's allowlist.
//
// Backward (host -> tenant): status.parents, the host Gateway controller's
// word on the operator's Gateway, told once per distinct parentRef the
// tenant wrote (which all stand for that Gateway), with the conditions'
// observedGeneration translated to the tenant route's generation.
package routes

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// RefuseHTTP returns why tenant route r must not reach the host under pol,
// or "": the tenant API refuses the same, but a route stored before the
// policy tightened (or by a path that skipped admission) stops here.
func RefuseHTTP(r *gatewayv1.HTTPRoute, pol *policy.Policy) string {
	return reason(policy.CheckHTTPRoute(&r.Spec, r.Namespace, pol))
}

// RefuseGRPC is RefuseHTTP for GRPCRoutes.
func RefuseGRPC(r *gatewayv1.GRPCRoute, pol *policy.Policy) string {
	return reason(policy.CheckGRPCRoute(&r.Spec, r.Namespace, pol))
}

func reason(errs field.ErrorList) string {
	if len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	return ""
}

// ForwardHTTP returns the desired host HTTPRoute for tenant route r. host
// is the current host copy or nil; fields the syncer does not own (status)
// are kept from it. Neither input is modified.
func ForwardHTTP(r, host *gatewayv1.HTTPRoute, meta translate.Meta, pol *policy.Policy) *gatewayv1.HTTPRoute {
	out := &gatewayv1.HTTPRoute{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	spec := gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: common(pol),
		Hostnames:       hostnames(r.Spec.Hostnames, pol),
	}
	for _, rule := range r.Spec.Rules {
		rule = *rule.DeepCopy()
		rule.SessionPersistence = nil
		rule.Filters = httpFilters(rule.Filters, meta)
		var refs []gatewayv1.HTTPBackendRef
		for _, b := range rule.BackendRefs {
			if ref, ok := backend(b.BackendObjectReference, meta); ok {
				b.BackendObjectReference = ref
				b.Filters = httpFilters(b.Filters, meta)
				refs = append(refs, b)
			}
		}
		rule.BackendRefs = refs
		spec.Rules = append(spec.Rules, rule)
	}
	out.Spec = spec
	return out
}

// ForwardGRPC is ForwardHTTP for GRPCRoutes.
func ForwardGRPC(r, host *gatewayv1.GRPCRoute, meta translate.Meta, pol *policy.Policy) *gatewayv1.GRPCRoute {
	out := &gatewayv1.GRPCRoute{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	spec := gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: common(pol),
		Hostnames:       hostnames(r.Spec.Hostnames, pol),
	}
	for _, rule := range r.Spec.Rules {
		rule = *rule.DeepCopy()
		rule.SessionPersistence = nil
		rule.Filters = grpcFilters(rule.Filters, meta)
		var refs []gatewayv1.GRPCBackendRef
		for _, b := range rule.BackendRefs {
			if ref, ok := backend(b.BackendObjectReference, meta); ok {
				b.BackendObjectReference = ref
				b.Filters = grpcFilters(b.Filters, meta)
				refs = append(refs, b)
			}
		}
		rule.BackendRefs = refs
		spec.Rules = append(spec.Rules, rule)
	}
	out.Spec = spec
	return out
}

// common is the host route's parentRefs: the operator's Gateway only.
func common(pol *policy.Policy) gatewayv1.CommonRouteSpec {
	gw := pol.Exposure.Gateway
	if gw == nil {
		return gatewayv1.CommonRouteSpec{}
	}
	return gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{gw.HostParentRef()}}
}

// hostnames keeps the hostnames the policy allows.
func hostnames(in []gatewayv1.Hostname, pol *policy.Policy) []gatewayv1.Hostname {
	var out []gatewayv1.Hostname
	for _, h := range in {
		if pol.Exposure.AllowsHostname(string(h)) {
			out = append(out, h)
		}
	}
	return out
}

// backend renames a backendRef to a Service of the route's namespace to
// the host copy of that Service; other backends have no host counterpart.
func backend(ref gatewayv1.BackendObjectReference, meta translate.Meta) (gatewayv1.BackendObjectReference, bool) {
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") {
		return ref, false
	}
	if ref.Namespace != nil && string(*ref.Namespace) != meta.TenantNamespace {
		return ref, false
	}
	ref = *ref.DeepCopy()
	ref.Namespace = nil
	ref.Name = gatewayv1.ObjectName(translate.HostName(meta.Tenant, meta.TenantNamespace, string(ref.Name), translate.MaxLabelLength))
	return ref, true
}

// httpFilters keeps the filters on the allowlist (policy.CheckHTTPRoute),
// with a mirror's backend renamed; a mirror to anything else goes.
func httpFilters(in []gatewayv1.HTTPRouteFilter, meta translate.Meta) []gatewayv1.HTTPRouteFilter {
	var out []gatewayv1.HTTPRouteFilter
	for _, f := range in {
		keep := gatewayv1.HTTPRouteFilter{Type: f.Type}
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			keep.RequestHeaderModifier = f.RequestHeaderModifier
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			keep.ResponseHeaderModifier = f.ResponseHeaderModifier
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			keep.RequestRedirect = f.RequestRedirect
		case gatewayv1.HTTPRouteFilterURLRewrite:
			keep.URLRewrite = f.URLRewrite
		case gatewayv1.HTTPRouteFilterCORS:
			keep.CORS = f.CORS
		case gatewayv1.HTTPRouteFilterRequestMirror:
			m, ok := mirror(f.RequestMirror, meta)
			if !ok {
				continue
			}
			keep.RequestMirror = m
		default:
			continue
		}
		out = append(out, keep)
	}
	return out
}

// grpcFilters is httpFilters for GRPCRoutes.
func grpcFilters(in []gatewayv1.GRPCRouteFilter, meta translate.Meta) []gatewayv1.GRPCRouteFilter {
	var out []gatewayv1.GRPCRouteFilter
	for _, f := range in {
		keep := gatewayv1.GRPCRouteFilter{Type: f.Type}
		switch f.Type {
		case gatewayv1.GRPCRouteFilterRequestHeaderModifier:
			keep.RequestHeaderModifier = f.RequestHeaderModifier
		case gatewayv1.GRPCRouteFilterResponseHeaderModifier:
			keep.ResponseHeaderModifier = f.ResponseHeaderModifier
		case gatewayv1.GRPCRouteFilterRequestMirror:
			m, ok := mirror(f.RequestMirror, meta)
			if !ok {
				continue
			}
			keep.RequestMirror = m
		default:
			continue
		}
		out = append(out, keep)
	}
	return out
}

func mirror(m *gatewayv1.HTTPRequestMirrorFilter, meta translate.Meta) (*gatewayv1.HTTPRequestMirrorFilter, bool) {
	if m == nil {
		return nil, false
	}
	ref, ok := backend(m.BackendRef, meta)
	if !ok {
		return nil, false
	}
	out := m.DeepCopy()
	out.BackendRef = ref
	return out, true
}

// BackwardHTTP returns tenant route r with the host copy's status.
func BackwardHTTP(host, r *gatewayv1.HTTPRoute, pol *policy.Policy) *gatewayv1.HTTPRoute {
	out := r.DeepCopy()
	out.Status.RouteStatus = backwardStatus(host.Status.RouteStatus, host.Generation, r.Spec.ParentRefs, r.Namespace, r.Generation, pol)
	return out
}

// BackwardGRPC is BackwardHTTP for GRPCRoutes.
func BackwardGRPC(host, r *gatewayv1.GRPCRoute, pol *policy.Policy) *gatewayv1.GRPCRoute {
	out := r.DeepCopy()
	out.Status.RouteStatus = backwardStatus(host.Status.RouteStatus, host.Generation, r.Spec.ParentRefs, r.Namespace, r.Generation, pol)
	return out
}

// backwardStatus tells each distinct tenant parentRef what the host's
// controllers say of the operator's Gateway. Conditions about the host
// copy's current generation are about the tenant's current one (the
// status flows back only while the host copy is in sync); older ones say
// generation 0, unknown.
func backwardStatus(host gatewayv1.RouteStatus, hostGen int64, refs []gatewayv1.ParentReference, ns string, gen int64, pol *policy.Policy) gatewayv1.RouteStatus {
	gw := pol.Exposure.Gateway
	out := gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{}}
	if gw == nil {
		return out
	}
	var tenantRefs []gatewayv1.ParentReference
	seen := map[string]bool{}
	for _, ref := range refs {
		key := refKey(ref, ns)
		if seen[key] {
			continue
		}
		seen[key] = true
		tenantRefs = append(tenantRefs, ref)
	}
	want := refKey(gw.HostParentRef(), "")
	for _, ps := range host.Parents {
		if refKey(ps.ParentRef, "") != want {
			continue
		}
		for _, ref := range tenantRefs {
			st := gatewayv1.RouteParentStatus{ParentRef: *ref.DeepCopy(), ControllerName: ps.ControllerName}
			for _, c := range ps.Conditions {
				if c.ObservedGeneration == hostGen {
					c.ObservedGeneration = gen
				} else {
					c.ObservedGeneration = 0
				}
				st.Conditions = append(st.Conditions, c)
			}
			out.Parents = append(out.Parents, st)
		}
	}
	return out
}

// refKey identifies the parent a parentRef of a route in namespace ns
// names, with the API's defaults filled in.
func refKey(ref gatewayv1.ParentReference, ns string) string {
	group, kind := policy.GatewayGroup, "Gateway"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	var section, port string
	if ref.SectionName != nil {
		section = string(*ref.SectionName)
	}
	if ref.Port != nil {
		port = strconv.Itoa(int(*ref.Port))
	}
	return strings.Join([]string{group, kind, ns, string(ref.Name), section, port}, "/")
}

// HTTPHostnames and GRPCHostnames are the hostnames a host route serves,
// as claimed on the host (pkg/hostclaim).
func HTTPHostnames(r *gatewayv1.HTTPRoute) []string { return policy.RouteHostnames(r.Spec.Hostnames) }

// GRPCHostnames is HTTPHostnames for GRPCRoutes.
func GRPCHostnames(r *gatewayv1.GRPCRoute) []string { return policy.RouteHostnames(r.Spec.Hostnames) }
