package policy

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayPolicy is a hard tenant "t1" whose routes attach to the host's
// Gateway infra/shared.
func gatewayPolicy(section string) *Policy {
	p := Default(ProfileHard)
	p.Exposure = Exposure{Tenant: "t1", Gateway: &Gateway{Namespace: "infra", Name: "shared", SectionName: section}}
	return p
}

// httpRoute is a route in namespace "shop" for web.t1.apps.example.com to
// Service web, attached to infra/shared.
func httpRoute(tweaks ...func(*gatewayv1.HTTPRouteSpec)) *gatewayv1.HTTPRouteSpec {
	spec := &gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared",
		}}},
		Hostnames: []gatewayv1.Hostname{"web.t1.apps.example.com"},
		Rules: []gatewayv1.HTTPRouteRule{{
			Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}}},
			BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
			}}},
		}},
	}
	for _, t := range tweaks {
		t(spec)
	}
	return spec
}

func TestCheckHTTPRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		section string
		spec    *gatewayv1.HTTPRouteSpec
		refused []string
	}{
		{name: "a route to the shared Gateway for the tenant's hostname and Service is admitted", spec: httpRoute()},
		{name: "the full parentRef, group and kind spelled out, is admitted", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].Group = ptr.To(gatewayv1.Group(GatewayGroup))
			s.ParentRefs[0].Kind = ptr.To(gatewayv1.Kind("Gateway"))
		})},
		{name: "the tenant's own wildcard is admitted", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Hostnames = []gatewayv1.Hostname{"*.t1.apps.example.com"}
		})},
		{name: "header, redirect, rewrite and CORS filters are admitted", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{
				{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "b"}}}},
				{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: ptr.To(gatewayv1.PreciseHostname("internal"))}},
				{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{AllowOrigins: []gatewayv1.CORSOrigin{"https://a.example.com"}}},
			}
		})},
		{name: "the listener the operator pins may be named", section: "https", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].SectionName = ptr.To(gatewayv1.SectionName("https"))
		})},
		// Attacks of a tenant cluster-admin.
		{name: "a route with no hostnames, which would capture every hostname of the shared listener, is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Hostnames = nil
		}), refused: []string{"spec.hostnames: Required value: a route without hostnames would take every hostname"}},
		{name: "another tenant's hostname is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Hostnames = []gatewayv1.Hostname{"web.t1.apps.example.com", "login.t2.apps.example.com"}
		}), refused: []string{`spec.hostnames[1]: Invalid value: "login.t2.apps.example.com": hostname is not allowed for this tenant; it may claim "*.t1.apps.example.com"`}},
		{name: "a wildcard broader than the tenant's is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Hostnames = []gatewayv1.Hostname{"*.apps.example.com"}
		}), refused: []string{`"*.apps.example.com": hostname is not allowed`}},
		{name: "a parentRef to another host Gateway is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].Name = "internal-admin"
		}), refused: []string{"spec.parentRefs[0]: Forbidden: routes attach only to the host's shared Gateway; name the Gateway infra/shared"}},
		{name: "a parentRef in the route's own namespace (no namespace given) is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].Namespace = nil
		}), refused: []string{"spec.parentRefs[0]: Forbidden: routes attach only to the host's shared Gateway"}},
		{name: "a parent of another kind (a Service, mesh style) is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].Group = ptr.To(gatewayv1.Group(""))
			s.ParentRefs[0].Kind = ptr.To(gatewayv1.Kind("Service"))
		}), refused: []string{"spec.parentRefs[0]: Forbidden"}},
		{name: "a listener other than the pinned one is refused", section: "https", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].SectionName = ptr.To(gatewayv1.SectionName("admin"))
		}), refused: []string{"the operator attaches routes to listener https"}},
		{name: "a port on the parentRef is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs[0].Port = ptr.To(gatewayv1.PortNumber(8443))
		}), refused: []string{"name no port"}},
		{name: "no parentRefs at all is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.ParentRefs = nil
		}), refused: []string{"spec.parentRefs: Required value"}},
		{name: "default Gateways are refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.UseDefaultGateways = gatewayv1.GatewayDefaultScopeAll
		}), refused: []string{"spec.useDefaultGateways: Forbidden"}},
		{name: "a backend in another namespace is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("kube-system"))
		}), refused: []string{"spec.rules[0].backendRefs[0].namespace: Forbidden: backends are Services of the route's own namespace"}},
		{name: "a backend of another kind is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].BackendRefs[0].Group = ptr.To(gatewayv1.Group("example.com"))
			s.Rules[0].BackendRefs[0].Kind = ptr.To(gatewayv1.Kind("Bucket"))
		}), refused: []string{"spec.rules[0].backendRefs[0].kind: Forbidden: backends are Services of the route's namespace; example.com/Bucket is not supported"}},
		{name: "an ExtensionRef filter is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExtensionRef,
				ExtensionRef: &gatewayv1.LocalObjectReference{Group: "networking.example.io", Kind: "LuaScript", Name: "x"}}}
		}), refused: []string{`spec.rules[0].filters[0].type: Unsupported value: "ExtensionRef"`}},
		{name: "an ExtensionRef filter on a backend is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].BackendRefs[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExtensionRef,
				ExtensionRef: &gatewayv1.LocalObjectReference{Group: "networking.example.io", Kind: "LuaScript", Name: "x"}}}
		}), refused: []string{`spec.rules[0].backendRefs[0].filters[0].type: Unsupported value: "ExtensionRef"`}},
		{name: "an allowed filter type smuggling an extensionRef is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
				RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{},
				ExtensionRef:          &gatewayv1.LocalObjectReference{Group: "networking.example.io", Kind: "LuaScript", Name: "x"}}}
		}), refused: []string{"spec.rules[0].filters[0].extensionRef: Forbidden"}},
		{name: "external auth is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExternalAuth,
				ExternalAuth: &gatewayv1.HTTPExternalAuthFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "auth"}}}}
		}), refused: []string{`Unsupported value: "ExternalAuth"`}},
		{name: "a mirror to another namespace's Service is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror,
				RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "db", Namespace: ptr.To(gatewayv1.Namespace("other"))}}}}
		}), refused: []string{"spec.rules[0].filters[0].requestMirror.backendRef.namespace: Forbidden"}},
		{name: "a rule field off the allowlist is refused", spec: httpRoute(func(s *gatewayv1.HTTPRouteSpec) {
			s.Rules[0].SessionPersistence = &gatewayv1.SessionPersistence{SessionName: ptr.To("s")}
		}), refused: []string{"spec.rules[0].sessionPersistence: Forbidden: not supported on the host's shared Gateway"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := CheckHTTPRoute(tc.spec, "shop", gatewayPolicy(tc.section))
			got := errs.ToAggregate()
			if len(tc.refused) == 0 {
				if got != nil {
					t.Errorf("refused: %v", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("admitted, want a refusal mentioning %q", tc.refused)
			}
			for _, want := range tc.refused {
				if !strings.Contains(got.Error(), want) {
					t.Errorf("got %v, want a refusal mentioning %q", got, want)
				}
			}
		})
	}
}

