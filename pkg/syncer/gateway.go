package syncer

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/gatewayapi"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/routes"
	"github.com/knest-dev/knest/pkg/translate"
)

// TenantGatewayController is the controller of the GatewayClass knestd
// shows the tenant: the host's shared Gateway, through the syncer.
const TenantGatewayController = "knest.io/host-gateway"

// TenantGatewayClass is the GatewayClass of the tenant's view of the
// host's shared Gateway.
const TenantGatewayClass = "knest"

// routeKinds returns the Gateway API route kinds (HTTPRoute, GRPCRoute):
// synced only when the policy names the host's shared Gateway.
func routeKinds(pol *policy.Policy) []Kind {
	httpRoute := typed("HTTPRoute", translate.MaxSubdomainLength, func() *gatewayv1.HTTPRoute { return &gatewayv1.HTTPRoute{} },
		func(r, host *gatewayv1.HTTPRoute, meta translate.Meta) *gatewayv1.HTTPRoute {
			return routes.ForwardHTTP(r, host, meta, pol)
		}, nil)
	// Admission refuses the same; a route stored before the policy
	// tightened is refused here, before any host write, and its host copy
	// goes.
	httpRoute.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		return routes.RefuseHTTP(obj.(*gatewayv1.HTTPRoute), pol), nil
	}
	httpRoute.Backward = func(host, tenant client.Object) client.Object {
		return routes.BackwardHTTP(host.(*gatewayv1.HTTPRoute), tenant.(*gatewayv1.HTTPRoute), pol)
	}
	httpRoute.Hostnames = func(host client.Object) []string { return routes.HTTPHostnames(host.(*gatewayv1.HTTPRoute)) }
	httpRoute.HostnamesInUse = hostnamesInUse("HTTPRoute", true)

	grpcRoute := typed("GRPCRoute", translate.MaxSubdomainLength, func() *gatewayv1.GRPCRoute { return &gatewayv1.GRPCRoute{} },
		func(r, host *gatewayv1.GRPCRoute, meta translate.Meta) *gatewayv1.GRPCRoute {
			return routes.ForwardGRPC(r, host, meta, pol)
		}, nil)
	grpcRoute.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		return routes.RefuseGRPC(obj.(*gatewayv1.GRPCRoute), pol), nil
	}
	grpcRoute.Backward = func(host, tenant client.Object) client.Object {
		return routes.BackwardGRPC(host.(*gatewayv1.GRPCRoute), tenant.(*gatewayv1.GRPCRoute), pol)
	}
	grpcRoute.Hostnames = func(host client.Object) []string { return routes.GRPCHostnames(host.(*gatewayv1.GRPCRoute)) }
	grpcRoute.HostnamesInUse = hostnamesInUse("GRPCRoute", true)
	return []Kind{httpRoute, grpcRoute}
}

// hostnamesInUse returns a Kind's HostnamesInUse: the hostnames the
// tenant's host Ingresses and (with routes) HTTPRoutes and GRPCRoutes
// serve, from the host cache, which holds only this tenant's, but for the
// copy of kind named except. One claim stands for a hostname whichever
// kind serves it, so an Ingress going must not release a hostname a route
// still serves, nor the other way round.
func hostnamesInUse(kind string, withRoutes bool) func(ctx context.Context, host client.Reader, hostNamespace, except string) (map[string]bool, error) {
	return func(ctx context.Context, host client.Reader, hostNamespace, except string) (map[string]bool, error) {
		out := map[string]bool{}
		add := func(k, name string, deleting *metav1.Time, hostnames []string) {
			if (k == kind && name == except) || deleting != nil {
				return
			}
			for _, h := range hostnames {
				out[h] = true
			}
		}
		var ings networkingv1.IngressList
		if err := host.List(ctx, &ings, client.InNamespace(hostNamespace)); err != nil {
			return nil, fmt.Errorf("failed to list Ingresses in host cluster: %w", err)
		}
		for i := range ings.Items {
			o := &ings.Items[i]
			add("Ingress", o.Name, o.DeletionTimestamp, policy.IngressHostnames(&o.Spec))
		}
		if !withRoutes {
			return out, nil
		}
		var hrs gatewayv1.HTTPRouteList
		if err := host.List(ctx, &hrs, client.InNamespace(hostNamespace)); err != nil {
			return nil, fmt.Errorf("failed to list HTTPRoutes in host cluster: %w", err)
		}
		for i := range hrs.Items {
			o := &hrs.Items[i]
			add("HTTPRoute", o.Name, o.DeletionTimestamp, routes.HTTPHostnames(o))
		}
		var grs gatewayv1.GRPCRouteList
		if err := host.List(ctx, &grs, client.InNamespace(hostNamespace)); err != nil {
			return nil, fmt.Errorf("failed to list GRPCRoutes in host cluster: %w", err)
		}
		for i := range grs.Items {
			o := &grs.Items[i]
			add("GRPCRoute", o.Name, o.DeletionTimestamp, routes.GRPCHostnames(o))
		}
		return out, nil
	}
}

