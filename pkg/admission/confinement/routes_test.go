package confinement

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/policy"
)

// The attacker is the tenant's cluster-admin, writing routes the host's
// shared Gateway would serve.
func TestRoutes(t *testing.T) {
	t.Parallel()
	pol := policy.Default(policy.ProfileHard)
	pol.Exposure = policy.Exposure{Tenant: "demo", Gateway: &policy.Gateway{Namespace: "infra", Name: "shared"}}
	noGateway := policy.Default(policy.ProfileHard)
	noGateway.Exposure = policy.Exposure{Tenant: "demo"}

	route := func(tweaks ...func(*gatewayv1.HTTPRoute)) *unstructured.Unstructured {
		r := &gatewayv1.HTTPRoute{
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}}},
				Hostnames:       []gatewayv1.Hostname{"web.demo.apps.example.com"},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
				}}}}},
			},
		}
		r.APIVersion, r.Kind = gatewayv1.GroupVersion.String(), "HTTPRoute"
		// As a client that leaves the namespace to the request path.
		r.Name = "x"
		for _, t := range tweaks {
			t(r)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: u}
	}
	grpc := func(hostnames ...gatewayv1.Hostname) *unstructured.Unstructured {
		r := &gatewayv1.GRPCRoute{Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}}},
			Hostnames:       hostnames,
		}}
		r.APIVersion, r.Kind = gatewayv1.GroupVersion.String(), "GRPCRoute"
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: u}
	}
	httpRoutes := gatewayv1.SchemeGroupVersion.WithResource("httproutes")
	grpcRoutes := gatewayv1.SchemeGroupVersion.WithResource("grpcroutes")
	tests := []struct {
		name    string
		pol     *policy.Policy
		req     request
		refused string
	}{
		{name: "a route for the tenant's hostname to its own Service on the shared Gateway is admitted", req: request{obj: route(), resource: httpRoutes}},
		{name: "a route with no hostnames, capturing every hostname of the shared Gateway, is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Hostnames = nil
		}), resource: httpRoutes}, refused: "spec.hostnames: Required value: a route without hostnames would take every hostname of the host's shared Gateway"},
		{name: "another tenant's hostname is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Hostnames = []gatewayv1.Hostname{"login.bank.apps.example.com"}
		}), resource: httpRoutes}, refused: `spec.hostnames[0]: Invalid value: "login.bank.apps.example.com": hostname is not allowed for this tenant`},
		{name: "a wildcard broader than the tenant's is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Hostnames = []gatewayv1.Hostname{"*.apps.example.com"}
		}), resource: httpRoutes}, refused: `"*.apps.example.com": hostname is not allowed`},
		{name: "an update that moves to another tenant's hostname is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Hostnames = []gatewayv1.Hostname{"bank.example.com"}
		}), old: route(), op: admission.Update, resource: httpRoutes}, refused: `"bank.example.com": hostname is not allowed`},
		{name: "a backend in a host namespace (another tenant's, the operator's) is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("knest-bank"))
		}), resource: httpRoutes}, refused: "spec.rules[0].backendRefs[0].namespace: Forbidden: backends are Services of the route's own namespace: knest does not map ReferenceGrants"},
		{name: "a backend in the route's own namespace, named explicitly, is admitted", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("shop"))
		}), resource: httpRoutes}},
		{name: "a backend of another kind is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].BackendRefs[0].Group = ptr.To(gatewayv1.Group("multicluster.x-k8s.io"))
			r.Spec.Rules[0].BackendRefs[0].Kind = ptr.To(gatewayv1.Kind("ServiceImport"))
		}), resource: httpRoutes}, refused: "spec.rules[0].backendRefs[0].kind: Forbidden"},
		{name: "an ExtensionRef filter is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExtensionRef,
				ExtensionRef: &gatewayv1.LocalObjectReference{Group: "gateway.envoyproxy.io", Kind: "HTTPRouteFilter", Name: "lua"}}}
		}), resource: httpRoutes}, refused: `spec.rules[0].filters[0].type: Unsupported value: "ExtensionRef"`},
		{name: "a parentRef to another host Gateway is refused", req: request{obj: route(func(r *gatewayv1.HTTPRoute) {
			r.Spec.ParentRefs[0].Namespace = ptr.To(gatewayv1.Namespace("kube-system"))
			r.Spec.ParentRefs[0].Name = "internal"
		}), resource: httpRoutes}, refused: "spec.parentRefs[0]: Forbidden: routes attach only to the host's shared Gateway; name the Gateway infra/shared"},
		{name: "a GRPCRoute for another tenant's hostname is refused", req: request{obj: grpc("api.bank.apps.example.com"), resource: grpcRoutes},
			refused: `spec.hostnames[0]: Invalid value: "api.bank.apps.example.com"`},
		{name: "a GRPCRoute for the tenant's wildcard is admitted", req: request{obj: grpc("*.demo.apps.example.com"), resource: grpcRoutes}},
		{name: "the status a controller writes is not checked", req: request{obj: route(func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = nil }),
			old: route(), op: admission.Update, subresource: "status", resource: httpRoutes}},
		{name: "without a host Gateway, routes (for a controller the tenant runs itself) are not checked", pol: noGateway,
			req: request{obj: route(func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = nil }), resource: httpRoutes}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.pol
			if p == nil {
				p = pol
			}
			err := admit(t, p, tc.req)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("got %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}
