package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceEnv(t *testing.T) {
	t.Parallel()
	svc := func(name, ip string, ports ...corev1.ServicePort) corev1.Service {
		return corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	tests := []struct {
		name     string
		services []corev1.Service
		want     []corev1.EnvVar
	}{
		{
			name: "a service with a named port gets host, port and link variables",
			services: []corev1.Service{svc("my-db", "10.96.0.20",
				corev1.ServicePort{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP})},
			want: []corev1.EnvVar{
				{Name: "MY_DB_SERVICE_HOST", Value: "10.96.0.20"},
				{Name: "MY_DB_SERVICE_PORT", Value: "5432"},
				{Name: "MY_DB_SERVICE_PORT_SQL", Value: "5432"},
				{Name: "MY_DB_PORT", Value: "tcp://10.96.0.20:5432"},
				{Name: "MY_DB_PORT_5432_TCP", Value: "tcp://10.96.0.20:5432"},
				{Name: "MY_DB_PORT_5432_TCP_PROTO", Value: "tcp"},
				{Name: "MY_DB_PORT_5432_TCP_PORT", Value: "5432"},
				{Name: "MY_DB_PORT_5432_TCP_ADDR", Value: "10.96.0.20"},
			},
		},
		{
			name: "headless services and services without ports give nothing; output is sorted by name",
			services: []corev1.Service{
				svc("zeta", "fd00::9", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}),
				svc("headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
				svc("empty", "10.96.0.9"),
			},
			want: []corev1.EnvVar{
				{Name: "ZETA_SERVICE_HOST", Value: "fd00::9"},
				{Name: "ZETA_SERVICE_PORT", Value: "53"},
				{Name: "ZETA_PORT", Value: "udp://[fd00::9]:53"},
				{Name: "ZETA_PORT_53_UDP", Value: "udp://[fd00::9]:53"},
				{Name: "ZETA_PORT_53_UDP_PROTO", Value: "udp"},
				{Name: "ZETA_PORT_53_UDP_PORT", Value: "53"},
				{Name: "ZETA_PORT_53_UDP_ADDR", Value: "fd00::9"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, ServiceEnv(tt.services)); diff != "" {
				t.Errorf("ServiceEnv (-want +got):\n%s", diff)
			}
		})
	}
}
