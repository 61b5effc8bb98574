package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

// nginx is a plain pod as a tenant writes it, changed by tweaks.
func nginx(tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "nginx",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "html", MountPath: "/usr/share/nginx/html"},
					{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "html", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "html"},
				}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}},
				}}},
			},
		},
	}
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

func podSC(p *corev1.Pod) *corev1.PodSecurityContext {
	if p.Spec.SecurityContext == nil {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	return p.Spec.SecurityContext
}

func containerSC(c *corev1.Container) *corev1.SecurityContext {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	return c.SecurityContext
}

// nonRoot sets what the hard profile cannot default: the user to run as.
func nonRoot(p *corev1.Pod) {
	podSC(p).RunAsNonRoot = ptr.To(true)
	podSC(p).RunAsUser = ptr.To[int64](101)
}

func withContainer(f func(*corev1.Container)) func(*corev1.Pod) {
	return func(p *corev1.Pod) { f(&p.Spec.Containers[0]) }
}

func withContainerSC(f func(*corev1.SecurityContext)) func(*corev1.Pod) {
	return withContainer(func(c *corev1.Container) { f(containerSC(c)) })
}

func withPodSC(f func(*corev1.PodSecurityContext)) func(*corev1.Pod) {
	return func(p *corev1.Pod) { f(podSC(p)) }
}

func withSpec(f func(*corev1.PodSpec)) func(*corev1.Pod) {
	return func(p *corev1.Pod) { f(&p.Spec) }
}

func withVolume(v corev1.Volume) func(*corev1.Pod) {
	return withSpec(func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, v) })
}

func hostPathVolume() corev1.Volume {
	return corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}
}

