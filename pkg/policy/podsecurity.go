package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// podSecurityCheck is one Pod Security check with an evaluator of its own,
// so that a failure can be traced to the check, and from there to fields.
// (The upstream evaluator of all checks returns results without saying
// which check produced them.)
type podSecurityCheck struct {
	id        psapolicy.CheckID
	evaluator psapolicy.Evaluator
}

// isVolumeCheck reports the Pod Security checks on volume types. knest
// leaves volume types to the policy's allowlist, which by default is
// stricter than both levels, and which the operator may extend (an
// allowlisted hostPath must then not be refused by Pod Security).
func isVolumeCheck(id psapolicy.CheckID) bool {
	return id == "hostPathVolumes" || id == "restrictedVolumes"
}

// podSecurityChecks returns the checks evaluated at each level: baseline
// checks at baseline; restricted and the baseline checks they do not
// override at restricted. The checks are fixed when the program is built,
// so they are built once and only read afterwards.
var podSecurityChecks = sync.OnceValues(func() (map[psapi.Level][]podSecurityCheck, error) {
	checks := psapolicy.DefaultChecks()
	overridden := map[psapolicy.CheckID]bool{}
	for _, c := range checks {
		if c.Level != psapi.LevelRestricted || len(c.Versions) == 0 {
			continue
		}
		for _, id := range c.Versions[len(c.Versions)-1].OverrideCheckIDs {
			overridden[id] = true
		}
	}
	byLevel := map[psapi.Level][]podSecurityCheck{}
	for _, c := range checks {
		if isVolumeCheck(c.ID) {
			continue
		}
		ev, err := psapolicy.NewEvaluator([]psapolicy.Check{c}, nil)
		if err != nil {
			return nil, fmt.Errorf("failed to build Pod Security check %s: %w", c.ID, err)
		}
		check := podSecurityCheck{id: c.ID, evaluator: ev}
		switch c.Level {
		case psapi.LevelBaseline:
			byLevel[psapi.LevelBaseline] = append(byLevel[psapi.LevelBaseline], check)
			if !overridden[c.ID] {
				byLevel[psapi.LevelRestricted] = append(byLevel[psapi.LevelRestricted], check)
			}
		case psapi.LevelRestricted:
			byLevel[psapi.LevelRestricted] = append(byLevel[psapi.LevelRestricted], check)
		}
	}
	return byLevel, nil
})

// run evaluates the check at the latest policy version.
func (c podSecurityCheck) run(level psapi.Level, meta *metav1.ObjectMeta, spec *corev1.PodSpec) psapolicy.CheckResult {
	lv := psapi.LevelVersion{Level: level, Version: psapi.LatestVersion()}
	for _, r := range c.evaluator.EvaluatePod(lv, meta, spec) {
		if !r.Allowed {
			return r
		}
	}
	return psapolicy.CheckResult{Allowed: true}
}

// podEnv is a pod under check and where its fields are.
type podEnv struct {
	meta     *metav1.ObjectMeta
	spec     *corev1.PodSpec
	metaPath *field.Path
	specPath *field.Path
	profile  Profile
	level    psapi.Level
	pol      *Policy
}

// in ends messages: "in the hard profile (Pod Security baseline)".
func (e *podEnv) in() string { return "in " + e.pol.Describe() }

// checkPodSecurity evaluates Pod Security at the profile's level. The
// upstream checks decide; each failure is then traced to the fields that
// caused it, so the tenant reads which field to change and to what.
func checkPodSecurity(e *podEnv) field.ErrorList {
	all, err := podSecurityChecks()
	if err != nil {
		return field.ErrorList{field.InternalError(e.specPath, err)}
	}
	var errs field.ErrorList
	for _, c := range all[e.level] {
		res := c.run(e.level, e.meta, e.spec)
		if res.Allowed {
			continue
		}
		found := e.locate(c)
		if len(found) == 0 {
			// A check this package does not know field by field (a
			// newer Pod Security release): its own words still say what
			// is wrong.
			msg := res.ForbiddenReason
			if res.ForbiddenDetail != "" {
				msg += " (" + res.ForbiddenDetail + ")"
			}
			found = field.ErrorList{field.Forbidden(e.specPath, msg+" is not allowed "+e.in())}
		}
		errs = append(errs, found...)
	}
	return errs
}

// allows reports whether check c lets a probe pod through: the way to ask
// Pod Security about one capability, sysctl or SELinux type on its own.
func (e *podEnv) allows(c podSecurityCheck, probe *corev1.PodSpec) bool {
	return c.run(e.level, &metav1.ObjectMeta{}, probe).Allowed
}

