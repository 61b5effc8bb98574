package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

// DefaultPod sets in a tenant pod the safe defaults of policy p's floor, so
// that a plain pod passes CheckPod without the tenant spelling them out: a
// RuntimeDefault seccomp profile for the pod when it has none; where the
// operator raised the floor to restricted, also allowPrivilegeEscalation:
// false and a drop of ALL capabilities on every container that does not
// say otherwise (restricted requires both; the baseline floor of both
// profiles forces neither, so root images run as they are). It never
// loosens what the tenant set: a value the floor refuses stays, and
// CheckPod reports it.
func DefaultPod(spec *corev1.PodSpec, p *Policy) {
	// The API server refuses these Linux fields on a Windows pod.
	if spec.OS != nil && spec.OS.Name == corev1.Windows {
		return
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.SecurityContext.SeccompProfile == nil {
		spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	if p.level() != psapi.LevelRestricted {
		return
	}
	for _, c := range containersOf(spec, nil) {
		if c.container.SecurityContext == nil {
			c.container.SecurityContext = &corev1.SecurityContext{}
		}
		sc := c.container.SecurityContext
		// The API server refuses allowPrivilegeEscalation: false next to
		// privileged or CAP_SYS_ADMIN; leave those containers for CheckPod
		// to refuse with a message about what the tenant actually wrote.
		if sc.AllowPrivilegeEscalation == nil && !escalates(sc) {
			sc.AllowPrivilegeEscalation = ptr.To(false)
		}
		if sc.Capabilities == nil {
			sc.Capabilities = &corev1.Capabilities{}
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, "ALL")
		}
	}
}

// escalates reports a container that cannot run without privilege
// escalation.
func escalates(sc *corev1.SecurityContext) bool {
	if ptrTrue(sc.Privileged) {
		return true
	}
	return sc.Capabilities != nil &&
		(slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") || slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN"))
}

// CheckPod reports everything in a tenant pod that the host would not run
// under policy p: Pod Security at the floor (baseline unless the operator
// raised it) whatever the namespace's labels say, volume types and
// projected sources outside the allowlists, nodeName, tolerations,
// runtimeClassName, priorityClassName, nodeSelector and node affinity keys
// outside the policy's allowlists, node-local security profiles the policy
// does not list, downward API fields that show the host, claims of
// ephemeral volumes outside the storage policy, and the fields whose
// disposition is Refused (PodSpecFields). Each error names the field, the value and the
// profile, and says what to set instead. Call DefaultPod first.
//
// path locates the pod in the checked object: nil for a Pod,
// field.NewPath("spec", "template") for the pod template of a Deployment,
// ReplicaSet, StatefulSet, DaemonSet or Job, field.NewPath("spec",
// "jobTemplate", "spec", "template") for a CronJob. Errors name fields
// under path's spec and metadata.
//
// A pod bound to a node carries the nodeName the syncer set; a caller
// checking an update passes a spec whose nodeName is cleared when it did
// not change.
func CheckPod(meta *metav1.ObjectMeta, spec *corev1.PodSpec, path *field.Path, p *Policy) field.ErrorList {
	return checkPod(meta, spec, path, p, false)
}

// checkPod is CheckPod for tenant pods and CheckHostPod for host pods.
// The two differ in the names they hold (a tenant names a tenant priority
// class, a host pod the host class it maps to) and in the forced fields a
// host pod must carry.
func checkPod(meta *metav1.ObjectMeta, spec *corev1.PodSpec, path *field.Path, p *Policy, host bool) field.ErrorList {
	profile := p.profile()
	if meta == nil {
		meta = &metav1.ObjectMeta{}
	}
	e := &podEnv{
		meta:     meta,
		spec:     spec,
		metaPath: path.Child("metadata"),
		specPath: path.Child("spec"),
		profile:  profile,
		level:    p.level(),
		pol:      p,
	}
	errs := checkPodSecurity(e)
	errs = append(errs, checkVolumes(e, p)...)
	errs = append(errs, checkProjected(e)...)
	errs = append(errs, checkClaimTemplates(e)...)
	errs = append(errs, checkSecurityProfiles(e)...)
	errs = append(errs, checkDownwardAPI(e)...)
	errs = append(errs, checkAffinityNamespaces(e)...)
	errs = append(errs, checkRefusedFields(e)...)
	if host && spec.NodeName != "" {
		// A tenant's nodeName becomes node affinity (HostNodeSelection):
		// the host scheduler still checks the pool, taints and room.
		errs = append(errs, field.Invalid(e.specPath.Child("nodeName"), spec.NodeName, fmt.Sprintf(
			"host pods may not bypass the host scheduler in the %s profile; knest translates a tenant's nodeName into node affinity", profile)))
	}
	errs = append(errs, checkTolerations(e, p)...)
	errs = append(errs, checkRuntimeClass(e, p, host)...)
	errs = append(errs, checkPriorityClassName(e, p, host)...)
	errs = append(errs, checkNodeSelection(e, p, host)...)
	if host {
		errs = append(errs, checkForced(e, p)...)
	}
	return errs
}

