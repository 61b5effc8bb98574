package routes

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "web-x-shop-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme", translate.LabelNamespace: "shop"},
	Annotations: map[string]string{translate.AnnotationName: "web", translate.AnnotationUID: "u1"},
	Tenant:      "acme", TenantNamespace: "shop",
}

func pol() *policy.Policy {
	p := policy.Default(policy.ProfileHard)
	p.Exposure = policy.Exposure{Tenant: "acme", Gateway: &policy.Gateway{Namespace: "infra", Name: "shared", SectionName: "https"}}
	return p
}

// hostWeb is the host name of the tenant's Service shop/web.
var hostWeb = gatewayv1.ObjectName(translate.HostName("acme", "shop", "web", translate.MaxLabelLength))

func svcRef(name string) gatewayv1.BackendObjectReference {
	return gatewayv1.BackendObjectReference{
		Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
		Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(80)),
	}
}

// tenantRef is how the tenant names its view of the operator's Gateway.
var tenantRef = gatewayv1.ParentReference{
	Group: ptr.To(gatewayv1.Group(policy.GatewayGroup)), Kind: ptr.To(gatewayv1.Kind("Gateway")),
	Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared",
}

func tenantRoute(tweaks ...func(*gatewayv1.HTTPRoute)) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1", Generation: 3},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{tenantRef}},
			Hostnames:       []gatewayv1.Hostname{"shop.acme.apps.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}}},
				Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
					RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Shop", Value: "1"}}}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: svcRef("web"), Weight: ptr.To(int32(1))}}},
				Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("10s"))},
			}},
		},
	}
	for _, t := range tweaks {
		t(r)
	}
	return r
}

func forward(t *testing.T, r, host *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
	t.Helper()
	return forwardtest.Forward(t, r, host, func(r, host *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
		return ForwardHTTP(r, host, meta, pol())
	})
}

func TestForwardHTTP(t *testing.T) {
	t.Parallel()
	got := forward(t, tenantRoute(), nil)
	wantBackend := svcRef("web")
	wantBackend.Name = hostWeb
	want := gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Group: ptr.To(gatewayv1.Group(policy.GatewayGroup)), Kind: ptr.To(gatewayv1.Kind("Gateway")),
			Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared", SectionName: ptr.To(gatewayv1.SectionName("https")),
		}}},
		Hostnames: []gatewayv1.Hostname{"shop.acme.apps.example.com"},
		Rules: []gatewayv1.HTTPRouteRule{{
			Matches: tenantRoute().Spec.Rules[0].Matches,
			Filters: tenantRoute().Spec.Rules[0].Filters,
			BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: wantBackend, Weight: ptr.To(int32(1)),
			}}},
			Timeouts: &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("10s"))},
		}},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("host spec (-want +got):\n%s", diff)
	}
	if got.Name != meta.Name || got.Namespace != meta.Namespace || got.Labels[translate.LabelTenant] != "acme" {
		t.Errorf("host metadata %+v", got.ObjectMeta)
	}
	// The host's status (its controller's) is kept.
	host := got.DeepCopy()
	host.Status.Parents = []gatewayv1.RouteParentStatus{{ControllerName: "example.com/gw"}}
	if again := forward(t, tenantRoute(), host); len(again.Status.Parents) != 1 {
		t.Errorf("Forward dropped the host copy's status: %+v", again.Status)
	}
}

