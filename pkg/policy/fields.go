package policy

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// Disposition says what becomes of a pod field the tenant sets. Every field
// of a pod spec and a container has one (TestEveryPodFieldHasADisposition):
// a field a newer Kubernetes adds fails the build's tests until someone
// decides, so nothing is dropped silently.
type Disposition string

const (
	// Honoured: copied to the host pod as the tenant wrote it, after the
	// floor's checks.
	Honoured Disposition = "honoured"
	// Translated: rewritten to host names, knest's keys or knest's
	// services (references, selectors, DNS, downward API).
	Translated Disposition = "translated"
	// Allowlisted: honoured when the policy's allowlist has the value,
	// refused otherwise; the profile may force a value on top.
	Allowlisted Disposition = "allowlisted"
	// Floor: honoured within the Pod Security floor, refused beyond it.
	Floor Disposition = "floor"
	// Forced: the profile decides the host value; the tenant's value works
	// in the tenant (ServiceAccounts, tokens, service links).
	Forced Disposition = "forced"
	// HostDerived: the host fills it from other fields (priority from the
	// priority class, overhead from the runtime class).
	HostDerived Disposition = "host-derived"
	// TenantSide: acted on in the tenant, which is where it means something
	// (readiness gates set by tenant controllers, scheduling gates held by
	// the tenant: the host pod is made once they are gone).
	TenantSide Disposition = "tenant-side"
	// Refused: refused at the tenant API when set, with Reason.
	Refused Disposition = "refused"
)

// FieldRule is the disposition of one field, and for a refused field why.
type FieldRule struct {
	Disposition Disposition
	Reason      string
}

// PodSpecFields are the dispositions of the pod spec's fields, by JSON name.
func PodSpecFields() map[string]FieldRule {
	return map[string]FieldRule{
		"volumes":                       {Disposition: Allowlisted},
		"initContainers":                {Disposition: Translated},
		"containers":                    {Disposition: Translated},
		"ephemeralContainers":           {Disposition: Translated},
		"restartPolicy":                 {Disposition: Honoured},
		"terminationGracePeriodSeconds": {Disposition: Honoured},
		"activeDeadlineSeconds":         {Disposition: Honoured},
		"dnsPolicy":                     {Disposition: Translated},
		"dnsConfig":                     {Disposition: Translated},
		"nodeSelector":                  {Disposition: Allowlisted},
		"serviceAccountName":            {Disposition: Forced},
		"serviceAccount":                {Disposition: Forced},
		"automountServiceAccountToken":  {Disposition: Forced},
		"nodeName":                      {Disposition: Translated},
		"hostNetwork":                   {Disposition: Floor},
		"hostPID":                       {Disposition: Floor},
		"hostIPC":                       {Disposition: Floor},
		"shareProcessNamespace":         {Disposition: Honoured},
		"securityContext":               {Disposition: Floor},
		"imagePullSecrets":              {Disposition: Translated},
		"hostname":                      {Disposition: Honoured},
		"subdomain":                     {Disposition: Honoured},
		"affinity":                      {Disposition: Translated},
		"schedulerName":                 {Disposition: Refused, Reason: "the host's default scheduler places tenant pods; remove schedulerName or set default-scheduler"},
		"tolerations":                   {Disposition: Allowlisted},
		"hostAliases":                   {Disposition: Honoured},
		"priorityClassName":             {Disposition: Allowlisted},
		"priority":                      {Disposition: HostDerived},
		"preemptionPolicy":              {Disposition: HostDerived},
		"overhead":                      {Disposition: HostDerived},
		"readinessGates":                {Disposition: TenantSide},
		"runtimeClassName":              {Disposition: Allowlisted},
		"enableServiceLinks":            {Disposition: Translated},
		"topologySpreadConstraints":     {Disposition: Translated},
		"setHostnameAsFQDN":             {Disposition: Refused, Reason: "the host would set the host cluster's domain name, not the tenant's; remove setHostnameAsFQDN"},
		"os":                            {Disposition: Honoured},
		"hostUsers":                     {Disposition: Honoured},
		"schedulingGates":               {Disposition: TenantSide},
		"resourceClaims":                {Disposition: Refused, Reason: "dynamic resource allocation does not reach host devices from a tenant; remove resourceClaims"},
		"resources":                     {Disposition: Honoured},
		"hostnameOverride":              {Disposition: Refused, Reason: "hostname overrides are not supported; use hostname and subdomain"},
		"schedulingGroup":               {Disposition: Refused, Reason: "gang scheduling groups do not reach the host; remove schedulingGroup"},
		"evictionResponders":            {Disposition: Refused, Reason: "eviction responders are host controllers a tenant cannot name; remove evictionResponders"},
	}
}

