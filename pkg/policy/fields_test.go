package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestEveryPodFieldHasADisposition(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ   reflect.Type
		rules map[string]FieldRule
	}{
		{reflect.TypeFor[corev1.PodSpec](), PodSpecFields()},
		{reflect.TypeFor[corev1.Container](), ContainerFields()},
		{reflect.TypeFor[corev1.EphemeralContainerCommon](), ContainerFields()},
	} {
		seen := map[string]bool{}
		for i := range tc.typ.NumField() {
			name := jsonName(tc.typ.Field(i))
			seen[name] = true
			rule, ok := tc.rules[name]
			if !ok {
				t.Errorf("%s.%s has no disposition: decide whether knest honours, translates or refuses it", tc.typ.Name(), name)
				continue
			}
			if rule.Disposition == Refused && rule.Reason == "" {
				t.Errorf("%s.%s is refused without a reason", tc.typ.Name(), name)
			}
		}
		for name := range tc.rules {
			if !seen[name] {
				t.Errorf("%s has no field %s, which the table names", tc.typ.Name(), name)
			}
		}
	}
}

// rootImage is a pod as popular charts and kubectl create it: a root image,
// no securityContext at all.
func rootImage(tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := nginx()
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

func TestTheDefaultFloorRunsRootImages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{name: "nginx as kubectl create deployment makes it runs", pod: rootImage()},
		{name: "a container running as root with the default capabilities runs", pod: rootImage(withContainerSC(func(sc *corev1.SecurityContext) {
			sc.RunAsUser = ptr.To[int64](0)
			sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"}}
		}))},
		{name: "a privileged container is refused", pod: rootImage(withContainerSC(func(sc *corev1.SecurityContext) { sc.Privileged = ptr.To(true) })),
			want: []string{"spec.containers[0].securityContext.privileged: Invalid value"}},
		{name: "hostPath is refused", pod: rootImage(withVolume(hostPathVolume())),
			want: []string{"spec.volumes[2].hostPath: Forbidden"}},
		{name: "hostNetwork is refused", pod: rootImage(withSpec(func(s *corev1.PodSpec) { s.HostNetwork = true })),
			want: []string{"spec.hostNetwork: Invalid value"}},
		{name: "NET_RAW and SYS_ADMIN are refused", pod: rootImage(withContainerSC(func(sc *corev1.SecurityContext) {
			sc.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW", "SYS_ADMIN"}}
		})), want: []string{"spec.containers[0].securityContext.capabilities.add[0]: Invalid value", "spec.containers[0].securityContext.capabilities.add[1]: Invalid value"}},
	}
	for _, profile := range []Profile{ProfileHard, ProfileSoft} {
		for _, tc := range tests {
			t.Run(string(profile)+": "+tc.name, func(t *testing.T) {
				t.Parallel()
				p := Default(profile)
				pod := tc.pod.DeepCopy()
				DefaultPod(&pod.Spec, p)
				if diff := cmp.Diff(tc.want, summary(CheckPod(&pod.ObjectMeta, &pod.Spec, nil, p)), cmpEmpty); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				host := pod.DeepCopy()
				ForceHostPod(host, p)
				if tc.want == nil {
					if errs := CheckHostPod(host, p); len(errs) > 0 {
						t.Errorf("the forced host pod of an admitted pod is refused: %v", errs)
					}
					if sc := host.Spec.Containers[0].SecurityContext; sc.AllowPrivilegeEscalation != nil || sc.RunAsNonRoot != nil {
						t.Errorf("forcing must not break a root image: %+v", sc)
					}
				}
			})
		}
	}
}

