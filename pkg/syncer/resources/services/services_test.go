package services

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "web-x-shop-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme", translate.LabelNamespace: "shop"},
	Annotations: map[string]string{translate.AnnotationName: "web", translate.AnnotationUID: "u1"},
	Tenant:      "acme", TenantNamespace: "shop",
}

func tenantService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.7.7", ClusterIPs: []string{"10.96.7.7"},
			Selector:        map[string]string{"app": "web"},
			Ports:           []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
}

func TestForward(t *testing.T) {
	t.Parallel()
	// What the host API server defaults and the syncer does not own.
	hostDefaulted := func() *corev1.Service {
		h := Forward(tenantService(), nil, meta)
		h.UID, h.ResourceVersion = "host-uid", "9"
		h.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		h.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		h.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
		return h
	}
	tests := []struct {
		name   string
		tenant *corev1.Service
		host   *corev1.Service
		check  func(t *testing.T, got *corev1.Service)
	}{
		{
			name:   "a new copy has the tenant's IP, its ports and a confined selector",
			tenant: tenantService(),
			check: func(t *testing.T, got *corev1.Service) {
				if got.Spec.ClusterIP != "10.96.7.7" || got.Spec.Type != corev1.ServiceTypeClusterIP {
					t.Errorf("spec = %+v", got.Spec)
				}
				want := map[string]string{translate.TenantKey("app"): "web", translate.LabelTenant: "acme", translate.LabelNamespace: "shop"}
				if diff := cmp.Diff(want, got.Spec.Selector); diff != "" {
					t.Errorf("selector (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "host defaults are kept, so a synced pair is equal",
			tenant: tenantService(),
			host:   hostDefaulted(),
			check: func(t *testing.T, got *corev1.Service) {
				if diff := cmp.Diff(hostDefaulted(), got); diff != "" {
					t.Errorf("a synced host copy would be rewritten (-host +desired):\n%s", diff)
				}
			},
		},
		{
			name: "node ports and external IPs never reach the host",
			tenant: func() *corev1.Service {
				s := tenantService()
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalIPs = []string{"1.2.3.4"}
				return s
			}(),
			check: func(t *testing.T, got *corev1.Service) {
				if got.Spec.Ports[0].NodePort != 0 || len(got.Spec.ExternalIPs) != 0 {
					t.Errorf("spec = %+v", got.Spec)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := forwardtest.Forward(t, tc.tenant, tc.host, func(svc, host *corev1.Service) *corev1.Service { return Forward(svc, host, meta) })
			tc.check(t, got)
		})
	}
}

func TestRecreateOnlyForAnotherIP(t *testing.T) {
	t.Parallel()
	a, b := tenantService(), tenantService()
	if Recreate(a, b) {
		t.Errorf("same IP: no recreate")
	}
	b.Spec.ClusterIP = "None"
	if !Recreate(a, b) {
		t.Errorf("another IP: recreate")
	}
}
