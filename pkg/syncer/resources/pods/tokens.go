package pods

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the token Secret.
const (
	// CAKey holds the tenant cluster's CA bundle.
	CAKey = "ca.crt"
	// rootCAConfigMap is the ConfigMap the tenant's token volumes read the
	// CA from; on the host the token Secret carries it instead.
	rootCAConfigMap = "kube-root-ca.crt"
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

// TokenProjections returns the pod's service-account token projections in
// the order TokenKey counts them.
func TokenProjections(p *corev1.Pod) []corev1.ServiceAccountTokenProjection {
	var out []corev1.ServiceAccountTokenProjection
	for _, v := range p.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				out = append(out, *s.ServiceAccountToken)
			}
		}
	}
	return out
}

// tokenVolume turns a projected volume with service-account tokens into one
// that reads them, and the tenant CA, from the token Secret; its other
// sources are forwarded as usual. next counts token projections across the
// pod's volumes.
func tokenVolume(v corev1.Volume, secret string, next *int, names func(string) string) corev1.Volume {
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
		case s.ServiceAccountToken != nil:
			out.Projected.Sources = append(out.Projected.Sources, fromSecret([]corev1.KeyToPath{{Key: TokenKey(*next), Path: s.ServiceAccountToken.Path}}))
			*next++
		case s.ConfigMap != nil && s.ConfigMap.Name == rootCAConfigMap:
			items := []corev1.KeyToPath{{Key: CAKey, Path: CAKey}}
			if len(s.ConfigMap.Items) > 0 {
				items = nil
				for _, it := range s.ConfigMap.Items {
					if it.Key == CAKey {
						items = append(items, corev1.KeyToPath{Key: CAKey, Path: it.Path, Mode: it.Mode})
					}
				}
			}
			out.Projected.Sources = append(out.Projected.Sources, fromSecret(items))
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

// IsRootCAInTokenVolume reports whether a ConfigMap reference is the root CA
// source of a service-account token volume, which the token Secret replaces
// on the host.
func IsRootCAInTokenVolume(v corev1.Volume, s corev1.VolumeProjection) bool {
	return s.ConfigMap != nil && s.ConfigMap.Name == rootCAConfigMap && IsServiceAccountTokenVolume(v)
}