func TestSideDoorsAreRefused(t *testing.T) {
	t.Parallel()
	projected := func(src corev1.VolumeProjection) func(*corev1.Pod) {
		return withVolume(corev1.Volume{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{src}}}})
	}
	downward := func(path string) func(*corev1.Pod) {
		return withContainer(func(c *corev1.Container) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
		})
	}
	claim := func(class *string) func(*corev1.Pod) {
		return withVolume(corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
			VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class}},
		}}})
	}
	tests := []struct {
		name   string
		policy []func(*Policy)
		pod    *corev1.Pod
		want   []string
	}{
		{name: "a cluster trust bundle (host trust) is refused", pod: rootImage(projected(corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: ptr.To("x"), Path: "ca"}})),
			want: []string{"spec.volumes[2].projected.sources[0].clusterTrustBundle: Forbidden"}},
		{name: "a pod certificate (minted by the host kubelet) is refused", pod: rootImage(projected(corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/s"}})),
			want: []string{"spec.volumes[2].projected.sources[0].podCertificate: Forbidden"}},
		{name: "a Localhost seccomp profile not on the policy is refused", pod: rootImage(withPodSC(func(sc *corev1.PodSecurityContext) {
			sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("../../etc/evil.json")}
		})), want: []string{"spec.securityContext.seccompProfile.localhostProfile: Invalid value"}},
		{name: "a Localhost seccomp profile on the policy is allowed", policy: []func(*Policy){func(p *Policy) { p.SecurityProfiles.SeccompLocalhost = []string{"audit.json"} }},
			pod: rootImage(withPodSC(func(sc *corev1.PodSecurityContext) {
				sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("audit.json")}
			}))},
		{name: "a Localhost AppArmor profile not on the policy is refused", pod: rootImage(withContainerSC(func(sc *corev1.SecurityContext) {
			sc.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptr.To("unconfined-ish")}
		})), want: []string{"spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value"}},
		{name: "an SELinux level shared with another pod is refused", pod: rootImage(withPodSC(func(sc *corev1.PodSecurityContext) {
			sc.SELinuxOptions = &corev1.SELinuxOptions{Level: "s0:c123,c456"}
		})), want: []string{"spec.securityContext.seLinuxOptions: Invalid value"}},
		{name: "the host node's name through the downward API is refused", pod: rootImage(downward("spec.nodeName")),
			want: []string{"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value"}},
		{name: "the host IP through the downward API is allowed (it reads the virtual node's)", pod: rootImage(downward("status.hostIP"))},
		{name: "a custom scheduler is refused", pod: rootImage(withSpec(func(s *corev1.PodSpec) { s.SchedulerName = "my-scheduler" })),
			want: []string{"spec.schedulerName: Forbidden"}},
		{name: "the default scheduler is fine", pod: rootImage(withSpec(func(s *corev1.PodSpec) { s.SchedulerName = corev1.DefaultSchedulerName }))},
		{name: "setHostnameAsFQDN is refused rather than answered with the host's domain", pod: rootImage(withSpec(func(s *corev1.PodSpec) { s.SetHostnameAsFQDN = ptr.To(true) })),
			want: []string{"spec.setHostnameAsFQDN: Forbidden"}},
		{name: "resource claims are refused", pod: rootImage(withSpec(func(s *corev1.PodSpec) {
			s.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To("gpu")}}
		})), want: []string{"spec.resourceClaims: Forbidden"}},
		{name: "an ephemeral volume that could bind a pre-provisioned host volume is refused", pod: rootImage(claim(ptr.To(""))),
			want: []string{"spec.volumes[2].ephemeral.volumeClaimTemplate.spec.storageClassName: Invalid value"}},
		{name: "an ephemeral volume of a class outside the allowlist is refused", pod: rootImage(claim(ptr.To("local-path"))),
			want: []string{"spec.volumes[2].ephemeral.volumeClaimTemplate.spec.storageClassName: Invalid value"}},
		{name: "an ephemeral volume of the default class is allowed", pod: rootImage(claim(nil))},
		{name: "pod affinity naming namespaces both ways is refused", pod: rootImage(withSpec(func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				TopologyKey: "kubernetes.io/hostname", Namespaces: []string{"a"}, LabelSelector: &metav1.LabelSelector{},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}},
			}}}}
		})), want: []string{"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaceSelector: Forbidden"}},
	}
	for _, profile := range []Profile{ProfileHard, ProfileSoft} {
		for _, tc := range tests {
			t.Run(string(profile)+": "+tc.name, func(t *testing.T) {
				t.Parallel()
				p := Default(profile)
				for _, tweak := range tc.policy {
					tweak(p)
				}
				pod := tc.pod.DeepCopy()
				DefaultPod(&pod.Spec, p)
				errs := CheckPod(&pod.ObjectMeta, &pod.Spec, nil, p)
				if diff := cmp.Diff(tc.want, summary(errs), cmpEmpty); diff != "" {
					t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
				}
				for _, e := range errs {
					if e.Detail == "" || strings.Contains(e.Detail, "%!") {
						t.Errorf("refusal without a readable reason: %v", e)
					}
				}
			})
		}
	}
}