// locate turns a failed check into errors on the fields that caused it.
func (e *podEnv) locate(c podSecurityCheck) field.ErrorList {
	switch c.id {
	case "privileged":
		return e.locatePrivileged()
	case "hostNamespaces":
		return e.locateHostNamespaces()
	case "hostPorts":
		return e.locateHostPorts()
	case "capabilities_baseline", "capabilities_restricted":
		return e.locateCapabilities(c)
	case "seccompProfile_baseline", "seccompProfile_restricted":
		return e.locateSeccomp(c.id == "seccompProfile_restricted")
	case "allowPrivilegeEscalation":
		return e.locateAllowPrivilegeEscalation()
	case "runAsNonRoot":
		return e.locateRunAsNonRoot()
	case "runAsUser":
		return e.locateRunAsUser()
	case "procMount", "procMount_restricted":
		return e.locateProcMount()
	case "seLinuxOptions":
		return e.locateSELinux(c)
	case "sysctls":
		return e.locateSysctls(c)
	case "appArmorProfile":
		return e.locateAppArmor()
	case "windowsHostProcess":
		return e.locateWindowsHostProcess()
	case "hostProbesAndHostLifecycle":
		return e.locateProbeHosts()
	}
	return nil
}

func (e *podEnv) podSecurityContextPath() *field.Path {
	return e.specPath.Child("securityContext")
}

func (e *podEnv) locatePrivileged() field.ErrorList {
	var errs field.ErrorList
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil && ptrTrue(sc.Privileged) {
			errs = append(errs, field.Invalid(c.path.Child("securityContext", "privileged"), true,
				"privileged containers are not allowed "+e.in()+"; remove privileged: true"))
		}
	}
	return errs
}

func (e *podEnv) locateHostNamespaces() field.ErrorList {
	var errs field.ErrorList
	for _, ns := range []struct {
		field string
		set   bool
		what  string
	}{
		{"hostNetwork", e.spec.HostNetwork, "network"},
		{"hostPID", e.spec.HostPID, "process"},
		{"hostIPC", e.spec.HostIPC, "IPC"},
	} {
		if ns.set {
			errs = append(errs, field.Invalid(e.specPath.Child(ns.field), true,
				fmt.Sprintf("sharing the host's %s namespace is not allowed %s; remove %s: true", ns.what, e.in(), ns.field)))
		}
	}
	return errs
}

func (e *podEnv) locateHostPorts() field.ErrorList {
	var errs field.ErrorList
	for _, c := range containersOf(e.spec, e.specPath) {
		for i, port := range c.container.Ports {
			if port.HostPort != 0 {
				errs = append(errs, field.Invalid(c.path.Child("ports").Index(i).Child("hostPort"), port.HostPort,
					"host ports are not allowed "+e.in()+"; remove hostPort and reach the port through a Service"))
			}
		}
	}
	return errs
}

func (e *podEnv) locateCapabilities(check podSecurityCheck) field.ErrorList {
	restricted := check.id == "capabilities_restricted"
	var errs field.ErrorList
	for _, c := range containersOf(e.spec, e.specPath) {
		path := c.path.Child("securityContext", "capabilities")
		var caps *corev1.Capabilities
		if sc := c.container.SecurityContext; sc != nil {
			caps = sc.Capabilities
		}
		if restricted && (caps == nil || !slices.Contains(caps.Drop, "ALL")) {
			errs = append(errs, field.Required(path.Child("drop"),
				`must include "ALL" `+e.in()+`; set capabilities.drop: ["ALL"]`))
		}
		if caps == nil {
			continue
		}
		for i, capability := range caps.Add {
			// Ask the check about this capability alone.
			probe := &corev1.PodSpec{Containers: []corev1.Container{{
				Name: "probe",
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
					Add: []corev1.Capability{capability}, Drop: []corev1.Capability{"ALL"},
				}},
			}}}
			if e.allows(check, probe) {
				continue
			}
			msg := "capability is not allowed " + e.in() + "; remove it from capabilities.add"
			if restricted {
				msg += " (only NET_BIND_SERVICE may be added)"
			}
			errs = append(errs, field.Invalid(path.Child("add").Index(i), string(capability), msg))
		}
	}
	return errs
}

func validSeccomp(sp *corev1.SeccompProfile) bool {
	return sp.Type == corev1.SeccompProfileTypeRuntimeDefault || sp.Type == corev1.SeccompProfileTypeLocalhost
}

