package pods

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the token Secret.
const (
	// CAKey holds the tenant cluster's CA bundle.
	CAKey = "ca.crt"
)

// TokenKey is the token Secret key of the i-th service-account token
// projection of a pod (counted over its volumes in order).
func TokenKey(i int) string {
	return "token-" + strconv.Itoa(i)
}

// TokenSecretName is the name of the host Secret that carries the tokens of
// the host pod hostPodName. It is a hash, so it never contains the "-x-"
// every host copy of a tenant object has: no tenant Secret can take it.
func TokenSecretName(hostPodName string) string {
	sum := sha256.Sum256([]byte(hostPodName))
	return "knest-token-" + hex.EncodeToString(sum[:16])
}

// HostMinted reports whether a token projection of a tenant pod is served
// by a token the host kubelet mints (audience is the tenant's host token
// audience, pkg/hosttoken): a projection with no audience of its own, whose
// token is for the tenant API server. Projections with an audience the
// tenant chose get tokens the tenant API server issues, through the pod's
// token Secret. With no audience (host-minted tokens off), none is.
func HostMinted(p corev1.ServiceAccountTokenProjection, audience string) bool {
	return audience != "" && p.Audience == ""
}

// HostTokenAudience returns the audience of the host-minted token a host
// pod mounts, or "" if it mounts none (a pod made before host-minted tokens,
// or one whose tokens all have audiences of their own).
func HostTokenAudience(h *corev1.Pod) string {
	for _, v := range h.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return s.ServiceAccountToken.Audience
			}
		}
	}
	return ""
}

// SecretTokenProjections returns the service-account token projections of
// tenant pod p that its token Secret carries, in the order TokenKey counts
// them; audience is the host pod's HostTokenAudience.
func SecretTokenProjections(p *corev1.Pod, audience string) []corev1.ServiceAccountTokenProjection {
	var out []corev1.ServiceAccountTokenProjection
	for _, v := range p.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && !HostMinted(*s.ServiceAccountToken, audience) {
				out = append(out, *s.ServiceAccountToken)
			}
		}
	}
	return out
}

// checkHostTokens refuses a host pod with a token projection of any
// audience but the tenant's host token audience: the host kubelet mints
// whatever a host pod asks for, and a token for the host API server's
// audience would be a host credential in a tenant's hands.
func checkHostTokens(h *corev1.Pod, audience string) error {
	for _, v := range h.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken == nil {
				continue
			}
			if a := s.ServiceAccountToken.Audience; a == "" || a != audience || !strings.HasPrefix(a, AudiencePrefix) {
				return fmt.Errorf("volume %s would get a host token for audience %q, not the tenant's %q", v.Name, a, audience)
			}
		}
	}
	return nil
}

// AudiencePrefix starts every host token audience (pkg/hosttoken's).
const AudiencePrefix = "knest:"

// tokenVolume turns a projected volume with service-account tokens into one
// that reads them from a host-minted token (HostMinted, for the host token
// audience, same path and lifetime: the host kubelet renews it) or from the
// token Secret; the tenant CA comes from the host copy of the namespace's
// kube-root-ca.crt ConfigMap (ConfigMapRefs syncs it, one per namespace);
// its other sources are forwarded as usual. next counts the Secret's token
// projections across the pod's volumes.
func tokenVolume(v corev1.Volume, secret, audience string, next *int, names func(string) string) corev1.Volume {
	out := corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: v.Projected.DefaultMode,
	}}}
	fromSecret := func(items []corev1.KeyToPath) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Items: items,
		}}
	}
	var rest []corev1.VolumeProjection
	for _, s := range v.Projected.Sources {
		switch {
		case s.ServiceAccountToken != nil && HostMinted(*s.ServiceAccountToken, audience):
			out.Projected.Sources = append(out.Projected.Sources, corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: audience, ExpirationSeconds: s.ServiceAccountToken.ExpirationSeconds, Path: s.ServiceAccountToken.Path,
			}})
		case s.ServiceAccountToken != nil:
			out.Projected.Sources = append(out.Projected.Sources, fromSecret([]corev1.KeyToPath{{Key: TokenKey(*next), Path: s.ServiceAccountToken.Path}}))
			*next++
		default:
			rest = append(rest, s)
		}
	}
	if len(rest) > 0 {
		others := forwardVolume(corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: rest}}}, names)
		out.Projected.Sources = append(out.Projected.Sources, others.Projected.Sources...)
	}
	return out
}
