package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/kubeconfig"
	"github.com/knest-dev/knest/pkg/syncer/rbac"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
)

// HostIdentityTokenSeconds is how long the token of a dev tenant's host
// identity lasts: a dev environment older than that needs a restart.
const HostIdentityTokenSeconds = 7 * 24 * 3600

// GrantHostIdentity creates the knestd ServiceAccount, Role and RoleBinding
// in a tenant's host namespace, requests a token for the ServiceAccount and
// writes a kubeconfig with it to path: the namespaced identity knestd syncs
// with, never host admin.
func GrantHostIdentity(ctx context.Context, client kubernetes.Interface, host *rest.Config, caFile, namespace, path string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: rbac.RoleName, Namespace: namespace}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create ServiceAccount %s/%s in host cluster: %w", namespace, sa.Name, err)
	}
	// Tenant pods run on the host as this ServiceAccount, without a token.
	workload := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: pods.HostServiceAccount, Namespace: namespace},
		AutomountServiceAccountToken: ptr.To(false),
	}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, workload, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create ServiceAccount %s/%s in host cluster: %w", namespace, workload.Name, err)
	}
	role, err := rbac.Role(namespace)
	if err != nil {
		return err
	}
	if _, err := client.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		existing, gerr := client.RbacV1().Roles(namespace).Get(ctx, role.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		existing.Rules = role.Rules
		if _, err := client.RbacV1().Roles(namespace).Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to update Role %s/%s in host cluster: %w", namespace, role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("failed to create Role %s/%s in host cluster: %w", namespace, role.Name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: rbac.RoleName, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: rbac.RoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: rbac.RoleName, Namespace: namespace}},
	}
	if _, err := client.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create RoleBinding %s/%s in host cluster: %w", namespace, binding.Name, err)
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, rbac.RoleName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](HostIdentityTokenSeconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to request a token for %s/%s in host cluster: %w", namespace, rbac.RoleName, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return kubeconfig.Client{Name: "host", Server: host.Host, CAFile: caFile, Token: tr.Status.Token}.Write(path)
}

// APIServiceName is the host Service in front of a tenant's knestd; the
// tenant's default/kubernetes Service carries its ClusterIP.
const APIServiceName = "knestd"

// EnsureAPIService creates the host Service in front of a tenant's knestd
// and returns its ClusterIP. In a dev environment knestd is a local process,
// so the Service has no endpoints; on a real host the chart's Service selects
// the knestd pod.
func EnsureAPIService(ctx context.Context, client kubernetes.Interface, namespace string) (string, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: namespace, Labels: map[string]string{"knest.io/component": "apiserver"}},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(6443)}},
		},
	}
	created, err := client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Services(namespace).Get(ctx, APIServiceName, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("failed to create the tenant API Service %s/%s in host cluster: %w", namespace, APIServiceName, err)
	}
	return created.Spec.ClusterIP, nil
}
