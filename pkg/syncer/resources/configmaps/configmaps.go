// Package configmaps translates tenant ConfigMaps to host ConfigMaps.
//
// Forward (tenant -> host): data, binaryData, immutable; the metadata the
// syncer owns (name, labels, identity annotations). Tenant annotations do not
// flow. Nothing flows back: a ConfigMap has no status.
package configmaps

import (
	"bytes"
	"maps"

	corev1 "k8s.io/api/core/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// Forward returns the desired host ConfigMap for tenant ConfigMap cm. host is
// the current host copy or nil; fields the syncer does not own are kept from
// it. Neither input is modified.
func Forward(cm, host *corev1.ConfigMap, meta translate.Meta) *corev1.ConfigMap {
	out := &corev1.ConfigMap{}
	if host != nil {
		out = host.DeepCopy()
	}
	meta.ApplyTo(out)
	out.Data = cloneStrings(cm.Data)
	out.BinaryData = cloneBytes(cm.BinaryData)
	out.Immutable = cm.Immutable
	return out
}

// Recreate reports whether host cannot be updated to desired in place: the
// data of an immutable ConfigMap never changes (its metadata still may).
func Recreate(desired, host *corev1.ConfigMap) bool {
	if host.Immutable == nil || !*host.Immutable {
		return false
	}
	return !maps.Equal(host.Data, desired.Data) || !maps.EqualFunc(host.BinaryData, desired.BinaryData, bytes.Equal)
}

func cloneStrings(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func cloneBytes(in map[string][]byte) map[string][]byte {
	if in == nil {
		return nil
	}
	out := make(map[string][]byte, len(in))
	for k, v := range in {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
