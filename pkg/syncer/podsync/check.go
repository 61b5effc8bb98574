package podsync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
)

// CheckHostRunsPods makes sure the host can run this tenant's pods under
// pol before anything is synced: a server-side dry-run create of a pod with
// the forced runtime class and placement, as the syncer's own (namespaced)
// identity. It is how a missing sandboxed RuntimeClass is found at start
// instead of by pods running unsandboxed or never starting: the identity
// cannot read RuntimeClasses. It returns the pool the admitted pod shows
// (see HostPool), or nil when the check could not run.
func CheckHostRunsPods(ctx context.Context, host kubernetes.Interface, namespace string, pol *policy.Policy) (*Pool, error) {
	admitted, err := dryRunHostPod(ctx, host, namespace, pol)
	if err == nil {
		return admittedPool(admitted), nil
	}
	if kerrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota") {
		// A full quota says nothing about the runtime class; pods will
		// wait for room, and their tenants see why in Events.
		klog.FromContext(ctx).Info("Host quota is full; the placement check could not run", "namespace", namespace, "err", err.Error())
		return nil, nil
	}
	if rc := pol.RuntimeClasses.Forced; rc != "" && strings.Contains(err.Error(), "RuntimeClass") {
		return nil, fmt.Errorf("the host cannot run this tenant's pods with RuntimeClass %q (%s profile): %w; install the RuntimeClass on the host (see manifests/runtimeclasses) or choose --isolation=soft", rc, pol.Profile, err)
	}
	return nil, fmt.Errorf("the host cannot run this tenant's pods in namespace %s (%s profile): %w", namespace, pol.Profile, err)
}

// dryRunHostPod creates a host pod with the forced runtime class and
// placement in a server-side dry run, and returns it as the host's
// admission left it.
func dryRunHostPod(ctx context.Context, host kubernetes.Interface, namespace string, pol *policy.Policy) (*corev1.Pod, error) {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "knest-placement-check", Namespace: namespace},
		Spec: corev1.PodSpec{
			ServiceAccountName: pods.HostServiceAccount,
			SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
			Containers:         []corev1.Container{{Name: "check", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	policy.ForceHostPod(probe, pol)
	return host.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// Pool is what makes a host node one of the tenant's: every host pod of
// the tenant gets NodeSelector and Tolerations.
type Pool struct {
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
}

// HostPool returns the node selector and tolerations every host pod of the
// tenant gets: the policy's placement and what the host's admission adds to
// it (the forced RuntimeClass's scheduling), read from a dry-run create,
// since the syncer's identity cannot read RuntimeClasses. If the dry run
// fails, the policy's placement alone.
func HostPool(ctx context.Context, host kubernetes.Interface, namespace string, pol *policy.Policy) Pool {
	admitted, err := dryRunHostPod(ctx, host, namespace, pol)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Failed to learn the host's node selector for the tenant's pods; the pool is the policy's placement alone")
		return Pool{NodeSelector: maps.Clone(pol.Placement.NodeSelector), Tolerations: slices.Clone(pol.Placement.Tolerations)}
	}
	return *admittedPool(admitted)
}

func admittedPool(admitted *corev1.Pod) *Pool {
	return &Pool{NodeSelector: admitted.Spec.NodeSelector, Tolerations: admitted.Spec.Tolerations}
}