// ContainerFields are the dispositions of a container's fields (ephemeral
// containers share them), by JSON name.
func ContainerFields() map[string]FieldRule {
	return map[string]FieldRule{
		"name": {Disposition: Honoured}, "image": {Disposition: Honoured},
		"command": {Disposition: Honoured}, "args": {Disposition: Honoured}, "workingDir": {Disposition: Honoured},
		"ports":              {Disposition: Floor},
		"envFrom":            {Disposition: Translated},
		"env":                {Disposition: Translated},
		"resources":          {Disposition: Honoured},
		"resizePolicy":       {Disposition: Honoured},
		"restartPolicy":      {Disposition: Honoured},
		"restartPolicyRules": {Disposition: Honoured},
		"volumeMounts":       {Disposition: Honoured},
		"volumeDevices":      {Disposition: Honoured},
		"livenessProbe":      {Disposition: Floor}, "readinessProbe": {Disposition: Floor}, "startupProbe": {Disposition: Floor},
		"lifecycle":                {Disposition: Floor},
		"terminationMessagePath":   {Disposition: Honoured},
		"terminationMessagePolicy": {Disposition: Honoured},
		"imagePullPolicy":          {Disposition: Honoured},
		"securityContext":          {Disposition: Floor},
		"stdin":                    {Disposition: Honoured}, "stdinOnce": {Disposition: Honoured}, "tty": {Disposition: Honoured},
	}
}

// checkRefusedFields refuses the pod spec fields whose disposition is
// Refused when they are set. schedulerName "default-scheduler" is what the
// API server defaults, not a choice.
func checkRefusedFields(e *podEnv) field.ErrorList {
	var errs field.ErrorList
	rules := PodSpecFields()
	v := reflect.ValueOf(e.spec).Elem()
	for i := range v.NumField() {
		name := jsonName(v.Type().Field(i))
		rule := rules[name]
		if rule.Disposition != Refused || v.Field(i).IsZero() {
			continue
		}
		if name == "schedulerName" && e.spec.SchedulerName == corev1.DefaultSchedulerName {
			continue
		}
		errs = append(errs, field.Forbidden(e.specPath.Child(name), rule.Reason))
	}
	return errs
}

// checkProjected refuses projected volume sources outside
// ProjectedSources.
func checkProjected(e *podEnv) field.ErrorList {
	var errs field.ErrorList
	allowed := ProjectedSources()
	for i := range e.spec.Volumes {
		v := &e.spec.Volumes[i]
		if v.Projected == nil {
			continue
		}
		for j := range v.Projected.Sources {
			rv := reflect.ValueOf(&v.Projected.Sources[j]).Elem()
			for k := range rv.NumField() {
				name := jsonName(rv.Type().Field(k))
				if rv.Field(k).IsNil() || slices.Contains(allowed, name) {
					continue
				}
				errs = append(errs, field.Forbidden(e.specPath.Child("volumes").Index(i).Child("projected", "sources").Index(j).Child(name), fmt.Sprintf(
					"volume %q: %s sources make the host kubelet fetch host credentials or trust bundles, which %s does not allow; use %s",
					v.Name, name, e.pol.Describe(), quoteList(allowed))))
			}
		}
	}
	return errs
}

// FieldRef is a downward API field reference of a pod and its path.
type FieldRef struct {
	Ref  *corev1.ObjectFieldSelector
	Path *field.Path
}

// FieldRefs lists a pod's downward API field references: in downwardAPI
// volumes, in projected volumes' downwardAPI sources, and in the env of
// init, regular and ephemeral containers. specPath is the path of spec.
func FieldRefs(spec *corev1.PodSpec, specPath *field.Path) []FieldRef {
	var out []FieldRef
	add := func(path *field.Path, ref *corev1.ObjectFieldSelector) {
		if ref != nil {
			out = append(out, FieldRef{Ref: ref, Path: path})
		}
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		vp := specPath.Child("volumes").Index(i)
		if v.DownwardAPI != nil {
			for j, item := range v.DownwardAPI.Items {
				add(vp.Child("downwardAPI", "items").Index(j).Child("fieldRef"), item.FieldRef)
			}
		}
		if v.Projected != nil {
			for j, src := range v.Projected.Sources {
				if src.DownwardAPI == nil {
					continue
				}
				for k, item := range src.DownwardAPI.Items {
					add(vp.Child("projected", "sources").Index(j).Child("downwardAPI", "items").Index(k).Child("fieldRef"), item.FieldRef)
				}
			}
		}
	}
	for _, c := range containersOf(spec, specPath) {
		for i, env := range c.container.Env {
			if env.ValueFrom != nil {
				add(c.path.Child("env").Index(i).Child("valueFrom", "fieldRef"), env.ValueFrom.FieldRef)
			}
		}
	}
	return out
}

// checkDownwardAPI refuses downward API fields that would show the host's
// view: the host node's name. The pod's host IP reads the virtual node's
// address, and name, namespace, UID, service account, labels and
// annotations read the tenant's (pods.Forward).
func checkDownwardAPI(e *podEnv) field.ErrorList {
	var errs field.ErrorList
	for _, r := range FieldRefs(e.spec, e.specPath) {
		switch r.Ref.FieldPath {
		case "spec.nodeName":
			errs = append(errs, field.Invalid(r.Path.Child("fieldPath"), r.Ref.FieldPath,
				"would show the host node's name, which tenants do not see; use status.hostIP for the node's address as the tenant sees it"))
		case "metadata.labels", "metadata.annotations":
			errs = append(errs, field.Invalid(r.Path.Child("fieldPath"), r.Ref.FieldPath,
				"the whole label or annotation map is not available to tenant pods yet; name one key, as in "+r.Ref.FieldPath+"['app']"))
		}
	}
	return errs
}

