package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

// poolPolicy is a policy with a dedicated node pool.
func poolPolicy(profile Profile) *Policy {
	return policyFor(profile, func(p *Policy) {
		p.Placement = Placement{
			NodeSelector: map[string]string{"example.com/pool": "acme"},
			Tolerations: []corev1.Toleration{{
				Key: "example.com/pool", Operator: corev1.TolerationOpEqual, Value: "acme", Effect: corev1.TaintEffectNoSchedule,
			}},
		}
		p.PriorityClasses.Classes = map[string]string{"low": "tenant-low"}
	})
}

func TestForceHostPod(t *testing.T) {
	t.Parallel()
	poolToleration := corev1.Toleration{
		Key: "example.com/pool", Operator: corev1.TolerationOpEqual, Value: "acme", Effect: corev1.TaintEffectNoSchedule,
	}
	translated := func(tweaks ...func(*corev1.Pod)) *corev1.Pod {
		return nginx(append([]func(*corev1.Pod){nonRoot, withSpec(func(s *corev1.PodSpec) {
			s.NodeSelector = map[string]string{"example.com/pool": "other", corev1.LabelArchStable: "arm64"}
			s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent}}
		})}, tweaks...)...)
	}
	tests := []struct {
		name    string
		profile Profile
		policy  []func(*Policy)
		pod     *corev1.Pod
		want    *corev1.Pod
	}{
		{
			name:    "hard at the restricted floor forces the sandbox, the pool, no token and always pulling, and defaults what restricted needs",
			profile: ProfileHard,
			pod:     translated(),
			want: translated(withSpec(func(s *corev1.PodSpec) {
				s.RuntimeClassName = ptr.To("kata")
				s.NodeSelector["example.com/pool"] = "acme"
				s.Tolerations = []corev1.Toleration{poolToleration}
				s.AutomountServiceAccountToken = ptr.To(false)
				s.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
				for _, c := range []*corev1.Container{&s.InitContainers[0], &s.Containers[0]} {
					c.ImagePullPolicy = corev1.PullAlways
					c.SecurityContext = &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					}
				}
			})),
		},
		{
			name:    "hard at its default baseline floor forces the sandbox, the pool and always pulling, drops only NET_RAW and leaves a root image alone",
			profile: ProfileHard,
			policy:  []func(*Policy){func(p *Policy) { p.PodSecurityLevel = psapi.LevelBaseline }},
			pod:     translated(func(p *corev1.Pod) { p.Spec.SecurityContext = nil }),
			want: translated(withSpec(func(s *corev1.PodSpec) {
				s.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
				s.RuntimeClassName = ptr.To("kata")
				s.NodeSelector["example.com/pool"] = "acme"
				s.Tolerations = []corev1.Toleration{poolToleration}
				s.AutomountServiceAccountToken = ptr.To(false)
				for _, c := range []*corev1.Container{&s.InitContainers[0], &s.Containers[0]} {
					c.ImagePullPolicy = corev1.PullAlways
					c.SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}}
				}
			})),
		},
		{
			name:    "soft forces the pool, no token, a seccomp profile and no NET_RAW, and leaves image pulls alone",
			profile: ProfileSoft,
			pod:     translated(),
			want: translated(withSpec(func(s *corev1.PodSpec) {
				s.NodeSelector["example.com/pool"] = "acme"
				s.Tolerations = []corev1.Toleration{poolToleration}
				s.AutomountServiceAccountToken = ptr.To(false)
				s.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
				for _, c := range []*corev1.Container{&s.InitContainers[0], &s.Containers[0]} {
					c.SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}}
				}
			})),
		},
		{
			name:    "soft raised to restricted adds what restricted needs but still no forced pulls",
			profile: ProfileSoft,
			policy:  []func(*Policy){func(p *Policy) { p.PodSecurityLevel = psapi.LevelRestricted }},
			pod:     translated(),
			want: translated(withSpec(func(s *corev1.PodSpec) {
				s.NodeSelector["example.com/pool"] = "acme"
				s.Tolerations = []corev1.Toleration{poolToleration}
				s.AutomountServiceAccountToken = ptr.To(false)
				s.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
				for _, c := range []*corev1.Container{&s.InitContainers[0], &s.Containers[0]} {
					c.SecurityContext = &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					}
				}
			})),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := poolPolicy(tc.profile)
			for _, tweak := range tc.policy {
				tweak(p)
			}
			once := tc.pod.DeepCopy()
			ForceHostPod(once, p)
			if diff := cmp.Diff(tc.want, once); diff != "" {
				t.Errorf("forced pod (-want +got):\n%s", diff)
			}
			twice := once.DeepCopy()
			ForceHostPod(twice, p)
			if diff := cmp.Diff(once, twice); diff != "" {
				t.Errorf("forcing twice differs from once (-once +twice):\n%s", diff)
			}
			if errs := CheckHostPod(once, p); len(errs) > 0 {
				t.Errorf("CheckHostPod refuses the forced pod: %v", errs)
			}
		})
	}
}