func TestCheckHTTPRouteWithoutGateway(t *testing.T) {
	t.Parallel()
	p := Default(ProfileHard)
	p.Exposure = Exposure{Tenant: "t1"}
	errs := CheckHTTPRoute(httpRoute(), "shop", p)
	if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "the operator did not name one (exposure.gateway)") {
		t.Errorf("got %v, want a refusal naming exposure.gateway", errs)
	}
}

func TestCheckGRPCRoute(t *testing.T) {
	t.Parallel()
	route := func(tweak func(*gatewayv1.GRPCRouteSpec)) *gatewayv1.GRPCRouteSpec {
		s := &gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}}},
			Hostnames:       []gatewayv1.Hostname{"grpc.t1.apps.example.com"},
			Rules: []gatewayv1.GRPCRouteRule{{BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "api", Port: ptr.To(gatewayv1.PortNumber(9000))},
			}}}}},
		}
		if tweak != nil {
			tweak(s)
		}
		return s
	}
	tests := []struct {
		name    string
		spec    *gatewayv1.GRPCRouteSpec
		refused string
	}{
		{name: "a route to the tenant's Service is admitted", spec: route(nil)},
		{name: "no hostnames is refused", spec: route(func(s *gatewayv1.GRPCRouteSpec) { s.Hostnames = nil }), refused: "spec.hostnames: Required value"},
		{name: "an ExtensionRef filter is refused", spec: route(func(s *gatewayv1.GRPCRouteSpec) {
			s.Rules[0].Filters = []gatewayv1.GRPCRouteFilter{{Type: gatewayv1.GRPCRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{Kind: "X", Name: "x"}}}
		}), refused: `spec.rules[0].filters[0].type: Unsupported value: "ExtensionRef"`},
		{name: "a cross-namespace backend is refused", spec: route(func(s *gatewayv1.GRPCRouteSpec) {
			s.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("kube-system"))
		}), refused: "spec.rules[0].backendRefs[0].namespace: Forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := CheckGRPCRoute(tc.spec, "shop", gatewayPolicy(""))
			switch {
			case tc.refused == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs.ToAggregate())
			case tc.refused != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.refused)):
				t.Errorf("got %v, want a refusal mentioning %q", errs.ToAggregate(), tc.refused)
			}
		})
	}
}

func TestGatewayPolicyValidation(t *testing.T) {
	t.Parallel()
	p := Default(ProfileHard)
	p.Exposure.Gateway = &Gateway{Namespace: "Infra", Name: ""}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "exposure.gateway.namespace") || !strings.Contains(err.Error(), "exposure.gateway.name") {
		t.Errorf("got %v, want errors on exposure.gateway.namespace and .name", err)
	}
}