// TestForwardAttacks feeds Forward what admission and Refuse refuse (a
// route stored before the policy tightened): nothing of it reaches the
// host spec.
func TestForwardAttacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(*gatewayv1.HTTPRoute)
		check func(*testing.T, *gatewayv1.HTTPRouteSpec)
	}{
		{name: "a parentRef to another host Gateway becomes the operator's", tweak: func(r *gatewayv1.HTTPRoute) {
			r.Spec.ParentRefs = []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace("kube-system")), Name: "admin"}}
			r.Spec.UseDefaultGateways = gatewayv1.GatewayDefaultScopeAll
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			if len(s.ParentRefs) != 1 || s.ParentRefs[0].Name != "shared" || *s.ParentRefs[0].Namespace != "infra" || s.UseDefaultGateways != "" {
				t.Errorf("parents %+v, useDefaultGateways %q", s.ParentRefs, s.UseDefaultGateways)
			}
		}},
		{name: "another tenant's hostname does not reach the host", tweak: func(r *gatewayv1.HTTPRoute) {
			r.Spec.Hostnames = []gatewayv1.Hostname{"shop.acme.apps.example.com", "login.bank.apps.example.com", "*.apps.example.com"}
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			if diff := cmp.Diff([]gatewayv1.Hostname{"shop.acme.apps.example.com"}, s.Hostnames); diff != "" {
				t.Errorf("hostnames (-want +got):\n%s", diff)
			}
		}},
		{name: "a backend in another namespace or of another kind does not reach the host", tweak: func(r *gatewayv1.HTTPRoute) {
			other := svcRef("kubernetes")
			other.Namespace = ptr.To(gatewayv1.Namespace("default"))
			bucket := svcRef("b")
			bucket.Group, bucket.Kind = ptr.To(gatewayv1.Group("example.com")), ptr.To(gatewayv1.Kind("Bucket"))
			r.Spec.Rules[0].BackendRefs = append(r.Spec.Rules[0].BackendRefs,
				gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: other}},
				gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: bucket}})
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			if refs := s.Rules[0].BackendRefs; len(refs) != 1 || refs[0].Name != hostWeb || refs[0].Namespace != nil {
				t.Errorf("backends %+v", refs)
			}
		}},
		{name: "an ExtensionRef filter, and one smuggled beside an allowed one, do not reach the host", tweak: func(r *gatewayv1.HTTPRoute) {
			ext := &gatewayv1.LocalObjectReference{Group: "example.com", Kind: "Lua", Name: "x"}
			r.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{
				{Type: gatewayv1.HTTPRouteFilterExtensionRef, ExtensionRef: ext},
				{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{}, ExtensionRef: ext},
			}
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			want := []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{}}}
			if diff := cmp.Diff(want, s.Rules[0].Filters); diff != "" {
				t.Errorf("filters (-want +got):\n%s", diff)
			}
		}},
		{name: "a mirror goes to the host copy of the tenant's Service, or not at all", tweak: func(r *gatewayv1.HTTPRoute) {
			away := svcRef("db")
			away.Namespace = ptr.To(gatewayv1.Namespace("prod"))
			r.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{
				{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: svcRef("web")}},
				{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: away}},
			}
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			if f := s.Rules[0].Filters; len(f) != 1 || f[0].RequestMirror.BackendRef.Name != hostWeb {
				t.Errorf("filters %+v", f)
			}
		}},
		{name: "session persistence (off the allowlist) does not reach the host", tweak: func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].SessionPersistence = &gatewayv1.SessionPersistence{SessionName: ptr.To("s")}
		}, check: func(t *testing.T, s *gatewayv1.HTTPRouteSpec) {
			if s.Rules[0].SessionPersistence != nil {
				t.Errorf("session persistence reached the host")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tenantRoute(tc.tweak)
			if RefuseHTTP(r, pol()) == "" {
				t.Errorf("Refuse let the route through")
			}
			got := forward(t, r, nil)
			tc.check(t, &got.Spec)
		})
	}
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	if why := RefuseHTTP(tenantRoute(), pol()); why != "" {
		t.Errorf("a good route refused: %s", why)
	}
	r := tenantRoute(func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = nil })
	if why := RefuseHTTP(r, pol()); !strings.Contains(why, "spec.hostnames: Required value") {
		t.Errorf("a route without hostnames: %q", why)
	}
	g := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{tenantRef}},
		Hostnames:       []gatewayv1.Hostname{"grpc.bank.apps.example.com"},
	}}
	if why := RefuseGRPC(g, pol()); !strings.Contains(why, "hostname is not allowed") {
		t.Errorf("a GRPCRoute for another tenant's hostname: %q", why)
	}
}

