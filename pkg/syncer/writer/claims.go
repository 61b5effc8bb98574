package writer

import (
	"context"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/translate"
)

// claimKind names hostname claims in metrics.
const claimKind = "HostnameClaim"

// ClaimHostname claims hostname for this tenant's host namespace
// (pkg/hostclaim) and returns the namespace that holds it: this one, or
// the other tenant's that claimed it first. A claim of ours is left as it
// is.
func (w *Writer) ClaimHostname(ctx context.Context, hostname string) (holder string, err error) {
	name := hostclaim.Name(hostname)
	if name == "" {
		return "", fmt.Errorf("hostname %q cannot be claimed: too long", hostname)
	}
	key := types.NamespacedName{Namespace: hostclaim.Namespace, Name: name}
	var existing coordinationv1.Lease
	err = w.HostReader.Get(ctx, key, &existing)
	if err == nil {
		return ptr.Deref(existing.Spec.HolderIdentity, ""), nil
	}
	if !kerrors.IsNotFound(err) {
		return "", fmt.Errorf("failed to get hostname claim %s in host cluster: %w", key, err)
	}
	claim := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name,
			Labels:      map[string]string{hostclaim.LabelClaim: "true", translate.LabelTenant: w.Tenant},
			Annotations: map[string]string{hostclaim.AnnotationHostname: strings.ToLower(hostname)},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(w.HostNamespace)},
	}
	err = w.HostClient.Create(ctx, claim)
	if kerrors.IsAlreadyExists(err) {
		// Claimed since the read: by whom?
		if err := w.HostReader.Get(ctx, key, &existing); err != nil {
			return "", fmt.Errorf("failed to get hostname claim %s in host cluster: %w", key, err)
		}
		return ptr.Deref(existing.Spec.HolderIdentity, ""), nil
	}
	if err != nil {
		return "", fmt.Errorf("failed to claim hostname %s in host cluster: %w", hostname, err)
	}
	w.Metrics.HostWrite(claimKind, "create")
	return w.HostNamespace, nil
}

// ReleaseHostname deletes this tenant's claim of hostname, if it holds
// one.
func (w *Writer) ReleaseHostname(ctx context.Context, hostname string) error {
	name := hostclaim.Name(hostname)
	if name == "" {
		return nil
	}
	key := types.NamespacedName{Namespace: hostclaim.Namespace, Name: name}
	var claim coordinationv1.Lease
	if err := w.HostReader.Get(ctx, key, &claim); kerrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to get hostname claim %s in host cluster: %w", key, err)
	}
	if ptr.Deref(claim.Spec.HolderIdentity, "") != w.HostNamespace {
		return nil
	}
	err := w.HostClient.Delete(ctx, &claim, client.Preconditions{UID: &claim.UID})
	if err != nil && !kerrors.IsNotFound(err) {
		return fmt.Errorf("failed to release hostname claim %s in host cluster: %w", key, err)
	}
	w.Metrics.HostWrite(claimKind, "delete")
	return nil
}
