package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// ForceHostPod sets on a translated host pod the fields policy p forces,
// whatever the tenant asked for. They follow the profile, not the Pod
// Security floor, and never break a root image (no forced drop of the
// default capabilities): in both profiles the placement nodeSelector and
// tolerations of the tenant's node pool, no host ServiceAccount token,
// DefaultPod's defaults (a RuntimeDefault seccomp profile) and NET_RAW
// dropped from every container (raw sockets forge packets on the node's
// network; ping works without it on current kernels); in hard also the
// forced runtime class and imagePullPolicy Always. Ephemeral containers
// get the same as the others. Applying it twice changes nothing more than
// applying it once.
func ForceHostPod(pod *corev1.Pod, p *Policy) {
	spec := &pod.Spec
	DefaultPod(spec, p)
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
	// Never the host's automounted token, which would let a tenant speak
	// to the host API server; tenant credentials are knest's projected
	// tokens for a knest-only audience, or a Secret of their own.
	spec.AutomountServiceAccountToken = ptr.To(false)
	windows := spec.OS != nil && spec.OS.Name == corev1.Windows
	for _, c := range containersOf(spec, nil) {
		if p.profile().forcesImagePull() {
			c.container.ImagePullPolicy = corev1.PullAlways
		}
		if windows || dropsNetRaw(c.container.SecurityContext) {
			continue
		}
		if c.container.SecurityContext == nil {
			c.container.SecurityContext = &corev1.SecurityContext{}
		}
		if c.container.SecurityContext.Capabilities == nil {
			c.container.SecurityContext.Capabilities = &corev1.Capabilities{}
		}
		caps := c.container.SecurityContext.Capabilities
		caps.Drop = append(caps.Drop, capNetRaw)
	}
}

// capNetRaw is dropped from every host container.
const capNetRaw corev1.Capability = "NET_RAW"

// dropsNetRaw reports whether a container already drops NET_RAW (or ALL).
func dropsNetRaw(sc *corev1.SecurityContext) bool {
	if sc == nil || sc.Capabilities == nil {
		return false
	}
	for _, c := range sc.Capabilities.Drop {
		switch strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_") {
		case "ALL", string(capNetRaw):
			return true
		}
	}
	return false
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
	windows := e.spec.OS != nil && e.spec.OS.Name == corev1.Windows
	for _, c := range containersOf(e.spec, e.specPath) {
		if e.profile.forcesImagePull() && c.container.ImagePullPolicy != corev1.PullAlways {
			errs = append(errs, field.Invalid(c.path.Child("imagePullPolicy"), string(c.container.ImagePullPolicy), fmt.Sprintf(
				"must be Always in the %s profile", e.profile)))
		}
		if !windows && !dropsNetRaw(c.container.SecurityContext) {
			errs = append(errs, field.Required(c.path.Child("securityContext", "capabilities", "drop"), fmt.Sprintf(
				"must include NET_RAW on every host container in the %s profile", e.profile)))
		}
	}
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