func TestForwardGRPC(t *testing.T) {
	t.Parallel()
	r := &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", UID: "u1"},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{tenantRef}},
			Hostnames:       []gatewayv1.Hostname{"grpc.acme.apps.example.com"},
			Rules: []gatewayv1.GRPCRouteRule{{
				Filters:     []gatewayv1.GRPCRouteFilter{{Type: gatewayv1.GRPCRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{Kind: "X", Name: "x"}}},
				BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: svcRef("web")}}},
			}},
		},
	}
	got := forwardtest.Forward(t, r, nil, func(r, host *gatewayv1.GRPCRoute) *gatewayv1.GRPCRoute {
		return ForwardGRPC(r, host, meta, pol())
	})
	if p := got.Spec.ParentRefs; len(p) != 1 || p[0].Name != "shared" {
		t.Errorf("parents %+v", p)
	}
	if rule := got.Spec.Rules[0]; len(rule.Filters) != 0 || len(rule.BackendRefs) != 1 || rule.BackendRefs[0].Name != hostWeb {
		t.Errorf("rule %+v", rule)
	}
	if diff := cmp.Diff([]string{"grpc.acme.apps.example.com"}, GRPCHostnames(got)); diff != "" {
		t.Errorf("hostnames (-want +got):\n%s", diff)
	}
}

func TestBackward(t *testing.T) {
	t.Parallel()
	r := tenantRoute(func(r *gatewayv1.HTTPRoute) {
		// Two refs to the same Gateway, one spelled with defaults, and one
		// to the pinned listener by name.
		short := gatewayv1.ParentReference{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}
		section := short
		section.SectionName = ptr.To(gatewayv1.SectionName("https"))
		r.Spec.ParentRefs = []gatewayv1.ParentReference{tenantRef, short, section}
	})
	host := forward(t, r, nil)
	host.Generation = 7
	accepted := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 7}
	stale := metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs", ObservedGeneration: 6}
	host.Status.Parents = []gatewayv1.RouteParentStatus{
		{ParentRef: gatewayv1.ParentReference{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared", SectionName: ptr.To(gatewayv1.SectionName("https"))},
			ControllerName: "example.com/gateway", Conditions: []metav1.Condition{accepted, stale}},
		// A parent the host copy does not name: not the tenant's business.
		{ParentRef: gatewayv1.ParentReference{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "other"}, ControllerName: "example.com/gateway"},
	}
	before := r.DeepCopy()
	got := BackwardHTTP(host, r, pol())
	if diff := cmp.Diff(before, r); diff != "" {
		t.Errorf("Backward mutated the tenant route:\n%s", diff)
	}
	wantAccepted, wantStale := accepted, stale
	wantAccepted.ObservedGeneration, wantStale.ObservedGeneration = 3, 0
	conds := []metav1.Condition{wantAccepted, wantStale}
	want := []gatewayv1.RouteParentStatus{
		{ParentRef: tenantRef, ControllerName: "example.com/gateway", Conditions: conds},
		{ParentRef: r.Spec.ParentRefs[2], ControllerName: "example.com/gateway", Conditions: conds},
	}
	if diff := cmp.Diff(want, got.Status.Parents); diff != "" {
		t.Errorf("tenant status parents (-want +got):\n%s", diff)
	}
	// No ping-pong: the tenant route with its status forwards to the same
	// host spec.
	if diff := cmp.Diff(host.Spec, ForwardHTTP(got, host, meta, pol()).Spec); diff != "" {
		t.Errorf("status changed the host spec:\n%s", diff)
	}
}

// A tenant naming, as its backend, the host name of another tenant's
// Service gets the host copy of its own Service of that name (which does
// not exist): names are always mangled under the tenant's own.
func TestForwardBackendNamedLikeAHostService(t *testing.T) {
	t.Parallel()
	victim := translate.HostName("bank", "prod", "api", translate.MaxLabelLength)
	r := tenantRoute(func(r *gatewayv1.HTTPRoute) {
		r.Spec.Rules[0].BackendRefs[0].Name = gatewayv1.ObjectName(victim)
	})
	got := forward(t, r, nil)
	name := string(got.Spec.Rules[0].BackendRefs[0].Name)
	if name == victim || name != translate.HostName("acme", "shop", victim, translate.MaxLabelLength) {
		t.Errorf("host backend %q, want the acme tenant's own mangled name, never %q", name, victim)
	}
}