func (e *podEnv) locateSeccomp(restricted bool) field.ErrorList {
	var errs field.ErrorList
	bad := func(path *field.Path, sp *corev1.SeccompProfile) {
		errs = append(errs, field.Invalid(path.Child("seccompProfile", "type"), string(sp.Type),
			"must be RuntimeDefault or Localhost "+e.in()+"; set type: RuntimeDefault"))
	}
	var podProfile *corev1.SeccompProfile
	if psc := e.spec.SecurityContext; psc != nil {
		podProfile = psc.SeccompProfile
	}
	if podProfile != nil && !validSeccomp(podProfile) {
		bad(e.podSecurityContextPath(), podProfile)
	}
	unset := false
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil && sc.SeccompProfile != nil {
			if !validSeccomp(sc.SeccompProfile) {
				bad(c.path.Child("securityContext"), sc.SeccompProfile)
			}
			continue
		}
		unset = true
	}
	if restricted && unset && podProfile == nil {
		errs = append(errs, field.Required(e.podSecurityContextPath().Child("seccompProfile"),
			"must be set "+e.in()+"; set seccompProfile.type: RuntimeDefault"))
	}
	return errs
}

func (e *podEnv) locateAllowPrivilegeEscalation() field.ErrorList {
	var errs field.ErrorList
	const advice = "; set allowPrivilegeEscalation: false"
	for _, c := range containersOf(e.spec, e.specPath) {
		path := c.path.Child("securityContext", "allowPrivilegeEscalation")
		sc := c.container.SecurityContext
		switch {
		case sc == nil || sc.AllowPrivilegeEscalation == nil:
			errs = append(errs, field.Required(path, "must be false "+e.in()+advice))
		case *sc.AllowPrivilegeEscalation:
			errs = append(errs, field.Invalid(path, true, "must be false "+e.in()+advice))
		}
	}
	return errs
}

func (e *podEnv) locateRunAsNonRoot() field.ErrorList {
	var errs field.ErrorList
	msg := "must be true " + e.in() + "; set runAsNonRoot: true and a non-zero runAsUser"
	podPath := e.podSecurityContextPath().Child("runAsNonRoot")
	var podValue *bool
	if psc := e.spec.SecurityContext; psc != nil {
		podValue = psc.RunAsNonRoot
	}
	if podValue != nil && !*podValue {
		errs = append(errs, field.Invalid(podPath, false, msg))
	}
	unset := false
	for _, c := range containersOf(e.spec, e.specPath) {
		sc := c.container.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil {
			unset = true
			continue
		}
		if !*sc.RunAsNonRoot {
			errs = append(errs, field.Invalid(c.path.Child("securityContext", "runAsNonRoot"), false, msg))
		}
	}
	if unset && podValue == nil {
		errs = append(errs, field.Required(podPath, msg))
	}
	return errs
}

func (e *podEnv) locateRunAsUser() field.ErrorList {
	var errs field.ErrorList
	msg := "must not be 0 (root) " + e.in() + "; set a non-zero runAsUser"
	if psc := e.spec.SecurityContext; psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		errs = append(errs, field.Invalid(e.podSecurityContextPath().Child("runAsUser"), int64(0), msg))
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			errs = append(errs, field.Invalid(c.path.Child("securityContext", "runAsUser"), int64(0), msg))
		}
	}
	return errs
}

func (e *podEnv) locateProcMount() field.ErrorList {
	var errs field.ErrorList
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			errs = append(errs, field.Invalid(c.path.Child("securityContext", "procMount"), string(*sc.ProcMount),
				"must be Default "+e.in()+"; remove procMount"))
		}
	}
	return errs
}

func (e *podEnv) locateSELinux(check podSecurityCheck) field.ErrorList {
	var errs field.ErrorList
	one := func(path *field.Path, opts *corev1.SELinuxOptions) {
		if opts == nil {
			return
		}
		path = path.Child("seLinuxOptions")
		if opts.User != "" {
			errs = append(errs, field.Invalid(path.Child("user"), opts.User, "must not be set "+e.in()+"; remove it"))
		}
		if opts.Role != "" {
			errs = append(errs, field.Invalid(path.Child("role"), opts.Role, "must not be set "+e.in()+"; remove it"))
		}
		probe := &corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: opts.Type}}}
		if !e.allows(check, probe) {
			errs = append(errs, field.Invalid(path.Child("type"), opts.Type,
				"SELinux type is not allowed "+e.in()+"; use container_t or remove it"))
		}
	}
	if psc := e.spec.SecurityContext; psc != nil {
		one(e.podSecurityContextPath(), psc.SELinuxOptions)
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil {
			one(c.path.Child("securityContext"), sc.SELinuxOptions)
		}
	}
	return errs
}