func TestHostStorageClass(t *testing.T) {
	t.Parallel()
	withDefault := Default(ProfileHard)
	withDefault.Storage = Storage{Classes: []string{"standard", "fast"}, Default: "standard"}
	tests := []struct {
		name    string
		policy  *Policy
		class   *string
		want    *string
		refused string
	}{
		{name: "no class gets the policy's default", policy: withDefault, want: ptr.To("standard")},
		{name: "no class and no default leaves it to the host", policy: Default(ProfileSoft)},
		{name: "an allowed class is kept", policy: withDefault, class: ptr.To("fast"), want: ptr.To("fast")},
		{name: "another class is refused", policy: withDefault, class: ptr.To("local-path"), refused: `storage class "local-path" is not allowed`},
		{name: "the empty class (pre-provisioned volumes) is refused", policy: withDefault, class: ptr.To(""), refused: "binds pre-provisioned host volumes"},
		{name: "the empty class is allowed when the operator says so", policy: func() *Policy {
			p := Default(ProfileSoft)
			p.Storage.PreProvisioned = true
			return p
		}(), class: ptr.To(""), want: ptr.To("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.policy.HostStorageClass(tc.class)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Errorf("got %v, %v; want a refusal with %q", got, err, tc.refused)
				}
				return
			}
			if err != nil || !cmp.Equal(tc.want, got) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestMetadataAllowlist(t *testing.T) {
	t.Parallel()
	m := MetadataAllowlist{Labels: []string{"app"}, Annotations: []string{"example.com/*", "knest.io/tenant"}}
	for _, tc := range []struct {
		key        string
		label, ann bool
	}{
		{key: "app", label: true},
		{key: "example.com/x", ann: true},
		{key: "sub.example.com/x"},
		{key: "knest.io/tenant"},
	} {
		if got := m.AllowsLabel(tc.key); got != tc.label {
			t.Errorf("AllowsLabel(%q) = %v", tc.key, got)
		}
		if got := m.AllowsAnnotation(tc.key); got != tc.ann {
			t.Errorf("AllowsAnnotation(%q) = %v", tc.key, got)
		}
	}
	if errs := m.validate(nil); len(errs) != 1 || !strings.Contains(errs[0].Error(), "knest.io") {
		t.Errorf("a knest.io key in the allowlist must be refused: %v", errs)
	}
}

func TestHostLimitChecks(t *testing.T) {
	t.Parallel()
	p := Default(ProfileSoft)
	if errs := CheckObjectBytes(DefaultObjectBytes, p); len(errs) != 0 {
		t.Errorf("an object of exactly the cap is refused: %v", errs)
	}
	if errs := CheckObjectBytes(DefaultObjectBytes+1, p); len(errs) != 1 || !strings.Contains(errs[0].Error(), "hostLimits.objectBytes") {
		t.Errorf("an object over the cap: %v", errs)
	}
	if errs := CheckCount("NetworkPolicies", 99, DefaultNetworkPolicies, "networkPolicies", p); len(errs) != 0 {
		t.Errorf("the 100th NetworkPolicy is refused: %v", errs)
	}
	if errs := CheckCount("NetworkPolicies", 100, DefaultNetworkPolicies, "networkPolicies", p); len(errs) != 1 || !strings.Contains(errs[0].Error(), "the tenant has 100 NetworkPolicies") {
		t.Errorf("the 101st NetworkPolicy: %v", errs)
	}
}
