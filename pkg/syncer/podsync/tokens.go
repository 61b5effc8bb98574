package podsync

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

const (
	// kindToken is the knest.io/kind of a host pod's token Secret.
	kindToken = "ServiceAccountToken"
	// annotationTokenRefresh says when a token Secret's tokens are due for
	// renewal. Never the tokens themselves: they live in the data only.
	annotationTokenRefresh = "knest.io/token-refresh-at"
	// defaultTokenExpiration is what a projection without an expiration
	// asks for, as in the API.
	defaultTokenExpiration = int64(3600)
	// maxTokenAge is the latest a token is renewed, whatever its lifetime,
	// as a kubelet does.
	maxTokenAge = 24 * time.Hour
)

// tokenIssuer delivers a tenant pod's service-account tokens that the host
// kubelet does not mint (pods.HostMinted) to its host pod: issued by the tenant API server (TokenRequest bound to the tenant pod,
// with the pod's audience and expiry), held in a host Secret the host pod
// owns (so the host deletes it with the pod), renewed at 80% of their life.
type tokenIssuer struct {
	w *writer.Writer
	// caData is the tenant cluster's CA bundle.
	caData []byte
}

// ensure makes h's token Secret hold valid tokens for t, and returns when to
// look again (0: no tokens).
func (ti *tokenIssuer) ensure(ctx context.Context, t, h *corev1.Pod) (time.Duration, error) {
	return ti.issue(ctx, t, h, false)
}

// issue is ensure; fresh says h was just created, so its Secret is most
// likely missing: it is created without reading first (one host request
// per pod less), and read only if the create finds one.
func (ti *tokenIssuer) issue(ctx context.Context, t, h *corev1.Pod, fresh bool) (time.Duration, error) {
	projections := pods.SecretTokenProjections(t, pods.HostTokenAudience(h))
	if len(projections) == 0 {
		return 0, nil
	}
	key := types.NamespacedName{Namespace: h.Namespace, Name: pods.TokenSecretName(h.Name)}
	existing := &corev1.Secret{}
	var err error
	if fresh {
		err = kerrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	} else {
		err = ti.w.HostClient.Get(ctx, key, existing)
	}
	if kerrors.IsNotFound(err) && !fresh {
		// The cache may not have a Secret made moments ago: ask the host
		// before issuing tokens again.
		err = ti.w.HostReader.Get(ctx, key, existing)
	}
	if kerrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return 0, fmt.Errorf("failed to get Secret %s in host cluster: %w", key, err)
	}
	now := time.Now()
	if existing != nil && ownedBy(existing, h) {
		if at, err := time.Parse(time.RFC3339, existing.Annotations[annotationTokenRefresh]); err == nil && now.Before(at) && len(existing.Data) == len(projections)+1 {
			return at.Sub(now), nil
		}
	}

	data := map[string][]byte{pods.CAKey: ti.caData}
	refresh := now.Add(maxTokenAge)
	for i, p := range projections {
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To(ptr.Deref(p.ExpirationSeconds, defaultTokenExpiration)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: t.Name, UID: t.UID},
		}}
		if p.Audience != "" {
			tr.Spec.Audiences = []string{p.Audience}
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Spec.ServiceAccountName}}
		if err := ti.w.TenantClient.SubResource("token").Create(ctx, sa, tr); err != nil {
			return 0, fmt.Errorf("failed to request a token for ServiceAccount %s/%s in tenant cluster: %w", sa.Namespace, sa.Name, err)
		}
		ti.w.Metrics.TenantWrite("TokenRequest", "create")
		data[pods.TokenKey(i)] = []byte(tr.Status.Token)
		lifetime := tr.Status.ExpirationTimestamp.Sub(now)
		if at := now.Add(lifetime * 8 / 10); at.Before(refresh) {
			refresh = at
		}
	}

	id := translate.Object{Kind: kindToken, Namespace: t.Namespace, Name: t.Name, UID: t.UID}
	labels, annotations := translate.HostMeta(ti.w.Tenant, id, nil, nil, translate.Passthrough{})
	annotations[annotationTokenRefresh] = refresh.UTC().Format(time.RFC3339)
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: h.Name, UID: h.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	switch {
	case existing == nil:
		if err := ti.w.HostClient.Create(ctx, desired); kerrors.IsAlreadyExists(err) && fresh {
			// Left by an earlier pod of the same name: read it, then
			// replace it.
			return ti.issue(ctx, t, h, false)
		} else if err != nil && !kerrors.IsAlreadyExists(err) {
			return 0, fmt.Errorf("failed to create Secret %s in host cluster: %w", key, err)
		}
		ti.w.Metrics.HostWrite(kindToken, "create")
	case !equality.Semantic.DeepEqual(existing.Data, desired.Data) || !ownedBy(existing, h):
		desired.ResourceVersion = existing.ResourceVersion
		if err := ti.w.HostClient.Update(ctx, desired); err != nil {
			return 0, fmt.Errorf("failed to update Secret %s in host cluster: %w", key, err)
		}
		ti.w.Metrics.HostWrite(kindToken, "update")
	}
	return refresh.Sub(now), nil
}

// ownedBy reports whether a token Secret belongs to host pod h (and not to
// an earlier pod of the same name).
func ownedBy(s *corev1.Secret, h *corev1.Pod) bool {
	for _, ref := range s.OwnerReferences {
		if ref.Kind == "Pod" && ref.UID == h.UID {
			return true
		}
	}
	return false
}
