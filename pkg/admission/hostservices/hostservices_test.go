package hostservices

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/kubernetes/pkg/apis/core"

	"github.com/knest-dev/knest/pkg/translate"
)

func svc(tweak func(*core.Service)) *core.Service {
	s := &core.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web", translate.LabelTenant: "spoof"}},
		Spec: core.ServiceSpec{
			Type:     core.ServiceTypeClusterIP,
			Selector: map[string]string{"app": "web"},
			Ports:    []core.ServicePort{{Name: "http", Protocol: core.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}},
		},
	}
	if tweak != nil {
		tweak(s)
	}
	return s
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		namespace string
		svc       *core.Service
		wantErr   string
	}{
		{name: "a ClusterIP Service is allowed", namespace: "shop", svc: svc(nil)},
		{name: "a headless Service is allowed", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.ClusterIP = core.ClusterIPNone })},
		{name: "NodePort is refused", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.Type = core.ServiceTypeNodePort }), wantErr: "spec.type NodePort is not allowed"},
		{name: "LoadBalancer is refused", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.Type = core.ServiceTypeLoadBalancer }), wantErr: "spec.type LoadBalancer is not allowed"},
		{name: "ExternalName is refused", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.Type = core.ServiceTypeExternalName }), wantErr: "spec.type ExternalName is not allowed"},
		{name: "externalIPs are refused", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.ExternalIPs = []string{"1.2.3.4"} }), wantErr: "spec.externalIPs [1.2.3.4] is not allowed"},
		{name: "a chosen ClusterIP is refused", namespace: "shop", svc: svc(func(s *core.Service) { s.Spec.ClusterIP = "10.96.5.5" }), wantErr: "spec.clusterIP 10.96.5.5 cannot be chosen"},
		{
			name: "the tenant API server's own Service is the API server's business", namespace: "default",
			svc: svc(func(s *core.Service) { s.Name = "kubernetes"; s.Spec.ClusterIP = "10.96.0.1" }),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tc.namespace, tc.svc)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestHostService(t *testing.T) {
	t.Parallel()
	in := svc(nil)
	before := in.DeepCopy()
	got := HostService("acme", "knest-acme", "shop", in)
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-x-shop-x-acme", Namespace: "knest-acme",
			Labels: map[string]string{"t.knest.io/app": "web", "tp.knest.io/knest.io_tenant": "spoof", translate.LabelTenant: "acme", translate.LabelNamespace: "shop"},
			Annotations: map[string]string{
				translate.AnnotationName: "web", translate.AnnotationNamespace: "shop", translate.AnnotationKind: "Service", translate.AnnotationUID: "",
			},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"t.knest.io/app": "web", translate.LabelTenant: "acme", translate.LabelNamespace: "shop"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HostService (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("HostService mutated the tenant Service:\n%s", diff)
	}
}

func TestServiceIPObjectsOnlyFromTheAPIServerItself(t *testing.T) {
	t.Parallel()
	p, err := NewFactory(nil, "acme", "knest-acme")(nil)
	if err != nil {
		t.Fatal(err)
	}
	plugin := p.(*Plugin)
	for _, res := range []string{"servicecidrs", "ipaddresses"} {
		gvr := schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: res}
		for _, tc := range []struct {
			user    string
			groups  []string
			allowed bool
		}{
			{user: user.APIServerUser, groups: []string{user.SystemPrivilegedGroup}, allowed: true},
			{user: "knest-admin", groups: []string{user.SystemPrivilegedGroup}, allowed: false},
			{user: "system:serviceaccount:default:ci", allowed: false},
		} {
			a := admission.NewAttributesRecord(nil, nil, schema.GroupVersionKind{}, "", "x", gvr, "", admission.Create, nil, false,
				&user.DefaultInfo{Name: tc.user, Groups: tc.groups})
			err := plugin.Admit(context.Background(), a, nil)
			if tc.allowed && err != nil {
				t.Errorf("%s creating %s: %v, want allowed", tc.user, res, err)
			}
			if !tc.allowed && (err == nil || !strings.Contains(err.Error(), "managed by the host cluster")) {
				t.Errorf("%s creating %s: %v, want Forbidden", tc.user, res, err)
			}
		}
	}
}

// A Service created with generateName has no name yet at mutating
// admission: each gets its own generated name, and so its own host copy and
// host IP, rather than all sharing the copy of the empty name.
func TestGeneratedNamesGetTheirOwnHostService(t *testing.T) {
	t.Parallel()
	host := fake.NewClientset()
	p, err := NewFactory(host, "acme", "knest-acme")(nil)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	seen := map[string]bool{}
	for range 2 {
		s := svc(func(s *core.Service) { s.Name, s.GenerateName = "", "latency-svc-" })
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
		a := admission.NewAttributesRecord(s, nil, schema.GroupVersionKind{Version: "v1", Kind: "Service"}, "default", "", gvr, "", admission.Create, nil, false,
			&user.DefaultInfo{Name: "admin"})
		if err := p.(*Plugin).Admit(context.Background(), a, nil); err != nil {
			t.Fatalf("Admit: %v", err)
		}
		if !strings.HasPrefix(s.Name, "latency-svc-") || len(s.Name) == len("latency-svc-") || seen[s.Name] {
			t.Fatalf("tenant Service named %q, want a new name generated from latency-svc-", s.Name)
		}
		seen[s.Name] = true
		want := translate.HostName("acme", "default", s.Name, translate.MaxLabelLength)
		if _, err := host.CoreV1().Services("knest-acme").Get(context.Background(), want, metav1.GetOptions{}); err != nil {
			t.Errorf("no host Service %s for tenant Service %s: %v", want, s.Name, err)
		}
	}
	if list, _ := host.CoreV1().Services("knest-acme").List(context.Background(), metav1.ListOptions{}); len(list.Items) != 2 {
		t.Errorf("%d host Services, want one for each generated tenant Service", len(list.Items))
	}
}