// policyFor is the policy of a profile, changed by tweaks. The tables of
// this file hold hard tenants to the restricted floor an operator can raise
// them to, which exercises every check; TestTheDefaultFloorRunsRootImages
// covers the default baseline floor of both profiles.
func policyFor(profile Profile, tweaks ...func(*Policy)) *Policy {
	p := Default(profile)
	if profile == ProfileHard {
		p.PodSecurityLevel = psapi.LevelRestricted
	}
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

// summary lists errors as "field: type", sorted, for comparison.
func summary(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	slices.Sort(out)
	return out
}

func TestCheckPod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		profile Profile
		policy  []func(*Policy)
		pod     *corev1.Pod
		want    []string
	}{
		{
			name:    "a plain pod passes in soft once defaulted",
			profile: ProfileSoft,
			pod:     nginx(),
		},
		{
			name:    "a plain pod with runAsNonRoot and runAsUser passes in hard once defaulted",
			profile: ProfileHard,
			pod:     nginx(nonRoot),
		},
		{
			name:    "a pod without runAsNonRoot is refused in hard",
			profile: ProfileHard,
			pod:     nginx(),
			want:    []string{"spec.securityContext.runAsNonRoot: Required value"},
		},
		{
			name:    "a container setting runAsNonRoot false is refused in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) { sc.RunAsNonRoot = ptr.To(false) })),
			want:    []string{"spec.containers[0].securityContext.runAsNonRoot: Invalid value"},
		},
		{
			name:    "a container running as uid 0 is refused in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) { sc.RunAsUser = ptr.To[int64](0) })),
			want:    []string{"spec.containers[0].securityContext.runAsUser: Invalid value"},
		},
		{
			name:    "a root pod passes in soft",
			profile: ProfileSoft,
			pod:     nginx(withPodSC(func(sc *corev1.PodSecurityContext) { sc.RunAsUser = ptr.To[int64](0) })),
		},
		{
			name:    "a privileged container is refused in soft",
			profile: ProfileSoft,
			pod:     nginx(withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want:    []string{"spec.containers[0].securityContext.privileged: Invalid value"},
		},
		{
			name:    "a privileged container is refused in hard and keeps its privilege escalation undefaulted",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want: []string{
				"spec.containers[0].securityContext.allowPrivilegeEscalation: Required value",
				"spec.containers[0].securityContext.privileged: Invalid value",
			},
		},
		{
			name:    "a privileged ephemeral container is refused",
			profile: ProfileSoft,
			pod: nginx(withSpec(func(s *corev1.PodSpec) {
				s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
					Name: "debug", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				}}}
			})),
			want: []string{"spec.ephemeralContainers[0].securityContext.privileged: Invalid value"},
		},
		{
			name:    "an init container with a host port is refused",
			profile: ProfileSoft,
			pod: nginx(withSpec(func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Ports: []corev1.ContainerPort{{ContainerPort: 53, HostPort: 53}}}}
			})),
			want: []string{"spec.initContainers[0].ports[0].hostPort: Invalid value"},
		},
		{
			name:    "an Unconfined seccomp profile on the pod is refused in soft",
			profile: ProfileSoft,
			pod: nginx(withPodSC(func(sc *corev1.PodSecurityContext) {
				sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			})),
			want: []string{"spec.securityContext.seccompProfile.type: Invalid value"},
		},
		{
			name:    "an Unconfined seccomp profile on a container is refused in hard",
			profile: ProfileHard,
			pod: nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) {
				sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			})),
			want: []string{"spec.containers[0].securityContext.seccompProfile.type: Invalid value"},
		},
		{
			name:    "host network and PID namespaces are refused",
			profile: ProfileSoft,
			pod:     nginx(withSpec(func(s *corev1.PodSpec) { s.HostNetwork, s.HostPID = true, true })),
			want:    []string{"spec.hostNetwork: Invalid value", "spec.hostPID: Invalid value"},
		},
		{
			name:    "a capability outside the default set is refused in soft",
			profile: ProfileSoft,
			pod: nginx(withContainerSC(func(sc *corev1.SecurityContext) {
				sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"CHOWN", "NET_ADMIN"}}
			})),
			want: []string{"spec.containers[0].securityContext.capabilities.add[1]: Invalid value"},
		},
		{
			name:    "a default capability is refused in hard",
			profile: ProfileHard,
			pod: nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) {
				sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE", "CHOWN"}}
			})),
			want: []string{"spec.containers[0].securityContext.capabilities.add[1]: Invalid value"},
		},
		{
			name:    "an unsafe sysctl is refused next to a safe one",
			profile: ProfileSoft,
			pod: nginx(withPodSC(func(sc *corev1.PodSecurityContext) {
				sc.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}, {Name: "kernel.msgmax", Value: "1"}}
			})),
			want: []string{"spec.securityContext.sysctls[1].name: Invalid value"},
		},
		{
			name:    "an unmasked /proc is refused",
			profile: ProfileSoft,
			pod: nginx(withContainerSC(func(sc *corev1.SecurityContext) {
				sc.ProcMount = ptr.To(corev1.UnmaskedProcMount)
			})),
			want: []string{"spec.containers[0].securityContext.procMount: Invalid value"},
		},
		{
			name:    "an SELinux user and a foreign SELinux type are refused",
			profile: ProfileSoft,
			pod: nginx(withPodSC(func(sc *corev1.PodSecurityContext) {
				sc.SELinuxOptions = &corev1.SELinuxOptions{User: "system_u", Type: "spc_t"}
			})),
			want: []string{"spec.securityContext.seLinuxOptions.type: Invalid value", "spec.securityContext.seLinuxOptions.user: Invalid value", "spec.securityContext.seLinuxOptions: Invalid value"},
		},
		{
			name:    "an unconfined AppArmor annotation is refused",
			profile: ProfileSoft,
			pod: nginx(func(p *corev1.Pod) {
				p.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "nginx": "unconfined"}
			}),
			want: []string{"metadata.annotations[container.apparmor.security.beta.kubernetes.io/nginx]: Invalid value"},
		},
		{
			name:    "an unconfined AppArmor profile is refused",
			profile: ProfileHard,
			pod: nginx(nonRoot, withContainerSC(func(sc *corev1.SecurityContext) {
				sc.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
			})),
			want: []string{"spec.containers[0].securityContext.appArmorProfile.type: Invalid value"},
		},
		{
			name:    "a probe aimed at another host is refused",
			profile: ProfileSoft,
			pod: nginx(withContainer(func(c *corev1.Container) {
				c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "169.254.169.254"}}}
			})),
			want: []string{"spec.containers[0].livenessProbe.httpGet.host: Invalid value"},
		},
		{
			name:    "a hostPath volume is refused in soft",
			profile: ProfileSoft,
			pod:     nginx(withVolume(hostPathVolume())),
			want:    []string{"spec.volumes[2].hostPath: Forbidden"},
		},
		{
			name:    "a hostPath volume is refused in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withVolume(hostPathVolume())),
			want:    []string{"spec.volumes[2].hostPath: Forbidden"},
		},
		{
			name:    "a hostPath volume passes in soft when the operator allows it",
			profile: ProfileSoft,
			policy:  []func(*Policy){func(p *Policy) { p.VolumeTypes = []string{"hostPath"} }},
			pod:     nginx(withVolume(hostPathVolume())),
		},
		{
			name:    "a hostPath volume passes in hard when the operator allows it",
			profile: ProfileHard,
			policy:  []func(*Policy){func(p *Policy) { p.VolumeTypes = []string{"hostPath"} }},
			pod:     nginx(nonRoot, withVolume(hostPathVolume())),
		},
		{
			name:    "an NFS volume that Pod Security baseline would allow is refused",
			profile: ProfileSoft,
			pod: nginx(withVolume(corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{
				NFS: &corev1.NFSVolumeSource{Server: "nfs.example.com", Path: "/"},
			}})),
			want: []string{"spec.volumes[2].nfs: Forbidden"},
		},
		{
			name:    "a nodeName passes: HostNodeSelection decides it against the virtual nodes",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { s.NodeName = "worker-1" })),
		},
		{
			name:    "a toleration outside the allowlist is refused",
			profile: ProfileHard,
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}}
			})),
			want: []string{"spec.tolerations[0]: Invalid value"},
		},
		{
			name:    "an allowlisted toleration passes",
			profile: ProfileHard,
			policy: []func(*Policy){func(p *Policy) {
				p.Tolerations = []TolerationRule{{Key: "example.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			}},
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "example.com/gpu", Value: "a100", Effect: corev1.TaintEffectNoSchedule}}
			})),
		},
		{
			name:    "an Exists toleration is refused where only Equal is allowed",
			profile: ProfileHard,
			policy: []func(*Policy){func(p *Policy) {
				p.Tolerations = []TolerationRule{{Key: "example.com/gpu"}}
			}},
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "example.com/gpu", Operator: corev1.TolerationOpExists}}
			})),
			want: []string{"spec.tolerations[0]: Invalid value"},
		},
		{
			name:    "a toleration of every effect is refused where one effect is allowed",
			profile: ProfileHard,
			policy: []func(*Policy){func(p *Policy) {
				p.Tolerations = []TolerationRule{{Key: "example.com/gpu", Effect: corev1.TaintEffectNoSchedule}}
			}},
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "example.com/gpu", Value: "a100"}}
			})),
			want: []string{"spec.tolerations[0]: Invalid value"},
		},
		{
			name:    "the tolerations the API server adds to every pod pass",
			profile: ProfileHard,
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{
					{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
					{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				}
			})),
		},
		{
			name:    "a runtime class outside the allowlist is refused in soft",
			profile: ProfileSoft,
			policy:  []func(*Policy){func(p *Policy) { p.RuntimeClasses.Allowed = []string{"gvisor"} }},
			pod:     nginx(withSpec(func(s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("runc-privileged") })),
			want:    []string{"spec.runtimeClassName: Invalid value"},
		},
		{
			name:    "an allowlisted runtime class passes in soft",
			profile: ProfileSoft,
			policy:  []func(*Policy){func(p *Policy) { p.RuntimeClasses.Allowed = []string{"gvisor"} }},
			pod:     nginx(withSpec(func(s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("gvisor") })),
		},
		{
			name:    "a runtime class other than the forced one is refused in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("runc") })),
			want:    []string{"spec.runtimeClassName: Invalid value"},
		},
		{
			name:    "the forced runtime class passes in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("kata") })),
		},
		{
			name:    "a priority class outside the map is refused",
			profile: ProfileHard,
			policy:  []func(*Policy){func(p *Policy) { p.PriorityClasses.Classes = map[string]string{"low": "tenant-low"} }},
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "system-node-critical" })),
			want:    []string{"spec.priorityClassName: Invalid value"},
		},
		{
			name:    "a mapped priority class passes",
			profile: ProfileHard,
			policy:  []func(*Policy){func(p *Policy) { p.PriorityClasses.Classes = map[string]string{"low": "tenant-low"} }},
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "low" })),
		},
		{
			name:    "any nodeSelector key passes: HostNodeSelection decides keys outside the allowlist",
			profile: ProfileHard,
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.NodeSelector = map[string]string{corev1.LabelArchStable: "arm64", corev1.LabelHostname: "worker-1"}
			})),
		},
		{
			name:    "node affinity keys and fields outside the allowlist pass: HostNodeSelection decides them",
			profile: ProfileSoft,
			pod: nginx(withSpec(func(s *corev1.PodSpec) {
				s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{
							{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
							{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.NodeSelectorOpExists},
						},
						MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"worker-1"}}},
					}}},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "example.com/fast", Operator: corev1.NodeSelectorOpExists}},
					}}},
				}}
			})),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := tc.pod.DeepCopy()
			DefaultPod(&pod.Spec, policyFor(tc.profile))
			errs := CheckPod(&pod.ObjectMeta, &pod.Spec, nil, policyFor(tc.profile, tc.policy...))
			if diff := cmp.Diff(tc.want, summary(errs), cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
			}
			for _, e := range errs {
				if !strings.Contains(e.Detail, "the "+string(tc.profile)+" profile") {
					t.Errorf("error does not name the %s profile: %v", tc.profile, e)
				}
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func TestCheckPodMessagesSayWhatToSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		profile Profile
		pod     *corev1.Pod
		want    []string
	}{
		{
			name:    "runAsNonRoot in hard",
			profile: ProfileHard,
			pod:     nginx(),
			want: []string{
				"spec.securityContext.runAsNonRoot: Required value: must be true in the hard profile (Pod Security restricted); set runAsNonRoot: true and a non-zero runAsUser",
			},
		},
		{
			name:    "privileged in soft",
			profile: ProfileSoft,
			pod:     nginx(withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want: []string{
				"spec.containers[0].securityContext.privileged: Invalid value: true: privileged containers are not allowed in the soft profile (Pod Security baseline); remove privileged: true",
			},
		},
		{
			name:    "hostPath in hard",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withVolume(hostPathVolume())),
			want: []string{
				`spec.volumes[2].hostPath: Forbidden: volume "host": hostPath volumes are not allowed in the hard profile; ` +
					`use one of "configMap", "secret", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim", "ephemeral", or ask the operator to allow hostPath`,
			},
		},
		{
			name:    "toleration in hard",
			profile: ProfileHard,
			pod: nginx(nonRoot, withSpec(func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "dedicated", Value: "other", Effect: corev1.TaintEffectNoSchedule}}
			})),
			want: []string{
				`spec.tolerations[0]: Invalid value: {"key":"dedicated","value":"other","effect":"NoSchedule"}: toleration is not allowed in the hard profile (the policy allows none); remove it`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := tc.pod.DeepCopy()
			DefaultPod(&pod.Spec, policyFor(tc.profile))
			var got []string
			for _, e := range CheckPod(&pod.ObjectMeta, &pod.Spec, nil, policyFor(tc.profile)) {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckPodWithoutDefaultsRefusesWhatDefaultsWouldSet(t *testing.T) {
	t.Parallel()
	pod := nginx(nonRoot)
	got := summary(CheckPod(&pod.ObjectMeta, &pod.Spec, nil, policyFor(ProfileHard)))
	want := []string{
		"spec.containers[0].securityContext.allowPrivilegeEscalation: Required value",
		"spec.containers[0].securityContext.capabilities.drop: Required value",
		"spec.securityContext.seccompProfile: Required value",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestCheckPodNamesFieldsOfAPodTemplate(t *testing.T) {
	t.Parallel()
	pod := nginx(func(p *corev1.Pod) {
		p.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "nginx": "unconfined"}
	}, withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) }))
	template := corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	DefaultPod(&template.Spec, Default(ProfileSoft))
	got := summary(CheckPod(&template.ObjectMeta, &template.Spec, field.NewPath("spec", "template"), Default(ProfileSoft)))
	want := []string{
		"spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/nginx]: Invalid value",
		"spec.template.spec.containers[0].securityContext.privileged: Invalid value",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestCheckPodDoesNotModifyThePod(t *testing.T) {
	t.Parallel()
	pod := nginx(withContainerSC(func(sc *corev1.SecurityContext) {
		sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}
	}))
	before := pod.DeepCopy()
	CheckPod(&pod.ObjectMeta, &pod.Spec, nil, policyFor(ProfileHard))
	if diff := cmp.Diff(before, pod); diff != "" {
		t.Errorf("CheckPod modified the pod (-before +after):\n%s", diff)
	}
}

func TestDefaultPod(t *testing.T) {
	t.Parallel()
	runtimeDefault := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	safe := func(sc *corev1.SecurityContext) {
		sc.AllowPrivilegeEscalation = ptr.To(false)
		sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	withInit := withSpec(func(s *corev1.PodSpec) {
		s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
	})
	tests := []struct {
		name    string
		profile Profile
		pod     *corev1.Pod
		want    *corev1.Pod
	}{
		{
			name:    "soft sets only the pod's seccomp profile",
			profile: ProfileSoft,
			pod:     nginx(withInit),
			want:    nginx(withInit, withPodSC(func(sc *corev1.PodSecurityContext) { sc.SeccompProfile = runtimeDefault })),
		},
		{
			name:    "hard also forbids escalation and drops all capabilities in every container",
			profile: ProfileHard,
			pod:     nginx(withInit),
			want: nginx(withInit,
				withPodSC(func(sc *corev1.PodSecurityContext) { sc.SeccompProfile = runtimeDefault }),
				withContainerSC(safe),
				withSpec(func(s *corev1.PodSpec) { safe(containerSC(&s.InitContainers[0])) }),
			),
		},
		{
			name:    "hard keeps what the tenant set, adding ALL to its drops",
			profile: ProfileHard,
			pod: nginx(
				withPodSC(func(sc *corev1.PodSecurityContext) {
					sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
				}),
				withContainerSC(func(sc *corev1.SecurityContext) {
					sc.AllowPrivilegeEscalation = ptr.To(true)
					sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}
				}),
			),
			want: nginx(
				withPodSC(func(sc *corev1.PodSecurityContext) {
					sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
				}),
				withContainerSC(func(sc *corev1.SecurityContext) {
					sc.AllowPrivilegeEscalation = ptr.To(true)
					sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW", "ALL"}}
				}),
			),
		},
		{
			name:    "hard leaves escalation unset on a privileged container, which the API server would otherwise refuse",
			profile: ProfileHard,
			pod:     nginx(withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want: nginx(
				withPodSC(func(sc *corev1.PodSecurityContext) { sc.SeccompProfile = runtimeDefault }),
				withContainerSC(func(sc *corev1.SecurityContext) {
					sc.Privileged = ptr.To(true)
					sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
				}),
			),
		},
		{
			name:    "a Windows pod is left alone",
			profile: ProfileHard,
			pod:     nginx(withSpec(func(s *corev1.PodSpec) { s.OS = &corev1.PodOS{Name: corev1.Windows} })),
			want:    nginx(withSpec(func(s *corev1.PodSpec) { s.OS = &corev1.PodOS{Name: corev1.Windows} })),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.pod.DeepCopy()
			DefaultPod(&got.Spec, policyFor(tc.profile))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("defaulted pod (-want +got):\n%s", diff)
			}
			again := got.DeepCopy()
			DefaultPod(&again.Spec, policyFor(tc.profile))
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("defaulting twice differs from once (-once +twice):\n%s", diff)
			}
		})
	}
}