// containerAt is a container of a pod and its field path. Ephemeral
// containers are seen as containers: they share every field checked here.
type containerAt struct {
	container *corev1.Container
	path      *field.Path
}

// containersOf lists init, regular and ephemeral containers, pointing into
// spec.
func containersOf(spec *corev1.PodSpec, specPath *field.Path) []containerAt {
	out := make([]containerAt, 0, len(spec.InitContainers)+len(spec.Containers)+len(spec.EphemeralContainers))
	for i := range spec.InitContainers {
		out = append(out, containerAt{&spec.InitContainers[i], specPath.Child("initContainers").Index(i)})
	}
	for i := range spec.Containers {
		out = append(out, containerAt{&spec.Containers[i], specPath.Child("containers").Index(i)})
	}
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, containerAt{c, specPath.Child("ephemeralContainers").Index(i)})
	}
	return out
}

func checkVolumes(e *podEnv, p *Policy) field.ErrorList {
	var errs field.ErrorList
	allowed := p.allowedVolumeTypes()
	for i := range e.spec.Volumes {
		v := &e.spec.Volumes[i]
		t := volumeType(&v.VolumeSource)
		if slices.Contains(allowed, t) {
			continue
		}
		errs = append(errs, field.Forbidden(e.specPath.Child("volumes").Index(i).Child(t), fmt.Sprintf(
			"volume %q: %s volumes are not allowed in the %s profile; use one of %s, or ask the operator to allow %s",
			v.Name, t, e.profile, quoteList(allowed), t)))
	}
	return errs
}