func TestCheckHostPod(t *testing.T) {
	t.Parallel()
	forced := func(profile Profile, tweaks ...func(*corev1.Pod)) *corev1.Pod {
		pod := nginx(nonRoot)
		ForceHostPod(pod, poolPolicy(profile))
		for _, tweak := range tweaks {
			tweak(pod)
		}
		return pod
	}
	tests := []struct {
		name    string
		profile Profile
		pod     *corev1.Pod
		want    []string
	}{
		{
			name:    "a forced pod with a mapped host priority class passes",
			profile: ProfileHard,
			pod:     forced(ProfileHard, withSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "tenant-low" })),
		},
		{
			name:    "a tenant priority class name is refused on the host",
			profile: ProfileHard,
			pod:     forced(ProfileHard, withSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "low" })),
			want:    []string{"spec.priorityClassName: Invalid value"},
		},
		{
			name:    "a pod that was never forced is refused for each forced field",
			profile: ProfileHard,
			pod:     nginx(nonRoot, withSpec(func(s *corev1.PodSpec) { DefaultPod(s, policyFor(ProfileHard)) })),
			want: []string{
				"spec.automountServiceAccountToken: Invalid value",
				"spec.containers[0].imagePullPolicy: Invalid value",
				"spec.nodeSelector[example.com/pool]: Required value",
				"spec.runtimeClassName: Required value",
				"spec.tolerations: Required value",
			},
		},
		{
			name:    "another runtime class is refused",
			profile: ProfileHard,
			pod:     forced(ProfileHard, withSpec(func(s *corev1.PodSpec) { s.RuntimeClassName = ptr.To("runc") })),
			want:    []string{"spec.runtimeClassName: Invalid value"},
		},
		{
			name:    "another pool is refused",
			profile: ProfileSoft,
			pod:     forced(ProfileSoft, withSpec(func(s *corev1.PodSpec) { s.NodeSelector["example.com/pool"] = "other" })),
			want:    []string{"spec.nodeSelector[example.com/pool]: Invalid value"},
		},
		{
			name:    "a missing seccomp profile is refused in soft",
			profile: ProfileSoft,
			pod:     forced(ProfileSoft, withPodSC(func(sc *corev1.PodSecurityContext) { sc.SeccompProfile = nil })),
			want:    []string{"spec.securityContext.seccompProfile: Required value"},
		},
		{
			name:    "a host node label key outside the allowlist is refused on the host",
			profile: ProfileSoft,
			pod:     forced(ProfileSoft, withSpec(func(s *corev1.PodSpec) { s.NodeSelector["kubernetes.io/hostname"] = "worker-1" })),
			want:    []string{"spec.nodeSelector[kubernetes.io/hostname]: Invalid value"},
		},
		{
			name:    "node affinity on a key outside the allowlist, or a field other than the name, is refused on the host",
			profile: ProfileSoft,
			pod: forced(ProfileSoft, withSpec(func(s *corev1.PodSpec) {
				s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.NodeSelectorOpExists}},
						MatchFields: []corev1.NodeSelectorRequirement{
							{Key: FieldNodeName, Operator: corev1.NodeSelectorOpIn, Values: []string{"worker-1"}},
							{Key: "spec.unschedulable", Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}},
						},
					}}},
				}}
			})),
			want: []string{
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[1].key: Invalid value",
			},
		},
		{
			name:    "a node name is refused",
			profile: ProfileSoft,
			pod:     forced(ProfileSoft, withSpec(func(s *corev1.PodSpec) { s.NodeName = "worker-1" })),
			want:    []string{"spec.nodeName: Invalid value"},
		},
		{
			name:    "a privileged container is refused",
			profile: ProfileHard,
			pod:     forced(ProfileHard, withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want:    []string{"spec.containers[0].securityContext.privileged: Invalid value"},
		},
		{
			name:    "a hostPath volume is refused",
			profile: ProfileSoft,
			pod:     forced(ProfileSoft, withVolume(hostPathVolume())),
			want:    []string{"spec.volumes[2].hostPath: Forbidden"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := summary(CheckHostPod(tc.pod, poolPolicy(tc.profile)))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