// routeResources are the host resources route sync needs.
var routeResources = []string{"httproutes", "grpcroutes"}

// checkHostServesRoutes refuses to sync routes to a host that does not
// serve the Gateway API's route kinds: its caches would never sync.
func checkHostServesRoutes(hostConfig *rest.Config, gw *policy.Gateway) error {
	dc, err := discovery.NewDiscoveryClientForConfig(hostConfig)
	if err != nil {
		return err
	}
	list, err := dc.ServerResourcesForGroupVersion(gatewayv1.GroupVersion.String())
	if err != nil {
		return fmt.Errorf("the policy attaches tenant routes to host Gateway %s, but the host cluster does not serve %s (install the Gateway API CRDs, standard channel): %w",
			gw, gatewayv1.GroupVersion, err)
	}
	var served []string
	for _, r := range list.APIResources {
		served = append(served, r.Name)
	}
	for _, want := range routeResources {
		if !slices.Contains(served, want) {
			return fmt.Errorf("the policy attaches tenant routes to host Gateway %s, but the host cluster does not serve %s %s", gw, gatewayv1.GroupVersion, want)
		}
	}
	return nil
}

// installTenantGatewayAPI serves the Gateway API kinds in the tenant
// (pkg/gatewayapi), before the syncer's caches watch its routes.
func installTenantGatewayAPI(ctx context.Context, tenantConfig *rest.Config) error {
	c, err := apiextensionsclient.NewForConfig(tenantConfig)
	if err != nil {
		return err
	}
	if err := gatewayapi.Install(ctx, c); err != nil {
		return fmt.Errorf("failed to serve the Gateway API in tenant cluster: %w", err)
	}
	return nil
}

// ensureTenantGateway shows the tenant the host's shared Gateway: a
// GatewayClass "knest" and a Gateway of the host Gateway's namespace and
// name (the namespace created if need be), the parent its routes name. It
// is informational, like the IngressClasses: what reaches the host is the
// policy's Gateway whatever these say, and knestd leaves them alone once
// they exist (they are the tenant's objects).
func ensureTenantGateway(ctx context.Context, c client.Client, gw *policy.Gateway) error {
	managed := map[string]string{"app.kubernetes.io/managed-by": "knest"}
	gc := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: TenantGatewayClass, Labels: managed},
		Spec: gatewayv1.GatewayClassSpec{
			ControllerName: TenantGatewayController,
			Description:    ptr.To("The host cluster's shared Gateway, through knest"),
		},
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gw.Namespace, Labels: managed}}
	listener := gw.SectionName
	if listener == "" {
		listener = "http"
	}
	g := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: gw.Name, Labels: managed},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: TenantGatewayClass,
			Listeners: []gatewayv1.Listener{{
				Name: gatewayv1.SectionName(listener), Protocol: gatewayv1.HTTPProtocolType, Port: 80,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}},
			}},
		},
	}
	for _, o := range []client.Object{gc, ns, g} {
		if err := c.Create(ctx, o); err != nil && !kerrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create %T %s in tenant cluster: %w", o, o.GetName(), err)
		}
	}
	return nil
}
