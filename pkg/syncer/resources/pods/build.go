package pods

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// Build is the one place a host pod is made from a tenant pod, on every
// path that writes one: creation, metadata and image updates, ephemeral
// containers (kubectl debug) and in-place resizes. It translates the whole
// tenant pod (Forward, with its ephemeral containers), places it (the
// tenant's scheduling within the policy's allowlists), forces the profile's
// fields (policy.ForceHostPod) and checks the result (policy.CheckHostPod);
// a pod that fails is refused with the reason and nothing is written.
//
// current is the host pod as it is, or nil. A new pod is returned whole
// (without ephemeral containers, which only the ephemeralcontainers
// subresource adds). For an existing pod, whose spec is immutable but for
// a few fields, Build returns current with those fields taken from the
// checked translation: metadata, images, activeDeadlineSeconds, ephemeral
// containers not there yet, and the resources the tenant set. Writes splits
// that into the writes Kubernetes accepts. Neither input is modified.
func Build(t, current *corev1.Pod, meta translate.Meta, env Env, pol *policy.Policy) (*corev1.Pod, error) {
	// What the tenant pod asks for is checked as admission checked it (a
	// pod admitted before the policy tightened, or written past admission,
	// is refused here), and what the host gets is checked again below.
	spec := t.Spec.DeepCopy()
	if errs := policy.CheckPod(&t.ObjectMeta, spec, nil, pol); len(errs) > 0 {
		return nil, fmt.Errorf("the pod breaks %s: %w", pol.Describe(), errs.ToAggregate())
	}
	meta = hostMeta(t, meta, env, pol)
	fresh := Forward(t, nil, meta, env)
	if ephemeral := EphemeralContainers(t, fresh, meta); ephemeral != nil {
		fresh = ephemeral
	}
	if current != nil {
		// A running pod's placement cannot change: its node is not looked
		// up again (it may be gone by now, and that is no reason to refuse
		// a metadata update); the rest is placed and checked as ever.
		env.HostNodes = nil
		env.VirtualNodes = nil
	}
	if err := place(t, fresh, meta, env, pol); err != nil {
		var unschedulable *UnschedulableError
		if current == nil || !errors.As(err, &unschedulable) {
			return nil, err
		}
	}
	policy.ForceHostPod(fresh, pol)
	if errs := policy.CheckHostPod(fresh, pol); len(errs) > 0 {
		return nil, fmt.Errorf("the host pod would break %s: %w", pol.Describe(), errs.ToAggregate())
	}
	if err := checkHostTokens(fresh, env.TokenAudience); err != nil {
		return nil, err
	}
	if current == nil {
		fresh.Spec.EphemeralContainers = nil
		return fresh, nil
	}
	out := Forward(t, current, meta, env)
	for _, ec := range fresh.Spec.EphemeralContainers {
		if !slices.ContainsFunc(out.Spec.EphemeralContainers, func(have corev1.EphemeralContainer) bool { return have.Name == ec.Name }) {
			out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, ec)
		}
	}
	if resized := Resize(t, out); resized != nil {
		out = resized
	}
	return out, nil
}

// hostMeta is the host pod's owned metadata: the tenant's labels under
// knest's keys and the allowlisted labels and annotations (the policy's
// metadata allowlist), the labels of the pod's tenant namespace (host
// NetworkPolicies select on them), and the tenant identity. Only name,
// namespace and whose pod it is come from meta.
func hostMeta(t *corev1.Pod, meta translate.Meta, env Env, pol *policy.Policy) translate.Meta {
	id := translate.Object{Kind: "Pod", Namespace: t.Namespace, Name: t.Name, UID: t.UID}
	pass := translate.Passthrough{Label: pol.Metadata.AllowsLabel, Annotation: pol.Metadata.AllowsAnnotation}
	labels, annotations := translate.HostMeta(meta.Tenant, id, t.Labels, t.Annotations, pass)
	for k, v := range translate.NamespaceLabels(env.NamespaceLabels) {
		labels[k] = v
	}
	meta.Labels, meta.Annotations = labels, annotations
	return meta
}

// Write is one write to a host pod: the pod itself (Subresource "") or one
// of its subresources.
type Write struct {
	Subresource string
	Pod         *corev1.Pod
}

// Writes splits the change from current to desired (Build's output) into
// the writes Kubernetes accepts, in the order they are to be made: the pod
// (metadata, images, activeDeadlineSeconds), then ephemeralcontainers, then
// resize. Each is current with only its own part changed. None when the
// pods agree.
func Writes(current, desired *corev1.Pod) []Write {
	var out []Write
	pod := desired.DeepCopy()
	pod.Spec.EphemeralContainers = current.Spec.EphemeralContainers
	resetResources(pod, current)
	if !equality.Semantic.DeepEqual(pod, current) {
		out = append(out, Write{Pod: pod})
	}
	if !equality.Semantic.DeepEqual(desired.Spec.EphemeralContainers, current.Spec.EphemeralContainers) {
		ec := current.DeepCopy()
		ec.Spec.EphemeralContainers = desired.Spec.EphemeralContainers
		out = append(out, Write{Subresource: "ephemeralcontainers", Pod: ec})
	}
	resize := current.DeepCopy()
	for i := range resize.Spec.Containers {
		if i < len(desired.Spec.Containers) {
			resize.Spec.Containers[i].Resources = *desired.Spec.Containers[i].Resources.DeepCopy()
		}
	}
	if !equality.Semantic.DeepEqual(resize, current) {
		out = append(out, Write{Subresource: "resize", Pod: resize})
	}
	return out
}

// resetResources gives p's containers current's resources.
func resetResources(p, current *corev1.Pod) {
	for i := range p.Spec.Containers {
		if i < len(current.Spec.Containers) {
			p.Spec.Containers[i].Resources = *current.Spec.Containers[i].Resources.DeepCopy()
		}
	}
}
