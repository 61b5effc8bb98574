package syncer

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

// routeClient is a client of Gateway API objects on the cluster of path.
func routeClient(t *testing.T, path string) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := gatewayv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(framework.AdminConfig(t, path), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func httpRoute(name string, hostnames ...gatewayv1.Hostname) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace: ptr.To(gatewayv1.Namespace(devenv.DevGatewayNamespace)), Name: devenv.DevGatewayName,
			}}},
			Hostnames: hostnames,
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
			}}}}},
		},
	}
}

// TestIntegrationRoutes exposes an app through the dev host's shared
// Gateway with an HTTPRoute, the way the README's "Exposing an app" does,
// with knestd's namespaced host identity (the chart's Role).
func TestIntegrationRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	tenant, host := routeClient(t, e.kubeconfig()), routeClient(t, e.dev.Layout.HostKubeconfig())
	ns := "shop"
	if _, err := e.tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("the tenant serves the Gateway API and sees the host's shared Gateway", func(t *testing.T) {
		var gw gatewayv1.Gateway
		within(t, 10*time.Second, "tenant Gateway", func(ctx context.Context) (bool, error) {
			return tenant.Get(ctx, types.NamespacedName{Namespace: devenv.DevGatewayNamespace, Name: devenv.DevGatewayName}, &gw) == nil, nil
		})
	})

	hostname := "web." + tenantName + ".apps.example.com"
	if err := tenant.Create(ctx, httpRoute("web", gatewayv1.Hostname(hostname))); err != nil {
		t.Fatalf("an HTTPRoute for a hostname under the tenant's wildcard: %v", err)
	}
	hostKey := types.NamespacedName{Namespace: hostNamespace, Name: hostName(ns, "web")}

	t.Run("the route reaches the host renamed, attached to the operator's Gateway, backed by the host Service", func(t *testing.T) {
		var h gatewayv1.HTTPRoute
		within(t, 10*time.Second, "host HTTPRoute", func(ctx context.Context) (bool, error) {
			return host.Get(ctx, hostKey, &h) == nil, nil
		})
		if p := h.Spec.ParentRefs; len(p) != 1 || string(ptr.Deref(p[0].Namespace, "")) != devenv.DevGatewayNamespace || p[0].Name != devenv.DevGatewayName {
			t.Errorf("host parentRefs %+v, want the Gateway %s/%s", p, devenv.DevGatewayNamespace, devenv.DevGatewayName)
		}
		b := h.Spec.Rules[0].BackendRefs[0]
		svc := translate.HostName(tenantName, ns, "web", translate.MaxLabelLength)
		if string(b.Name) != svc || b.Namespace != nil {
			t.Errorf("host backend %s (namespace %v), want the host Service %s", b.Name, b.Namespace, svc)
		}
		if _, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, svc, metav1.GetOptions{}); err != nil {
			t.Errorf("the backend's host Service: %v", err)
		}
		claim, err := e.host.CoordinationV1().Leases(hostclaim.Namespace).Get(ctx, hostclaim.Name(hostname), metav1.GetOptions{})
		if err != nil || ptr.Deref(claim.Spec.HolderIdentity, "") != hostNamespace {
			t.Errorf("claim of %s: %v, %+v; want one held by %s", hostname, err, claim, hostNamespace)
		}
	})

	t.Run("status set on the host copy flows back, about the parent the tenant named", func(t *testing.T) {
		var h gatewayv1.HTTPRoute
		if err := host.Get(ctx, hostKey, &h); err != nil {
			t.Fatal(err)
		}
		// As the host's Gateway controller would.
		h.Status.Parents = []gatewayv1.RouteParentStatus{{ParentRef: h.Spec.ParentRefs[0], ControllerName: "example.com/gateway-controller",
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
				ObservedGeneration: h.Generation, LastTransitionTime: metav1.Now()}}}}
		if err := host.Status().Update(ctx, &h); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "tenant HTTPRoute status", func(ctx context.Context) (bool, error) {
			var r gatewayv1.HTTPRoute
			if err := tenant.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &r); err != nil {
				return false, err
			}
			p := r.Status.Parents
			return len(p) == 1 && p[0].ParentRef.Name == devenv.DevGatewayName && len(p[0].Conditions) == 1 &&
				p[0].Conditions[0].Type == "Accepted" && p[0].Conditions[0].ObservedGeneration == r.Generation, nil
		})
	})

	t.Run("routes outside the policy are refused at the tenant API with the reason", func(t *testing.T) {
		ext := httpRoute("ext", gatewayv1.Hostname(hostname))
		ext.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExtensionRef,
			ExtensionRef: &gatewayv1.LocalObjectReference{Group: "example.com", Kind: "Lua", Name: "x"}}}
		away := httpRoute("away", gatewayv1.Hostname(hostname))
		away.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("kube-system"))
		for _, tc := range []struct {
			route *gatewayv1.HTTPRoute
			want  string
		}{
			{httpRoute("other", "web.other.apps.example.com"), "hostname is not allowed for this tenant"},
			{httpRoute("all", "*.apps.example.com"), "hostname is not allowed for this tenant"},
			{httpRoute("none"), "a route without hostnames would take every hostname"},
			{ext, `Unsupported value: "ExtensionRef"`},
			{away, "backends are Services of the route's own namespace"},
		} {
			err := tenant.Create(ctx, tc.route)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("HTTPRoute %s: %v, want a refusal saying %q", tc.route.Name, err, tc.want)
			}
		}
	})

	t.Run("a hostname another tenant holds is refused with an Event", func(t *testing.T) {
		taken := "taken." + tenantName + ".apps.example.com"
		if _, err := e.host.CoordinationV1().Leases(hostclaim.Namespace).Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: hostclaim.Name(taken), Annotations: map[string]string{hostclaim.AnnotationHostname: taken}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("knest-other")},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := tenant.Create(ctx, httpRoute("taken", gatewayv1.Hostname(taken))); err != nil {
			t.Fatal(err)
		}
		within(t, 15*time.Second, "SyncRefused event", func(ctx context.Context) (bool, error) {
			evs, err := e.tenant.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.InvolvedObject.Name == "taken" && ev.InvolvedObject.Kind == "HTTPRoute" && ev.Reason == "SyncRefused" && strings.Contains(ev.Message, "taken by another tenant") {
					return true, nil
				}
			}
			return false, nil
		})
		var h gatewayv1.HTTPRoute
		if err := host.Get(ctx, types.NamespacedName{Namespace: hostNamespace, Name: hostName(ns, "taken")}, &h); !apierrors.IsNotFound(err) {
			t.Errorf("host copy of the refused route: %v, want none", err)
		}
	})

	t.Run("deleting the route removes its host copy and its claim", func(t *testing.T) {
		if err := tenant.Delete(ctx, &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "host copy and claim gone", func(ctx context.Context) (bool, error) {
			var h gatewayv1.HTTPRoute
			err1 := host.Get(ctx, hostKey, &h)
			_, err2 := e.host.CoordinationV1().Leases(hostclaim.Namespace).Get(ctx, hostclaim.Name(hostname), metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
		})
	})
}
