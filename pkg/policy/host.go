package policy

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

// ForceHostPod sets on a translated host pod the fields policy p forces,
// whatever the tenant asked for: the forced runtime class, the placement
// nodeSelector and tolerations of the tenant's node pool, no host
// ServiceAccount token, DefaultPod's safe defaults, and in the hard profile
// allowPrivilegeEscalation: false and imagePullPolicy Always on every
// container. Applying it twice changes nothing more than applying it once.
func ForceHostPod(pod *corev1.Pod, p *Policy) {
	profile := p.profile()
	spec := &pod.Spec
	DefaultPod(spec, profile)
	if forced := p.RuntimeClasses.Forced; forced != "" {
		spec.RuntimeClassName = ptr.To(forced)
	}
	if len(p.Placement.NodeSelector) > 0 && spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	maps.Copy(spec.NodeSelector, p.Placement.NodeSelector)
	for _, t := range p.Placement.Tolerations {
		if !slices.ContainsFunc(spec.Tolerations, func(have corev1.Toleration) bool { return sameToleration(have, t) }) {
			spec.Tolerations = append(spec.Tolerations, *t.DeepCopy())
		}
	}
	// Tenant credentials reach host pods through a Secret of their own;
	// the host's token would let a tenant speak to the host API server.
	spec.AutomountServiceAccountToken = ptr.To(false)
	if profile.PodSecurityLevel() != psapi.LevelRestricted {
		return
	}
	windows := spec.OS != nil && spec.OS.Name == corev1.Windows
	for _, c := range containersOf(spec, nil) {
		// Always pull: a node caches images, and a tenant must not run an
		// image another tenant pulled with credentials it does not hold.
		c.container.ImagePullPolicy = corev1.PullAlways
		if windows {
			continue
		}
		// Unlike DefaultPod, this overrides the tenant. A privileged
		// container ends up with a combination the host API server would
		// refuse, but CheckHostPod refuses it first, with a clearer reason.
		if c.container.SecurityContext == nil {
			c.container.SecurityContext = &corev1.SecurityContext{}
		}
		c.container.SecurityContext.AllowPrivilegeEscalation = ptr.To(false)
	}
}

// CheckHostPod is the last check before a host pod is created, after
// translation and ForceHostPod: everything CheckPod refuses (priority class
// names being host names here), plus the forced fields missing. Errors mean
// a bug in translation or a tenant object admitted before the policy
// tightened; the caller refuses the pod and records an Event on the tenant
// pod.
func CheckHostPod(pod *corev1.Pod, p *Policy) field.ErrorList {
	return checkPod(&pod.ObjectMeta, &pod.Spec, nil, p, true)
}

// checkForced reports forced fields a host pod lacks. The runtime class and
// placement nodeSelector are checked with the rest of their fields.
func checkForced(e *podEnv, p *Policy) field.ErrorList {
	var errs field.ErrorList
	for _, t := range p.Placement.Tolerations {
		if !slices.ContainsFunc(e.spec.Tolerations, func(have corev1.Toleration) bool { return sameToleration(have, t) }) {
			errs = append(errs, field.Required(e.specPath.Child("tolerations"), fmt.Sprintf(
				"must include the node pool's toleration %s in the %s profile", tolerationString(t), e.profile)))
		}
	}
	if automount := e.spec.AutomountServiceAccountToken; automount == nil || *automount {
		errs = append(errs, field.Invalid(e.specPath.Child("automountServiceAccountToken"), automount,
			"must be false: host pods never get a host ServiceAccount token"))
	}
	if e.level == psapi.LevelRestricted {
		for _, c := range containersOf(e.spec, e.specPath) {
			if c.container.ImagePullPolicy != corev1.PullAlways {
				errs = append(errs, field.Invalid(c.path.Child("imagePullPolicy"), string(c.container.ImagePullPolicy), fmt.Sprintf(
					"must be Always in the %s profile", e.profile)))
			}
		}
	}
	windows := e.spec.OS != nil && e.spec.OS.Name == corev1.Windows
	if !windows && (e.spec.SecurityContext == nil || e.spec.SecurityContext.SeccompProfile == nil) {
		errs = append(errs, field.Required(e.podSecurityContextPath().Child("seccompProfile"), fmt.Sprintf(
			"must be set on every host pod in the %s profile; RuntimeDefault unless the tenant chose a profile", e.profile)))
	}
	return errs
}

// tolerationString writes a toleration the way kubectl shows taints:
// key=value:Effect, with the operator when it is Exists.
func tolerationString(t corev1.Toleration) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	if t.Effect != "" {
		s += ":" + string(t.Effect)
	}
	if t.Operator == corev1.TolerationOpExists {
		s += " (Exists)"
	}
	return fmt.Sprintf("%q", s)
}
