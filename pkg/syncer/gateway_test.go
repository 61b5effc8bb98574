package syncer

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/gatewayapi"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/translate"
)

// installGatewayAPI serves the Gateway API CRDs on the host (as an
// operator installs them) and in the tenant (as syncer.New does).
func installGatewayAPI(t *testing.T, e *synctest.Env) {
	t.Helper()
	for _, cfg := range []*struct {
		name string
		c    apiextensionsclient.Interface
	}{{"host", apiextensionsclient.NewForConfigOrDie(e.HostConfig)}, {"tenant", apiextensionsclient.NewForConfigOrDie(e.TenantConfig)}} {
		if err := gatewayapi.Install(t.Context(), cfg.c); err != nil {
			t.Fatalf("%s: %v", cfg.name, err)
		}
	}
}

func TestEngineHTTPRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	installClaims(t, e)
	installGatewayAPI(t, e)
	pol := testPolicy()
	pol.Exposure = policy.Exposure{Tenant: e.Tenant, IngressClasses: map[string]string{"web": "knest-dev"},
		Gateway: &policy.Gateway{Namespace: "infra", Name: "shared"}}
	pol.Metadata.Annotations = append(pol.Metadata.Annotations, "example.com/allowed")
	rk, ik := kind(t, pol, "HTTPRoute"), kind(t, pol, "Ingress")
	rr, ir := newReconciler(e, rk, pol), newReconciler(e, ik, pol)
	hostname := "shop." + e.Tenant + ".apps.example.com"

	tenantRef := gatewayv1.ParentReference{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "shop", Annotations: map[string]string{
			"example.com/allowed": "yes", "example.com/lua-snippet": "os.execute('...')",
		}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{tenantRef}},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(hostname)},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
			}}}}},
		},
	}
	create(t, e.TenantAdmin, route)
	key := client.ObjectKeyFromObject(route)
	e.Settle(t, rr, key)

	// The host copy: renamed, attached to the operator's Gateway, backed by
	// the host copy of the tenant's Service, its hostname claimed.
	var h gatewayv1.HTTPRoute
	hostKey := e.Writer.HostKey(key.Namespace, key.Name, rk.MaxNameLength)
	if err := e.HostAdmin.Get(ctx, hostKey, &h); err != nil {
		t.Fatalf("no host copy: %v", err)
	}
	gw := pol.Exposure.Gateway.HostParentRef()
	if diff := cmp.Diff([]gatewayv1.ParentReference{gw}, h.Spec.ParentRefs); diff != "" {
		t.Errorf("host parentRefs (-want +got):\n%s", diff)
	}
	b := h.Spec.Rules[0].BackendRefs[0]
	if want := e.Writer.HostKey(e.Namespace, "web", translate.MaxLabelLength).Name; string(b.Name) != want || b.Namespace != nil {
		t.Errorf("host backend %s (namespace %v), want the host Service %s", b.Name, b.Namespace, want)
	}
	if _, ok := h.Annotations["example.com/lua-snippet"]; ok || h.Annotations["example.com/allowed"] != "yes" {
		t.Errorf("host annotations = %v, want the allowed one only", h.Annotations)
	}
	if got := claimHolder(t, e, hostname); got != e.HostNamespace {
		t.Errorf("claim holder = %q, want %s", got, e.HostNamespace)
	}

	// The host's Gateway controller accepts the route; the tenant reads it
	// about the parent it named.
	h.Status.Parents = []gatewayv1.RouteParentStatus{{ParentRef: gw, ControllerName: "example.com/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: h.Generation,
			LastTransitionTime: metav1.Now()}}}}
	if err := e.HostAdmin.Status().Update(ctx, &h); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, rr, key)
	if err := e.TenantAdmin.Get(ctx, key, route); err != nil {
		t.Fatal(err)
	}
	if p := route.Status.Parents; len(p) != 1 || p[0].ParentRef.Name != "shared" || p[0].ParentRef.SectionName != nil ||
		p[0].ControllerName != "example.com/gateway-controller" || len(p[0].Conditions) != 1 ||
		p[0].Conditions[0].Type != "Accepted" || p[0].Conditions[0].ObservedGeneration != route.Generation {
		t.Errorf("tenant status parents = %+v, want Accepted for infra/shared at generation %d", p, route.Generation)
	}

	// An Ingress of the tenant serves the same hostname: one claim for
	// both kinds.
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "shop-ingress"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("web"), Rules: []networkingv1.IngressRule{{Host: hostname}}}}
	create(t, e.TenantAdmin, ing)
	e.Settle(t, ir, client.ObjectKeyFromObject(ing))

	// A hostname outside the allowlist (admission was skipped, or the
	// policy tightened): refused with the reason, and the host copy goes,
	// but not the claim, which the Ingress still needs.
	route.Spec.Hostnames = []gatewayv1.Hostname{"shop.other.apps.example.com"}
	if err := e.TenantAdmin.Update(ctx, route); err != nil {
		t.Fatal(err)
	}
	result, writes, err := e.Reconcile(t, rr, key)
	if err != nil || result.RequeueAfter != refusedRetry {
		t.Errorf("Reconcile = %+v, %v; want a refusal", result, err)
	}
	if diff := cmp.Diff([]string{"host delete HTTPRoute"}, synctest.Ops(writes)); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"SyncRefused"}, e.Reasons(key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := claimHolder(t, e, hostname); got != e.HostNamespace {
		t.Errorf("claim holder while the Ingress serves the hostname = %q, want %s", got, e.HostNamespace)
	}
	// The Ingress goes too: nothing serves the hostname, the claim goes.
	if err := e.TenantAdmin.Delete(ctx, ing); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, ir, client.ObjectKeyFromObject(ing))
	if got := claimHolder(t, e, hostname); got != "" {
		t.Errorf("claim holder once nothing serves the hostname = %q, want none", got)
	}
}

func TestEngineGRPCRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	installClaims(t, e)
	installGatewayAPI(t, e)
	pol := testPolicy()
	pol.Exposure = policy.Exposure{Tenant: e.Tenant, Gateway: &policy.Gateway{Namespace: "infra", Name: "shared", SectionName: "grpc"}}
	k := kind(t, pol, "GRPCRoute")
	r := newReconciler(e, k, pol)
	route := &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "api"},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "shared"}}},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname("*." + e.Tenant + ".apps.example.com")},
			Rules: []gatewayv1.GRPCRouteRule{{BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "api", Port: ptr.To(gatewayv1.PortNumber(9000))},
			}}}}},
		},
	}
	create(t, e.TenantAdmin, route)
	key := client.ObjectKeyFromObject(route)
	e.Settle(t, r, key)
	var h gatewayv1.GRPCRoute
	if err := e.HostAdmin.Get(ctx, e.Writer.HostKey(key.Namespace, key.Name, k.MaxNameLength), &h); err != nil {
		t.Fatalf("no host copy: %v", err)
	}
	if p := h.Spec.ParentRefs; len(p) != 1 || p[0].Name != "shared" || ptr.Deref(p[0].SectionName, "") != "grpc" {
		t.Errorf("host parentRefs = %+v, want infra/shared listener grpc", p)
	}
	if got := claimHolder(t, e, "*."+e.Tenant+".apps.example.com"); got != e.HostNamespace {
		t.Errorf("wildcard claim holder = %q, want %s", got, e.HostNamespace)
	}
	// Deleted in the tenant: the host copy and the claim go.
	if err := e.TenantAdmin.Delete(ctx, route); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, r, key)
	if got := claimHolder(t, e, "*."+e.Tenant+".apps.example.com"); got != "" {
		t.Errorf("claim holder after the route went = %q, want none", got)
	}
}

func TestTenantGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	installGatewayAPI(t, e)
	gw := &policy.Gateway{Namespace: "gw-" + e.Tenant, Name: "shared", SectionName: "https"}
	for range 2 { // the second time, at a restart, finds them there
		if err := ensureTenantGateway(ctx, e.TenantAdmin, gw); err != nil {
			t.Fatal(err)
		}
	}
	var g gatewayv1.Gateway
	if err := e.TenantAdmin.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}, &g); err != nil {
		t.Fatalf("tenant Gateway: %v", err)
	}
	if g.Spec.GatewayClassName != TenantGatewayClass || len(g.Spec.Listeners) != 1 || g.Spec.Listeners[0].Name != "https" {
		t.Errorf("tenant Gateway spec %+v", g.Spec)
	}
	var ns corev1.Namespace
	if err := e.TenantAdmin.Get(ctx, types.NamespacedName{Name: gw.Namespace}, &ns); err != nil {
		t.Errorf("tenant namespace of the Gateway: %v", err)
	}
	// A route naming it passes the policy: what the tenant sees is what
	// its routes may name.
	spec := gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Namespace: ptr.To(gatewayv1.Namespace(g.Namespace)), Name: gatewayv1.ObjectName(g.Name), SectionName: ptr.To(g.Spec.Listeners[0].Name),
		}}},
		Hostnames: []gatewayv1.Hostname{"a." + gatewayv1.Hostname(e.Tenant) + ".apps.example.com"},
	}
	p := testPolicy()
	p.Exposure = policy.Exposure{Tenant: e.Tenant, Gateway: gw}
	if errs := policy.CheckHTTPRoute(&spec, "default", p); len(errs) > 0 {
		t.Errorf("a route naming the tenant's Gateway: %v", errs.ToAggregate())
	}
}

// A policy naming a host Gateway on a host that does not serve the
// Gateway API stops the syncer at start with the reason, instead of caches
// that never sync.
func TestCheckHostServesRoutes(t *testing.T) {
	t.Parallel()
	gw := &policy.Gateway{Namespace: "infra", Name: "shared"}
	for _, tc := range []struct {
		name      string
		resources string
		want      string
	}{
		{name: "a host without the Gateway API", want: "the host cluster does not serve gateway.networking.k8s.io/v1 (install the Gateway API CRDs"},
		{name: "a host serving Gateways but not GRPCRoutes", resources: `[{"name":"gateways","namespaced":true,"kind":"Gateway","verbs":["get"]},{"name":"httproutes","namespaced":true,"kind":"HTTPRoute","verbs":["get"]}]`,
			want: "does not serve gateway.networking.k8s.io/v1 grpcroutes"},
		{name: "a host serving both route kinds", resources: `[{"name":"httproutes","namespaced":true,"kind":"HTTPRoute","verbs":["get"]},{"name":"grpcroutes","namespaced":true,"kind":"GRPCRoute","verbs":["get"]}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/apis/gateway.networking.k8s.io/v1" || tc.resources == "" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"gateway.networking.k8s.io/v1","resources":%s}`, tc.resources)
			}))
			defer srv.Close()
			err := checkHostServesRoutes(&rest.Config{Host: srv.URL}, gw)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A CRD knest installed from an older gateway-api release moves to the
// embedded one at the next start (a knestd upgrade); one the tenant
// installed itself is left alone.
func TestGatewayAPIUpgrade(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	installGatewayAPI(t, e)
	c := apiextensionsclient.NewForConfigOrDie(e.TenantConfig)
	crds := c.ApiextensionsV1().CustomResourceDefinitions()
	const name = "referencegrants.gateway.networking.k8s.io"
	setRelease := func(release, managedBy string) {
		t.Helper()
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		crd.Annotations[gatewayapi.BundleVersionAnnotation] = release
		crd.Labels[gatewayapi.ManagedByLabel] = managedBy
		if _, err := crds.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	release := func() string {
		t.Helper()
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return crd.Annotations[gatewayapi.BundleVersionAnnotation]
	}
	embedded := release()
	setRelease("v0.0.1-old", "knest")
	installGatewayAPI(t, e)
	if got := release(); got != embedded {
		t.Errorf("knest's CRD from an old release: %s after Install, want %s", got, embedded)
	}
	setRelease("v0.0.1-tenant", "the-tenant")
	installGatewayAPI(t, e)
	if got := release(); got != "v0.0.1-tenant" {
		t.Errorf("the tenant's own CRD: %s after Install, want it left at v0.0.1-tenant", got)
	}
	setRelease(embedded, "knest")
}
