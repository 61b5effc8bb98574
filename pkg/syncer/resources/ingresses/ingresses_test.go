package ingresses

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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
	p.Exposure = policy.Exposure{Tenant: "acme", IngressClasses: map[string]string{"web": "nginx-shared"}}
	return p
}

func path(svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{
		Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}},
	}
}

func tenantIngress(tweaks ...func(*networkingv1.Ingress)) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("web"),
			Rules: []networkingv1.IngressRule{{
				Host:             "shop.acme.apps.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{path("web")}}},
			}},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"shop.acme.apps.example.com"}, SecretName: "shop-tls"}},
		},
	}
	for _, t := range tweaks {
		t(ing)
	}
	return ing
}

func forward(t *testing.T, ing, host *networkingv1.Ingress) *networkingv1.Ingress {
	t.Helper()
	return forwardtest.Forward(t, ing, host, func(ing, host *networkingv1.Ingress) *networkingv1.Ingress {
		return Forward(ing, host, meta, pol())
	})
}

func TestForward(t *testing.T) {
	t.Parallel()
	got := forward(t, tenantIngress(), nil)
	want := networkingv1.IngressSpec{
		IngressClassName: ptr.To("nginx-shared"),
		Rules: []networkingv1.IngressRule{{
			Host:             "shop.acme.apps.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{path("web-x-shop-x-acme")}}},
		}},
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"shop.acme.apps.example.com"}, SecretName: "shop-tls-x-shop-x-acme"}},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("host spec (-want +got):\n%s", diff)
	}
	if got.Name != meta.Name || got.Namespace != meta.Namespace || got.Labels[translate.LabelTenant] != "acme" {
		t.Errorf("host metadata = %+v", got.ObjectMeta)
	}

	// What the host owns stays, and is not a reason to write.
	host := got.DeepCopy()
	host.UID, host.ResourceVersion = "host-uid", "7"
	host.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "203.0.113.9"}}
	if again := forward(t, tenantIngress(), host); !cmp.Equal(again, host) {
		t.Errorf("a synced copy changes on Forward:\n%s", cmp.Diff(host, again))
	}
}

