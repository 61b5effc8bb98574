// Package secrets translates tenant Secrets to host Secrets.
//
// Forward (tenant -> host): data, immutable and type, except that
// service-account-token Secrets become Opaque: on the host the token
// controller would fill such a Secret with a token of a host ServiceAccount
// named in its annotations, handing the tenant a host identity. The metadata
// the syncer owns flows too; tenant annotations do not. Nothing flows back.
package secrets

import (
	"bytes"
	"maps"

	corev1 "k8s.io/api/core/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// Forward returns the desired host Secret for tenant Secret s. host is the
// current host copy or nil; fields the syncer does not own are kept from it.
// Neither input is modified.
func Forward(s, host *corev1.Secret, meta translate.Meta) *corev1.Secret {
	out := &corev1.Secret{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	out.Data = nil
	if s.Data != nil {
		out.Data = make(map[string][]byte, len(s.Data))
		for k, v := range s.Data {
			out.Data[k] = append([]byte(nil), v...)
		}
	}
	// StringData is write-only: the API server has already merged it into
	// Data on the tenant side.
	out.StringData = nil
	out.Immutable = s.Immutable
	out.Type = HostType(s.Type)
	return out
}

// HostType is the type a tenant Secret has on the host.
func HostType(t corev1.SecretType) corev1.SecretType {
	switch t {
	case "":
		return corev1.SecretTypeOpaque
	case corev1.SecretTypeServiceAccountToken:
		return corev1.SecretTypeOpaque
	}
	return t
}

// Recreate reports whether host cannot be updated to desired in place: the
// type of a Secret is immutable, and so is all of an immutable Secret.
func Recreate(desired, host *corev1.Secret) bool {
	return host.Type != desired.Type || (host.Immutable != nil && *host.Immutable && !maps.EqualFunc(host.Data, desired.Data, bytes.Equal))
}