// alwaysAllowedTolerations are the tolerations the API server's
// DefaultTolerationSeconds admission adds to every pod. They only delay
// eviction from a failing node.
func alwaysAllowedTolerations() []TolerationRule {
	return []TolerationRule{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
}

// daemonSetTolerations are the tolerations the DaemonSet controller adds
// to its pods, so that a node's own agent runs while the node is under
// pressure or cordoned. With pool nodes, a tenant's DaemonSet pods carry
// them to their host nodes as upstream's do.
func daemonSetTolerations() []TolerationRule {
	var out []TolerationRule
	for _, key := range []string{corev1.TaintNodeDiskPressure, corev1.TaintNodeMemoryPressure, corev1.TaintNodePIDPressure, corev1.TaintNodeUnschedulable} {
		out = append(out, TolerationRule{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// allows reports whether the rule covers toleration t: same key, an
// operator no wider than the rule's, and the rule's effect if it names one.
func (r TolerationRule) allows(t corev1.Toleration) bool {
	if r.Key != t.Key {
		return false
	}
	if r.Operator != corev1.TolerationOpExists && t.Operator == corev1.TolerationOpExists {
		return false
	}
	return r.Effect == "" || r.Effect == t.Effect
}

// String describes the rule for messages: "example.com/gpu" (Exists, NoSchedule).
func (r TolerationRule) String() string {
	op := r.Operator
	if op == "" {
		op = corev1.TolerationOpEqual
	}
	effect := string(r.Effect)
	if effect == "" {
		effect = "any effect"
	}
	return fmt.Sprintf("%q (%s, %s)", r.Key, op, effect)
}

func checkTolerations(e *podEnv, p *Policy) field.ErrorList {
	var errs field.ErrorList
	rules := append(alwaysAllowedTolerations(), p.Tolerations...)
	if p.PoolNodes {
		rules = append(rules, daemonSetTolerations()...)
	}
	for i, t := range e.spec.Tolerations {
		// The pool's own tolerations are forced on host pods anyway; a
		// tenant repeating them gains nothing.
		if slices.ContainsFunc(p.Placement.Tolerations, func(f corev1.Toleration) bool { return sameToleration(f, t) }) {
			continue
		}
		if slices.ContainsFunc(rules, func(r TolerationRule) bool { return r.allows(t) }) {
			continue
		}
		allowed := make([]string, 0, len(p.Tolerations))
		for _, r := range p.Tolerations {
			allowed = append(allowed, r.String())
		}
		allows := "the policy allows none"
		if len(allowed) > 0 {
			allows = "the policy allows tolerations of " + strings.Join(allowed, ", ")
		}
		errs = append(errs, field.Invalid(e.specPath.Child("tolerations").Index(i), t, fmt.Sprintf(
			"toleration is not allowed in the %s profile (%s); remove it", e.profile, allows)))
	}
	return errs
}

// sameToleration compares tolerations field by field (the pointer to
// tolerationSeconds by value), an empty operator being Equal.
func sameToleration(a, b corev1.Toleration) bool {
	op := func(o corev1.TolerationOperator) corev1.TolerationOperator {
		if o == "" {
			return corev1.TolerationOpEqual
		}
		return o
	}
	return a.Key == b.Key && op(a.Operator) == op(b.Operator) && a.Value == b.Value && a.Effect == b.Effect &&
		ptr.Equal(a.TolerationSeconds, b.TolerationSeconds)
}

func checkRuntimeClass(e *podEnv, p *Policy, host bool) field.ErrorList {
	name := ptr.Deref(e.spec.RuntimeClassName, "")
	forced := p.RuntimeClasses.Forced
	path := e.specPath.Child("runtimeClassName")
	if host && forced != "" {
		msg := fmt.Sprintf("must be %q, the runtime class the %s profile forces on every host pod", forced, e.profile)
		switch name {
		case forced:
			return nil
		case "":
			return field.ErrorList{field.Required(path, msg)}
		}
		return field.ErrorList{field.Invalid(path, name, msg)}
	}
	if name == "" || name == forced || slices.Contains(p.RuntimeClasses.Allowed, name) {
		return nil
	}
	allowed := slices.Clone(p.RuntimeClasses.Allowed)
	if forced != "" {
		allowed = append(allowed, forced)
	}
	return field.ErrorList{field.Invalid(path, name, notInList("runtime class", e.profile, allowed, "runtimeClassName"))}
}

func checkPriorityClassName(e *podEnv, p *Policy, host bool) field.ErrorList {
	name := e.spec.PriorityClassName
	if name == "" {
		return nil
	}
	path := e.specPath.Child("priorityClassName")
	if host {
		if slices.Contains(slices.Collect(maps.Values(p.PriorityClasses.Classes)), name) {
			return nil
		}
		return field.ErrorList{field.Invalid(path, name, fmt.Sprintf(
			"is not a host priority class the %s profile's policy maps a tenant class to", e.profile))}
	}
	if _, ok := p.HostPriorityClass(name); ok {
		return nil
	}
	return field.ErrorList{field.Invalid(path, name, notInList("priority class", e.profile,
		slices.Sorted(maps.Keys(p.PriorityClasses.Classes)), "priorityClassName"))}
}

// checkNodeSelection checks a host pod's node selection: node label keys in
// the policy's allowlist, the node pool's selector as the profile forces
// it, and node names only as metadata.name fields (HostNodeSelection's
// translation of the tenant's choice). A tenant pod may select on any key:
// HostNodeSelection decides the rest as the tenant's virtual Nodes would,
// so nothing is checked for it here.
func checkNodeSelection(e *podEnv, p *Policy, host bool) field.ErrorList {
	if !host {
		return nil
	}
	var errs field.ErrorList
	placement := p.Placement.NodeSelector
	allowedKey := func(k string) bool {
		_, forced := placement[k]
		return slices.Contains(p.NodeLabelKeys, k) || forced
	}
	notAllowed := func(path *field.Path, value, what string) *field.Error {
		return field.Invalid(path, value, fmt.Sprintf("%s is not allowed in the %s profile; allowed node label keys: %s",
			what, e.profile, quoteList(p.NodeLabelKeys)))
	}

	selPath := e.specPath.Child("nodeSelector")
	for _, k := range slices.Sorted(maps.Keys(e.spec.NodeSelector)) {
		v := e.spec.NodeSelector[k]
		if want, forced := placement[k]; forced {
			if v != want {
				errs = append(errs, field.Invalid(selPath.Key(k), v, fmt.Sprintf(
					"must be %q: the %s profile keeps host pods on the tenant's node pool", want, e.profile)))
			}
			continue
		}
		if !allowedKey(k) {
			errs = append(errs, notAllowed(selPath.Key(k), v, fmt.Sprintf("node label key %q", k)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(placement)) {
		if _, ok := e.spec.NodeSelector[k]; !ok {
			errs = append(errs, field.Required(selPath.Key(k), fmt.Sprintf(
				"must be %q: the %s profile keeps host pods on the tenant's node pool", placement[k], e.profile)))
		}
	}

	if e.spec.Affinity == nil || e.spec.Affinity.NodeAffinity == nil {
		return errs
	}
	na := e.spec.Affinity.NodeAffinity
	naPath := e.specPath.Child("affinity", "nodeAffinity")
	term := func(t *corev1.NodeSelectorTerm, path *field.Path) {
		for j, r := range t.MatchExpressions {
			if !allowedKey(r.Key) {
				errs = append(errs, notAllowed(path.Child("matchExpressions").Index(j).Child("key"), r.Key, "node label key"))
			}
		}
		for j, r := range t.MatchFields {
			if r.Key != FieldNodeName {
				errs = append(errs, notAllowed(path.Child("matchFields").Index(j).Child("key"), r.Key, "node field"))
			}
		}
	}
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		path := naPath.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		for i := range req.NodeSelectorTerms {
			term(&req.NodeSelectorTerms[i], path.Index(i))
		}
	}
	path := naPath.Child("preferredDuringSchedulingIgnoredDuringExecution")
	for i := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		term(&na.PreferredDuringSchedulingIgnoredDuringExecution[i].Preference, path.Index(i).Child("preference"))
	}
	return errs
}

// notInList says that a named thing is not on the policy's list, and what
// to do about it.
func notInList(what string, profile Profile, allowed []string, fieldName string) string {
	if len(allowed) == 0 {
		return fmt.Sprintf("%s is not allowed in the %s profile, whose policy allows none; remove %s", what, profile, fieldName)
	}
	return fmt.Sprintf("%s is not allowed in the %s profile; use one of %s or remove %s", what, profile, quoteList(allowed), fieldName)
}

// quoteList renders allowed values for a message.
func quoteList(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(quoted, ", ")
}