// checkSecurityProfiles refuses node-local security profiles the policy
// does not list: Localhost seccomp and AppArmor profiles name files on the
// host node, SELinux options name the node's labels (a level shared with
// another pod shares its files).
func checkSecurityProfiles(e *podEnv) field.ErrorList {
	var errs field.ErrorList
	sp := e.pol.SecurityProfiles
	seccomp := func(path *field.Path, p *corev1.SeccompProfile) {
		if p == nil || p.Type != corev1.SeccompProfileTypeLocalhost {
			return
		}
		name := ptr.Deref(p.LocalhostProfile, "")
		if !slices.Contains(sp.SeccompLocalhost, name) {
			errs = append(errs, field.Invalid(path.Child("seccompProfile", "localhostProfile"), name, fmt.Sprintf(
				"Localhost seccomp profiles name files on the host node; %s allows %s; use type RuntimeDefault", e.pol.Describe(), listOrNone(sp.SeccompLocalhost))))
		}
	}
	apparmor := func(path *field.Path, p *corev1.AppArmorProfile) {
		if p == nil || p.Type != corev1.AppArmorProfileTypeLocalhost {
			return
		}
		name := ptr.Deref(p.LocalhostProfile, "")
		if !slices.Contains(sp.AppArmorLocalhost, name) {
			errs = append(errs, field.Invalid(path.Child("appArmorProfile", "localhostProfile"), name, fmt.Sprintf(
				"Localhost AppArmor profiles name profiles loaded on the host node; %s allows %s; use type RuntimeDefault", e.pol.Describe(), listOrNone(sp.AppArmorLocalhost))))
		}
	}
	selinux := func(path *field.Path, o *corev1.SELinuxOptions) {
		if o == nil || (*o == corev1.SELinuxOptions{}) || slices.Contains(sp.SELinuxOptions, *o) {
			return
		}
		errs = append(errs, field.Invalid(path.Child("seLinuxOptions"), *o, fmt.Sprintf(
			"SELinux options name the host node's labels (a shared level shares files with other pods); %s allows none of these; remove seLinuxOptions", e.pol.Describe())))
	}
	if psc := e.spec.SecurityContext; psc != nil {
		path := e.podSecurityContextPath()
		seccomp(path, psc.SeccompProfile)
		apparmor(path, psc.AppArmorProfile)
		selinux(path, psc.SELinuxOptions)
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil {
			path := c.path.Child("securityContext")
			seccomp(path, sc.SeccompProfile)
			apparmor(path, sc.AppArmorProfile)
			selinux(path, sc.SELinuxOptions)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.meta.Annotations)) {
		v := e.meta.Annotations[k]
		if !strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) ||
			!strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
			continue
		}
		if name := strings.TrimPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix); !slices.Contains(sp.AppArmorLocalhost, name) {
			errs = append(errs, field.Invalid(e.metaPath.Child("annotations").Key(k), v, fmt.Sprintf(
				"Localhost AppArmor profiles name profiles loaded on the host node; %s allows %s", e.pol.Describe(), listOrNone(sp.AppArmorLocalhost))))
		}
	}
	return errs
}

// checkAffinityNamespaces refuses pod affinity terms that name namespaces
// both by list and by a non-empty selector: upstream takes the union of
// the two, which a host selector over one namespace cannot express.
func checkAffinityNamespaces(e *podEnv) field.ErrorList {
	a := e.spec.Affinity
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	check := func(path *field.Path, t corev1.PodAffinityTerm) {
		if len(t.Namespaces) > 0 && t.NamespaceSelector != nil &&
			(len(t.NamespaceSelector.MatchLabels) > 0 || len(t.NamespaceSelector.MatchExpressions) > 0) {
			errs = append(errs, field.Forbidden(path.Child("namespaceSelector"),
				"a term with both namespaces and a namespaceSelector is not supported; split it into two terms"))
		}
	}
	terms := func(path *field.Path, req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm) {
		for i, t := range req {
			check(path.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i), t)
		}
		for i, t := range pref {
			check(path.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i).Child("podAffinityTerm"), t.PodAffinityTerm)
		}
	}
	path := e.specPath.Child("affinity")
	if pa := a.PodAffinity; pa != nil {
		terms(path.Child("podAffinity"), pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		terms(path.Child("podAntiAffinity"), pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return errs
}

// checkClaimTemplates checks the claims generic ephemeral volumes make as
// any claim.
func checkClaimTemplates(e *podEnv) field.ErrorList {
	var errs field.ErrorList
	for i := range e.spec.Volumes {
		v := &e.spec.Volumes[i]
		if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate == nil {
			continue
		}
		path := e.specPath.Child("volumes").Index(i).Child("ephemeral", "volumeClaimTemplate", "spec")
		errs = append(errs, CheckClaim(&v.Ephemeral.VolumeClaimTemplate.Spec, path, e.pol)...)
	}
	return errs
}
