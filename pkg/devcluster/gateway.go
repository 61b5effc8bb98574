package devcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/gatewayapi"
)

const (
	// GatewayNamespace and GatewayName name the host's shared Gateway dev
	// tenants attach their routes to (devenv.DevPolicy). No controller
	// serves it: tests and users play the controller by writing a host
	// route's status.
	GatewayNamespace = "knest-gateway"
	GatewayName      = "knest-dev"
	// GatewayListener is the Gateway's one listener: HTTP on port 80,
	// routes from every namespace.
	GatewayListener = "http"
	// gatewayController is the dev GatewayClass's controller name.
	gatewayController = "knest.io/dev-gateway"
)

// ensureGateway installs the Gateway API CRDs (standard channel, as an
// operator would) and the shared Gateway, with its class and namespace.
func ensureGateway(ctx context.Context, cfg *rest.Config) error {
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := gatewayapi.Install(ctx, ext); err != nil {
		return fmt.Errorf("failed to install the Gateway API: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := gatewayv1.Install(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	for _, o := range []client.Object{
		&gatewayv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: GatewayName},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayController},
		},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: GatewayNamespace}},
		&gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: GatewayNamespace, Name: GatewayName},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: GatewayName,
				Listeners: []gatewayv1.Listener{{
					Name: GatewayListener, Protocol: gatewayv1.HTTPProtocolType, Port: 80,
					AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}},
				}},
			},
		},
	} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}