// Attack cases: what a tenant cluster-admin writes, and what reaches the
// host. Refuse stops each; Forward, called regardless, never widens.
func TestAttacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tweak  func(*networkingv1.Ingress)
		refuse string
		check  func(t *testing.T, got *networkingv1.Ingress)
	}{{
		name:   "claiming another tenant's hostname",
		tweak:  func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "shop.t2.apps.example.com" },
		refuse: `"shop.t2.apps.example.com": hostname is not allowed`,
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if len(got.Spec.Rules) != 0 {
				t.Errorf("rules reached the host: %+v", got.Spec.Rules)
			}
		},
	}, {
		name: "claiming every tenant's apps with *.apps.example.com",
		tweak: func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].Host = "*.apps.example.com"
			i.Spec.TLS[0].Hosts[0] = "*.apps.example.com"
		},
		refuse: `"*.apps.example.com": hostname is not allowed`,
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if len(got.Spec.Rules) != 0 || len(got.Spec.TLS) != 0 {
				t.Errorf("the wildcard reached the host: %+v", got.Spec)
			}
		},
	}, {
		name: "a backend naming a host Service not its own (knestd's, another tenant's copy)",
		tweak: func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths = []networkingv1.HTTPIngressPath{path("knestd"), path("web-x-shop-x-t2")}
		},
		check: func(t *testing.T, got *networkingv1.Ingress) {
			for _, p := range got.Spec.Rules[0].HTTP.Paths {
				name := p.Backend.Service.Name
				if name == "knestd" || name == "web-x-shop-x-t2" || !strings.HasSuffix(name, translate.Separator+"acme") {
					t.Errorf("backend %q is not a host copy of this tenant's", name)
				}
			}
		},
	}, {
		name:  "a TLS secret named like another tenant's host copy or the host's own",
		tweak: func(i *networkingv1.Ingress) { i.Spec.TLS[0].SecretName = "shop-tls-x-shop-x-t2" },
		check: func(t *testing.T, got *networkingv1.Ingress) {
			name := got.Spec.TLS[0].SecretName
			if name == "shop-tls-x-shop-x-t2" || name == "shop-tls-x-shop-x-t2-x-shop-x-acme" || !strings.HasSuffix(name, translate.Separator+"acme") {
				t.Errorf("TLS secret %q could collide with another tenant's", name)
			}
		},
	}, {
		name:   "a default backend taking all unmatched traffic",
		tweak:  func(i *networkingv1.Ingress) { i.Spec.DefaultBackend = ptr.To(path("web").Backend) },
		refuse: "spec.defaultBackend: Forbidden",
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if got.Spec.DefaultBackend != nil {
				t.Error("defaultBackend reached the host")
			}
		},
	}, {
		name:   "a rule with no host",
		tweak:  func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "" },
		refuse: "spec.rules[0].host: Required value",
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if len(got.Spec.Rules) != 0 {
				t.Error("a hostless rule reached the host")
			}
		},
	}, {
		name: "a resource backend",
		tweak: func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Secret", Name: "knestd-encryption-key"}}
		},
		refuse: "backend.resource: Forbidden",
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if len(got.Spec.Rules[0].HTTP.Paths) != 0 {
				t.Errorf("a resource backend reached the host: %+v", got.Spec.Rules[0].HTTP.Paths)
			}
		},
	}, {
		name:   "a host class the tenant was not given, named directly",
		tweak:  func(i *networkingv1.Ingress) { i.Spec.IngressClassName = ptr.To("nginx-internal") },
		refuse: `spec.ingressClassName: Invalid value: "nginx-internal"`,
		check: func(t *testing.T, got *networkingv1.Ingress) {
			if got.Spec.IngressClassName != nil {
				t.Errorf("class %q reached the host", *got.Spec.IngressClassName)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ing := tenantIngress(tc.tweak)
			got := Refuse(ing, pol())
			if tc.refuse == "" && got != "" {
				t.Errorf("refused: %s", got)
			}
			if !strings.Contains(got, tc.refuse) {
				t.Errorf("refusal %q does not contain %q", got, tc.refuse)
			}
			tc.check(t, forward(t, ing, nil))
		})
	}
}

func TestBackward(t *testing.T) {
	t.Parallel()
	host := forward(t, tenantIngress(), nil)
	host.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "203.0.113.9", Ports: []networkingv1.IngressPortStatus{{Port: 443, Protocol: corev1.ProtocolTCP}}}}
	ing := tenantIngress()
	before := ing.DeepCopy()
	got := Backward(host, ing)
	if diff := cmp.Diff(before, ing); diff != "" {
		t.Errorf("Backward mutated the tenant Ingress:\n%s", diff)
	}
	if diff := cmp.Diff(host.Status, got.Status); diff != "" {
		t.Errorf("status (-host +tenant):\n%s", diff)
	}
	// No ping-pong: the tenant object with its status forwards to the same
	// host spec.
	if diff := cmp.Diff(host.Spec, Forward(got, host, meta, pol()).Spec); diff != "" {
		t.Errorf("status changed the host spec:\n%s", diff)
	}
}

func TestSecretRefs(t *testing.T) {
	t.Parallel()
	ing := tenantIngress(func(i *networkingv1.Ingress) {
		i.Spec.TLS = append(i.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{"a.acme.apps.example.com"}}, networkingv1.IngressTLS{Hosts: []string{"b.acme.apps.example.com"}, SecretName: "b"})
	})
	if diff := cmp.Diff([]string{"shop-tls", "b"}, SecretRefs(ing)); diff != "" {
		t.Errorf("SecretRefs (-want +got):\n%s", diff)
	}
}
