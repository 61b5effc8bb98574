package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"
)

func exposurePolicy() *Policy {
	p := Default(ProfileHard)
	p.Exposure = Exposure{Tenant: "t1", IngressClasses: map[string]string{"web": "nginx-shared"}}
	return p
}

func ingressSpec(tweaks ...func(*networkingv1.IngressSpec)) *networkingv1.IngressSpec {
	s := &networkingv1.IngressSpec{
		IngressClassName: ptr.To("web"),
		Rules: []networkingv1.IngressRule{{
			Host: "shop.t1.apps.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}},
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"shop.t1.apps.example.com"}, SecretName: "shop-tls"}},
	}
	for _, t := range tweaks {
		t(s)
	}
	return s
}

func TestAllowsHostname(t *testing.T) {
	t.Parallel()
	e := Exposure{Tenant: "t1", Hostnames: []string{"*.t1.apps.example.com", "shop.example.com"}}
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"a.t1.apps.example.com", true},
		{"A.T1.apps.example.com", true},
		{"*.t1.apps.example.com", true},
		{"shop.example.com", true},
		{"t1.apps.example.com", false},
		{"a.b.t1.apps.example.com", false},
		{"*.b.t1.apps.example.com", false},
		{"*.apps.example.com", false},
		{"a.t2.apps.example.com", false},
		{"x.shop.example.com", false},
		{"evil-t1.apps.example.com", false},
		{"", false},
	} {
		if got := e.AllowsHostname(tc.host); got != tc.want {
			t.Errorf("AllowsHostname(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestDefaultHostnames(t *testing.T) {
	t.Parallel()
	if got := (Exposure{Tenant: "demo"}).AllowedHostnames(); len(got) != 1 || got[0] != "*.demo.apps.example.com" {
		t.Errorf("default hostnames = %q, want *.demo.apps.example.com", got)
	}
	if got := (Exposure{Tenant: "demo", BaseDomain: "apps.corp.net"}).AllowedHostnames(); len(got) != 1 || got[0] != "*.demo.apps.corp.net" {
		t.Errorf("hostnames under a base domain = %q", got)
	}
	if got := (Exposure{Tenant: "demo", Hostnames: []string{}}).AllowedHostnames(); len(got) != 0 {
		t.Errorf("an empty list must allow none, got %q", got)
	}
}

func TestCheckIngress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec *networkingv1.IngressSpec
		// want is a substring of each refusal, in order; none: allowed.
		want []string
	}{
		{name: "a rule and TLS host under the tenant's wildcard are allowed", spec: ingressSpec()},
		{name: "a wildcard host equal to the allowed one is allowed", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.Rules[0].Host = "*.t1.apps.example.com"
		})},
		{name: "another tenant's host is refused (tenant cluster-admin claiming t2's app)", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.Rules[0].Host = "shop.t2.apps.example.com"
		}), want: []string{`spec.rules[0].host: Invalid value: "shop.t2.apps.example.com": hostname is not allowed`}},
		{name: "a wildcard broader than allowed is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.Rules[0].Host = "*.apps.example.com"
		}), want: []string{`spec.rules[0].host: Invalid value: "*.apps.example.com"`}},
		{name: "a TLS host outside the allowlist is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.TLS[0].Hosts = []string{"bank.example.com"}
		}), want: []string{`spec.tls[0].hosts[0]: Invalid value: "bank.example.com"`}},
		{name: "TLS without hosts is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.TLS[0].Hosts = nil
		}), want: []string{`spec.tls[0].hosts: Required value: TLS without hosts`}},
		{name: "a rule without a host is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.Rules[0].Host = ""
		}), want: []string{`spec.rules[0].host: Required value: a rule without a host`}},
		{name: "a default backend is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web"}}
		}), want: []string{`spec.defaultBackend: Forbidden`}},
		{name: "a resource backend is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{Resource: nil}
			s.Rules[0].HTTP.Paths[0].Backend.Resource = &corev1TypedRef
		}), want: []string{`spec.rules[0].http.paths[0].backend.resource: Forbidden`}},
		{name: "a class the operator did not allow is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.IngressClassName = ptr.To("nginx-shared")
		}), want: []string{`spec.ingressClassName: Invalid value: "nginx-shared": IngressClass is not allowed for this tenant; use one of "web"`}},
		{name: "no class and no default class is refused", spec: ingressSpec(func(s *networkingv1.IngressSpec) {
			s.IngressClassName = nil
		}), want: []string{`spec.ingressClassName: Required value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := CheckIngress(tc.spec, exposurePolicy())
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d refusals (%v), want %d", len(errs), errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("refusal %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestIngressDefaultClass(t *testing.T) {
	t.Parallel()
	p := exposurePolicy()
	p.Exposure.DefaultIngressClass = "web"
	if errs := CheckIngress(ingressSpec(func(s *networkingv1.IngressSpec) { s.IngressClassName = nil }), p); len(errs) != 0 {
		t.Errorf("an Ingress naming no class takes the default class, got %v", errs)
	}
	if host, ok := p.Exposure.HostIngressClass(nil); !ok || host != "nginx-shared" {
		t.Errorf("HostIngressClass(nil) = %q, %v; want nginx-shared", host, ok)
	}
}

func TestValidateExposure(t *testing.T) {
	t.Parallel()
	p := exposurePolicy()
	p.Exposure.Hostnames = []string{"*.com", "ok.example.com", "bad_name.example.com"}
	p.Exposure.DefaultIngressClass = "missing"
	err := p.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{"exposure.hostnames[0]", "exposure.hostnames[2]", "exposure.defaultIngressClass"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), "exposure.hostnames[1]") {
		t.Errorf("a valid hostname was refused: %v", err)
	}
}

var corev1TypedRef = corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "assets"}
