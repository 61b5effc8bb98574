package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	psapi "k8s.io/pod-security-admission/api"

	"github.com/knest-dev/knest/pkg/policy"
)

// NamespaceLabels are the labels of a tenant's host namespace: the tenant
// it holds, and Pod Security admission at the profile's floor (baseline in
// both: the host must not refuse the root pods hard runs sandboxed) for
// enforce, audit and warn. Helm does not own
// a namespace that exists before the release, so the CLI sets them.
func NamespaceLabels(tenant string, profile policy.Profile) map[string]string {
	level := string(profile.PodSecurityLevel())
	return map[string]string{
		LabelNamespaceTenant:    tenant,
		psapi.EnforceLevelLabel: level,
		psapi.AuditLevelLabel:   level,
		psapi.WarnLevelLabel:    level,
	}
}

// Namespace is a tenant's host namespace as `knest create` makes it.
func Namespace(name, tenant string, profile policy.Profile) *corev1.Namespace {
	labels := NamespaceLabels(tenant, profile)
	labels[LabelCreatedBy] = "knest"
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}
}

// EnsureNamespace creates a tenant's host namespace, or labels an existing
// one, and reports whether it created it. A namespace that holds another
// tenant is refused: one tenant per namespace.
func EnsureNamespace(ctx context.Context, c kubernetes.Interface, name, tenant string, profile policy.Profile) (created bool, err error) {
	_, err = c.CoreV1().Namespaces().Create(ctx, Namespace(name, tenant, profile), metav1.CreateOptions{})
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("failed to create namespace %s in host cluster: %w", name, err)
	}
	ns, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("failed to read namespace %s in host cluster: %w", name, err)
	}
	if other := ns.Labels[LabelNamespaceTenant]; other != "" && other != tenant {
		return false, fmt.Errorf("namespace %s holds tenant %q: one tenant per namespace (choose another with -n)", name, other)
	}
	if ns.DeletionTimestamp != nil {
		return false, fmt.Errorf("namespace %s is being deleted: wait until it is gone, or choose another with -n", name)
	}
	want := NamespaceLabels(tenant, profile)
	have := map[string]string{}
	for k := range want {
		if v, ok := ns.Labels[k]; ok {
			have[k] = v
		}
	}
	if maps.Equal(have, want) {
		return false, nil
	}
	if err := patchLabels(ctx, c, name, want); err != nil {
		return false, fmt.Errorf("failed to label namespace %s in host cluster: %w", name, err)
	}
	return false, nil
}

// ReleaseNamespace removes the labels that tie a namespace to a tenant, so
// another may move in. The Pod Security labels stay: they only tighten.
func ReleaseNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	err := patchLabels(ctx, c, name, map[string]*string{LabelNamespaceTenant: nil, LabelCreatedBy: nil})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to unlabel namespace %s in host cluster: %w", name, err)
	}
	return nil
}

// patchLabels merges labels (a nil value removes one) into a namespace.
func patchLabels[V string | *string](ctx context.Context, c kubernetes.Interface, name string, labels map[string]V) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}
