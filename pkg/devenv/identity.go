package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/kubeconfig"
)

// HostIdentityTokenSeconds is how long the token of a dev tenant's host
// identity lasts: a dev environment older than that needs a restart.
const HostIdentityTokenSeconds = 7 * 24 * 3600

// GrantHostIdentity requests a token for the knestd ServiceAccount that
// the chart installed in a tenant's host namespace (InstallPolicies), bound
// to the namespaced knestd Role, and writes a kubeconfig with it to path:
// the identity knestd syncs with, never host admin.
func GrantHostIdentity(ctx context.Context, client kubernetes.Interface, host *rest.Config, caFile, namespace, path string) error {
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, charts.KnestdRoleName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](HostIdentityTokenSeconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to request a token for %s/%s in host cluster: %w", namespace, charts.KnestdRoleName, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return kubeconfig.Client{Name: "host", Server: host.Host, CAFile: caFile, Token: tr.Status.Token}.Write(path)
}

// APIServiceName is the host Service in front of a tenant's knestd; the
// tenant's default/kubernetes Service carries its ClusterIP.
const APIServiceName = "knestd"

// DNSTargetPort is the port of knestd's DNS server behind the host
// Service's port 53: knestd's default --dns-address port, unprivileged.
const DNSTargetPort = 10053

// apiServicePorts are the ports of the host Service in front of knestd: the
// tenant API server, and DNS for the tenant's pods over UDP and TCP.
var apiServicePorts = []corev1.ServicePort{
	{Name: "https", Port: 443, TargetPort: intstr.FromInt32(6443), Protocol: corev1.ProtocolTCP},
	{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(DNSTargetPort), Protocol: corev1.ProtocolUDP},
	{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(DNSTargetPort), Protocol: corev1.ProtocolTCP},
}

// EnsureAPIService makes sure the host Service in front of a tenant's
// knestd exists, with the ports of its API server and its DNS server, and
// returns its ClusterIP: the tenant's default/kubernetes Service and the
// nameserver of the tenant's pods. The chart (InstallPolicies) usually made
// it already; in a dev environment knestd is a local process, so the
// Service has no endpoints; on a real host the chart's Service selects the
// knestd pod.
//
// It reads before it creates: a Service created over an existing one is
// refused, but the host's API server has allocated a ClusterIP for it
// first (an IPAddress object), which its repair loop finds pointing at the
// existing Service and deletes, with an error in its log and a Warning
// Event, once for every tenant of every `knest dev up`
// (kubernetes/kubernetes#132321).
func EnsureAPIService(ctx context.Context, client kubernetes.Interface, namespace string) (string, error) {
	services := client.CoreV1().Services(namespace)
	svc, err := services.Get(ctx, APIServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		svc, err = services.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: namespace, Labels: map[string]string{"knest.io/component": "apiserver"}},
			Spec: corev1.ServiceSpec{
				Type:  corev1.ServiceTypeClusterIP,
				Ports: slices.Clone(apiServicePorts),
			},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Made meanwhile.
			svc, err = services.Get(ctx, APIServiceName, metav1.GetOptions{})
		}
	case err == nil && !hasPort(svc, "dns"):
		// Made by an earlier version, without DNS.
		svc.Spec.Ports = slices.Clone(apiServicePorts)
		svc, err = services.Update(ctx, svc, metav1.UpdateOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("failed to create the tenant API Service %s/%s in host cluster: %w", namespace, APIServiceName, err)
	}
	return svc.Spec.ClusterIP, nil
}

func hasPort(svc *corev1.Service, name string) bool {
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == name })
}