func (e *podEnv) locateSysctls(check podSecurityCheck) field.ErrorList {
	psc := e.spec.SecurityContext
	if psc == nil {
		return nil
	}
	var errs field.ErrorList
	for i, s := range psc.Sysctls {
		probe := &corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{s}}}
		if !e.allows(check, probe) {
			errs = append(errs, field.Invalid(e.podSecurityContextPath().Child("sysctls").Index(i).Child("name"), s.Name,
				"sysctl is not allowed "+e.in()+"; only safe, namespaced sysctls may be set"))
		}
	}
	return errs
}

func (e *podEnv) locateAppArmor() field.ErrorList {
	var errs field.ErrorList
	one := func(path *field.Path, p *corev1.AppArmorProfile) {
		if p == nil || p.Type == corev1.AppArmorProfileTypeRuntimeDefault || p.Type == corev1.AppArmorProfileTypeLocalhost {
			return
		}
		errs = append(errs, field.Invalid(path.Child("appArmorProfile", "type"), string(p.Type),
			"must be RuntimeDefault or Localhost "+e.in()+"; set type: RuntimeDefault"))
	}
	if psc := e.spec.SecurityContext; psc != nil {
		one(e.podSecurityContextPath(), psc.AppArmorProfile)
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil {
			one(c.path.Child("securityContext"), sc.AppArmorProfile)
		}
	}
	if e.meta != nil {
		for _, k := range slices.Sorted(maps.Keys(e.meta.Annotations)) {
			v := e.meta.Annotations[k]
			if !strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) ||
				v == "" || v == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault ||
				strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
				continue
			}
			errs = append(errs, field.Invalid(e.metaPath.Child("annotations").Key(k), v,
				"AppArmor profile must be runtime/default or localhost/<profile> "+e.in()+"; remove the annotation"))
		}
	}
	return errs
}

func (e *podEnv) locateWindowsHostProcess() field.ErrorList {
	var errs field.ErrorList
	msg := "host process containers are not allowed " + e.in() + "; remove hostProcess: true"
	if psc := e.spec.SecurityContext; psc != nil && psc.WindowsOptions != nil && ptrTrue(psc.WindowsOptions.HostProcess) {
		errs = append(errs, field.Invalid(e.podSecurityContextPath().Child("windowsOptions", "hostProcess"), true, msg))
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		if sc := c.container.SecurityContext; sc != nil && sc.WindowsOptions != nil && ptrTrue(sc.WindowsOptions.HostProcess) {
			errs = append(errs, field.Invalid(c.path.Child("securityContext", "windowsOptions", "hostProcess"), true, msg))
		}
	}
	return errs
}

func (e *podEnv) locateProbeHosts() field.ErrorList {
	var errs field.ErrorList
	msg := "probes and lifecycle handlers may not name a host " + e.in() + "; remove host so they reach the pod itself"
	check := func(path *field.Path, httpGet *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction) {
		if httpGet != nil && httpGet.Host != "" {
			errs = append(errs, field.Invalid(path.Child("httpGet", "host"), httpGet.Host, msg))
		}
		if tcp != nil && tcp.Host != "" {
			errs = append(errs, field.Invalid(path.Child("tcpSocket", "host"), tcp.Host, msg))
		}
	}
	for _, c := range containersOf(e.spec, e.specPath) {
		for _, probe := range []struct {
			name  string
			probe *corev1.Probe
		}{
			{"livenessProbe", c.container.LivenessProbe},
			{"readinessProbe", c.container.ReadinessProbe},
			{"startupProbe", c.container.StartupProbe},
		} {
			if probe.probe != nil {
				check(c.path.Child(probe.name), probe.probe.HTTPGet, probe.probe.TCPSocket)
			}
		}
		if lc := c.container.Lifecycle; lc != nil {
			if lc.PostStart != nil {
				check(c.path.Child("lifecycle", "postStart"), lc.PostStart.HTTPGet, lc.PostStart.TCPSocket)
			}
			if lc.PreStop != nil {
				check(c.path.Child("lifecycle", "preStop"), lc.PreStop.HTTPGet, lc.PreStop.TCPSocket)
			}
		}
	}
	return errs
}

func ptrTrue(b *bool) bool { return b != nil && *b }
