package pods

// References: the ConfigMaps and Secrets a pod references, found in volumes
// (including projected sources), env and envFrom of every container (init
// and ephemeral included), and image pull secrets. Only referenced objects are
// synced to the host: a tenant's other Secrets never leave its control plane.

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// ConfigMapRefs returns the names of the ConfigMaps pod references, sorted and
// without duplicates.
func ConfigMapRefs(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				// A token volume's root CA too: the host copy of the
				// namespace's kube-root-ca.crt serves every pod in it.
				if s.ConfigMap != nil {
					out = append(out, s.ConfigMap.Name)
				}
			}
		}
	}
	forEachContainer(pod, func(c *corev1.Container) {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				out = append(out, e.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				out = append(out, e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	})
	return sortedUniqueRefs(out)
}

// SecretRefs returns the names of the Secrets pod references, sorted and
// without duplicates.
func SecretRefs(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					out = append(out, s.Secret.Name)
				}
			}
		}
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		out = append(out, s.Name)
	}
	forEachContainer(pod, func(c *corev1.Container) {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	})
	return sortedUniqueRefs(out)
}

// ClaimRefs returns the names of the claims pod uses: its
// persistentVolumeClaim volumes and the claims the ephemeral-volume
// controller makes for its ephemeral volumes, sorted and without duplicates.
func ClaimRefs(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Ephemeral != nil {
			out = append(out, pod.Name+"-"+v.Name)
		}
	}
	return sortedUniqueRefs(out)
}

func forEachContainer(pod *corev1.Pod, f func(*corev1.Container)) {
	for i := range pod.Spec.InitContainers {
		f(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		f(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.EphemeralContainers {
		f((*corev1.Container)(&pod.Spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

func sortedUniqueRefs(in []string) []string {
	out := slices.DeleteFunc(in, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
