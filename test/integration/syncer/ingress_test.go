package syncer

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

func ingress(name, host, secret string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressSpec{
		IngressClassName: ptr.To(devenv.DevIngressClass),
		Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
		}}}},
	}}
	if secret != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: secret}}
	}
	return ing
}

// TestIntegrationIngresses exposes an app the way the README's "Exposing an
// app" does, on a devcluster with knestd's namespaced host identity.
func TestIntegrationIngresses(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	ns := "shop"
	if _, err := e.tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	host := "web." + tenantName + ".apps.example.com"
	if _, err := e.tenant.NetworkingV1().Ingresses(ns).Create(ctx, ingress("web", host, "web-tls"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("an Ingress for a hostname under the tenant's wildcard: %v", err)
	}

	t.Run("the Ingress reaches the host renamed, pointing at the host Service and Secret", func(t *testing.T) {
		var h *networkingv1.Ingress
		within(t, 10*time.Second, "host Ingress", func(ctx context.Context) (bool, error) {
			var err error
			h, err = e.host.NetworkingV1().Ingresses(hostNamespace).Get(ctx, hostName(ns, "web"), metav1.GetOptions{})
			return err == nil, nil
		})
		if got := ptr.Deref(h.Spec.IngressClassName, ""); got != devenv.DevIngressClass {
			t.Errorf("host class %q, want %s", got, devenv.DevIngressClass)
		}
		if got, want := h.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name, translate.HostName(tenantName, ns, "web", translate.MaxLabelLength); got != want {
			t.Errorf("host backend %q, want the host Service %q", got, want)
		}
		if _, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, translate.HostName(tenantName, ns, "web", translate.MaxLabelLength), metav1.GetOptions{}); err != nil {
			t.Errorf("the backend's host Service: %v", err)
		}
		if got := h.Spec.TLS[0].SecretName; got != hostName(ns, "web-tls") {
			t.Errorf("host TLS secret %q, want %q", got, hostName(ns, "web-tls"))
		}
		within(t, 10*time.Second, "host TLS Secret", func(ctx context.Context) (bool, error) {
			s, err := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, hostName(ns, "web-tls"), metav1.GetOptions{})
			return err == nil && s.Type == corev1.SecretTypeTLS, nil
		})
		var claim *coordinationv1.Lease
		claim, err := e.host.CoordinationV1().Leases(hostclaim.Namespace).Get(ctx, hostclaim.Name(host), metav1.GetOptions{})
		if err != nil || ptr.Deref(claim.Spec.HolderIdentity, "") != hostNamespace {
			t.Errorf("claim of %s: %v, %+v; want one held by %s", host, err, claim, hostNamespace)
		}
	})

	t.Run("status set on the host copy flows back", func(t *testing.T) {
		h, err := e.host.NetworkingV1().Ingresses(hostNamespace).Get(ctx, hostName(ns, "web"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// As the host's ingress controller would.
		h.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "203.0.113.10"}}
		if _, err := e.host.NetworkingV1().Ingresses(hostNamespace).UpdateStatus(ctx, h, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "tenant Ingress status", func(ctx context.Context) (bool, error) {
			ing, err := e.tenant.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && len(ing.Status.LoadBalancer.Ingress) == 1 && ing.Status.LoadBalancer.Ingress[0].IP == "203.0.113.10", nil
		})
	})

	t.Run("a hostname outside the allowlist is refused at the tenant API", func(t *testing.T) {
		for _, h := range []string{"web.other.apps.example.com", "*.apps.example.com"} {
			_, err := e.tenant.NetworkingV1().Ingresses(ns).Create(ctx, ingress("bad", h, ""), metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), "hostname is not allowed for this tenant") {
				t.Errorf("Ingress for %s: %v, want a refusal naming the allowlist", h, err)
			}
		}
	})

	t.Run("a hostname another tenant holds is refused with an Event, and the tenant's host identity cannot take it", func(t *testing.T) {
		taken := "taken." + tenantName + ".apps.example.com"
		other := "knest-other"
		// Another tenant of the same name in another host namespace
		// claimed it first.
		if _, err := e.host.CoordinationV1().Leases(hostclaim.Namespace).Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: hostclaim.Name(taken), Annotations: map[string]string{hostclaim.AnnotationHostname: taken}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(other)},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.tenant.NetworkingV1().Ingresses(ns).Create(ctx, ingress("taken", taken, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 15*time.Second, "SyncRefused event", func(ctx context.Context) (bool, error) {
			evs, err := e.tenant.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.InvolvedObject.Name == "taken" && ev.Reason == "SyncRefused" && strings.Contains(ev.Message, "taken by another tenant") {
					return true, nil
				}
			}
			return false, nil
		})
		if _, err := e.host.NetworkingV1().Ingresses(hostNamespace).Get(ctx, hostName(ns, "taken"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("host copy of the refused Ingress: %v, want none", err)
		}
		// knestd's own host identity cannot remove the other's claim.
		identity := framework.Client(t, framework.AdminConfig(t, e.identity))
		err := identity.CoordinationV1().Leases(hostclaim.Namespace).Delete(ctx, hostclaim.Name(taken), metav1.DeleteOptions{})
		if err == nil || !strings.Contains(err.Error(), "is claimed by host namespace "+other) {
			t.Errorf("the tenant's host identity deleting another's claim: %v, want a refusal", err)
		}
	})

	t.Run("deleting the Ingress removes its host copy, its TLS Secret's copy and its claim", func(t *testing.T) {
		if err := e.tenant.NetworkingV1().Ingresses(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "host copies gone", func(ctx context.Context) (bool, error) {
			_, err1 := e.host.NetworkingV1().Ingresses(hostNamespace).Get(ctx, hostName(ns, "web"), metav1.GetOptions{})
			_, err2 := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, hostName(ns, "web-tls"), metav1.GetOptions{})
			_, err3 := e.host.CoordinationV1().Leases(hostclaim.Namespace).Get(ctx, hostclaim.Name(host), metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
		})
	})
}
