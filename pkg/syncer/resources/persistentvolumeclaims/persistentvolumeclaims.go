// Package persistentvolumeclaims translates tenant PersistentVolumeClaims to
// host claims, so stateful workloads get real volumes from the host.
//
// Forward (tenant -> host): on create, access modes, requested resources,
// the host storage class the policy gives the claim (its default for a
// claim that names none), volume mode and volume attributes class;
// afterwards only the requested storage (an expansion; the host decides
// whether its class allows it). A volume name, selector or data source
// would reach for host volumes or other claims: admission refuses claims
// with them (policy.CheckClaim), and the syncer refuses them again.
//
// Backward (host -> tenant): status (phase, capacity, access modes,
// conditions, allocated resources). The tenant has no PersistentVolumes;
// the host binds the claim and the tenant sees the result.
package persistentvolumeclaims

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// Forward returns the desired host claim for tenant claim pvc. host is the
// current host copy or nil. Neither input is modified.
func Forward(pvc, host *corev1.PersistentVolumeClaim, meta translate.Meta, pol *policy.Policy) *corev1.PersistentVolumeClaim {
	if host != nil {
		out := host.DeepCopy()
		meta.ApplyTo(out)
		if want, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			if out.Spec.Resources.Requests == nil {
				out.Spec.Resources.Requests = corev1.ResourceList{}
			}
			out.Spec.Resources.Requests[corev1.ResourceStorage] = want
		}
		return out
	}
	out := &corev1.PersistentVolumeClaim{}
	meta.ApplyTo(out)
	s := pvc.Spec.DeepCopy()
	// A refused class never gets here (the syncer's Refuse); the error
	// is that refusal.
	class, _ := pol.HostStorageClass(s.StorageClassName)
	out.Spec = corev1.PersistentVolumeClaimSpec{
		AccessModes:               s.AccessModes,
		Resources:                 s.Resources,
		StorageClassName:          class,
		VolumeMode:                s.VolumeMode,
		VolumeAttributesClassName: s.VolumeAttributesClassName,
	}
	return out
}

// Backward returns the tenant claim with the host claim's status. Neither
// input is modified.
func Backward(host, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	out := pvc.DeepCopy()
	out.Status = *host.Status.DeepCopy()
	return out
}
