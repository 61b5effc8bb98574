package pods

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// plainPod is a pod as kubectl run or a chart writes it: a root image, no
// security context, the tenant's labels and annotations, as the tenant API
// server stores it after confinement admission.
func plainPod(tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-0", Namespace: "shop", UID: "u1",
			Labels: map[string]string{"app": "api", "sidecar.istio.io/inject": "true"},
			Annotations: map[string]string{
				policy.DefaultContainerAnnotation:                "api",
				"io.kubernetes.cri-o.userns-mode":                "host",
				"kubernetes.io/egress-bandwidth":                 "10G",
				"cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
			}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "api",
			SecurityContext:    &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers:         []corev1.Container{{Name: "api", Image: "nginx", ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

var env = Env{TokenSecret: "knest-token-x", NodeAddress: "10.0.0.9"}

func build(t *testing.T, tenant, current *corev1.Pod, pol *policy.Policy) (*corev1.Pod, error) {
	t.Helper()
	before := tenant.DeepCopy()
	var currentBefore *corev1.Pod
	if current != nil {
		currentBefore = current.DeepCopy()
	}
	got, err := Build(tenant, current, meta, env, pol)
	if diff := cmp.Diff(before, tenant); diff != "" {
		t.Errorf("Build mutated the tenant pod:\n%s", diff)
	}
	if current != nil {
		if diff := cmp.Diff(currentBefore, current); diff != "" {
			t.Errorf("Build mutated the host pod:\n%s", diff)
		}
	}
	return got, err
}

// running is the host pod Build makes for tenant, as the host stores it.
func running(t *testing.T, tenant *corev1.Pod, pol *policy.Policy) *corev1.Pod {
	t.Helper()
	h, err := build(t, tenant, nil, pol)
	if err != nil {
		t.Fatalf("Build refused the pod: %v", err)
	}
	h.UID, h.ResourceVersion, h.Spec.NodeName = "host-uid", "7", "host-node-1"
	return h
}

func TestBuildNewPod(t *testing.T) {
	t.Parallel()
	for _, profile := range []policy.Profile{policy.ProfileHard, policy.ProfileSoft} {
		t.Run(string(profile), func(t *testing.T) {
			t.Parallel()
			pol := policy.Default(profile)
			got := running(t, plainPod(), pol)
			c := got.Spec.Containers[0]
			checks := []struct {
				what string
				ok   bool
			}{
				{"runs a root image as it is (no forced runAsNonRoot or escalation)", got.Spec.SecurityContext.RunAsNonRoot == nil && c.SecurityContext.AllowPrivilegeEscalation == nil},
				{"drops NET_RAW and only NET_RAW", cmp.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"NET_RAW"})},
				{"pulls always in hard, as asked in soft", (profile == policy.ProfileHard) == (c.ImagePullPolicy == corev1.PullAlways)},
				{"runs sandboxed in hard", (profile == policy.ProfileHard) == (ptr.Deref(got.Spec.RuntimeClassName, "") == "kata")},
				{"carries the tenant's labels only under knest's keys", got.Labels["t.knest.io/app"] == "api" && got.Labels["app"] == "" &&
					got.Labels["sidecar.istio.io/inject"] == "" && got.Labels["tp.knest.io/sidecar.istio.io_inject"] == "true"},
				{"carries only allowlisted annotations", got.Annotations[policy.DefaultContainerAnnotation] == "api" &&
					got.Annotations["io.kubernetes.cri-o.userns-mode"] == "" && got.Annotations["kubernetes.io/egress-bandwidth"] == "" &&
					got.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == ""},
				{"tells the downward API the tenant's ServiceAccount and the virtual node's address", got.Annotations[AnnotationServiceAccount] == "api" && got.Annotations[AnnotationHostIP] == "10.0.0.9"},
				{"mounts no host token", got.Spec.ServiceAccountName == HostServiceAccount && !ptr.Deref(got.Spec.AutomountServiceAccountToken, true)},
			}
			for _, check := range checks {
				if !check.ok {
					t.Errorf("the host pod %s:\nmeta %+v\nspec %+v", check.what, got.ObjectMeta, got.Spec)
				}
			}
		})
	}
}

func TestBuildRefusesWhatTheHostMustNotRun(t *testing.T) {
	t.Parallel()
	debug := func(sc *corev1.SecurityContext) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", SecurityContext: sc},
				TargetContainerName:      "api",
			})
		}
	}
	tests := []struct {
		name    string
		tenant  *corev1.Pod
		running bool
		refused string
	}{
		{name: "kubectl debug --profile=sysadmin (a privileged ephemeral container) on a running pod", running: true,
			tenant: plainPod(debug(&corev1.SecurityContext{Privileged: ptr.To(true)})), refused: "ephemeralContainers[0].securityContext.privileged"},
		{name: "an ephemeral container adding SYS_ADMIN", running: true,
			tenant: plainPod(debug(&corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}})), refused: "ephemeralContainers[0].securityContext.capabilities.add[0]"},
		{name: "a pod admitted before the policy tightened, sharing the host network",
			tenant: plainPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), refused: "hostNetwork"},
		{name: "a projected cluster trust bundle",
			tenant: plainPod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "ca", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"), Path: "ca"}}},
				}}}}
			}), refused: "clusterTrustBundle"},
		{name: "a priority class the policy does not map",
			tenant: plainPod(func(p *corev1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }), refused: `spec.priorityClassName: Invalid value: "system-node-critical"`},
	}
	for _, profile := range []policy.Profile{policy.ProfileHard, policy.ProfileSoft} {
		for _, tc := range tests {
			t.Run(string(profile)+": "+tc.name, func(t *testing.T) {
				t.Parallel()
				pol := policy.Default(profile)
				var current *corev1.Pod
				if tc.running {
					current = running(t, plainPod(), pol)
				}
				got, err := build(t, tc.tenant, current, pol)
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("Build = %v, %v; want a refusal naming %q", got != nil, err, tc.refused)
				}
				if !strings.Contains(err.Error(), "the "+string(profile)+" profile") {
					t.Errorf("the refusal does not name the profile: %v", err)
				}
			})
		}
	}
}

func TestBuildUpdatesARunningPodThroughTheRightWrites(t *testing.T) {
	t.Parallel()
	pol := policy.Default(policy.ProfileHard)
	tests := []struct {
		name   string
		change func(*corev1.Pod)
		writes []string
		check  func(t *testing.T, w Write)
	}{
		{name: "a settled pod needs no write", change: func(*corev1.Pod) {}},
		{name: "a new image is a pod update", change: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }, writes: []string{""},
			check: func(t *testing.T, w Write) {
				if w.Pod.Spec.Containers[0].Image != "nginx:2" || w.Pod.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
					t.Errorf("container = %+v", w.Pod.Spec.Containers[0])
				}
			}},
		{name: "a changed label is a pod update under knest's key", change: func(p *corev1.Pod) { p.Labels["app"] = "api-v2" }, writes: []string{""},
			check: func(t *testing.T, w Write) {
				if w.Pod.Labels["t.knest.io/app"] != "api-v2" || w.Pod.Labels["app"] != "" {
					t.Errorf("labels = %v", w.Pod.Labels)
				}
			}},
		{name: "kubectl debug adds an ephemeral container with the forced fields", change: func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", ImagePullPolicy: corev1.PullNever},
				TargetContainerName:      "api",
			}}
		}, writes: []string{"ephemeralcontainers"},
			check: func(t *testing.T, w Write) {
				ec := w.Pod.Spec.EphemeralContainers[0]
				if ec.ImagePullPolicy != corev1.PullAlways || ec.SecurityContext == nil || !cmp.Equal(ec.SecurityContext.Capabilities.Drop, []corev1.Capability{"NET_RAW"}) {
					t.Errorf("the ephemeral container lacks the forced fields: %+v", ec)
				}
			}},
		{name: "an in-place resize goes through the resize subresource", change: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
		}, writes: []string{"resize"}},
		{name: "an image and a resize are two writes, the pod first", change: func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "nginx:2"
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
		}, writes: []string{"", "resize"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant := plainPod()
			current := running(t, tenant, pol)
			tc.change(tenant)
			desired, err := build(t, tenant, current, pol)
			if err != nil {
				t.Fatal(err)
			}
			writes := Writes(current, desired)
			var got []string
			for _, w := range writes {
				got = append(got, w.Subresource)
				if w.Pod.ResourceVersion != current.ResourceVersion || w.Pod.Spec.NodeName != current.Spec.NodeName {
					t.Errorf("write %q does not start from the current pod", w.Subresource)
				}
			}
			if diff := cmp.Diff(tc.writes, got); diff != "" {
				t.Fatalf("writes (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, writes[0])
			}
			// Written one at a time, as the syncer writes them, the pod
			// settles.
			for range len(writes) {
				current = Writes(current, desired)[0].Pod
				if desired, err = build(t, tenant, current, pol); err != nil {
					t.Fatal(err)
				}
			}
			if w := Writes(current, desired); len(w) != 0 {
				t.Errorf("a written pod is not settled: %d more writes, first %q", len(w), w[0].Subresource)
			}
		})
	}
}

func TestBuildDownwardAPIShowsTheTenantsView(t *testing.T) {
	t.Parallel()
	ref := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	tenant := plainPod(func(p *corev1.Pod) {
		p.Annotations["example.com/build"] = "42"
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			ref("APP", "metadata.labels['app']"),
			ref("BUILD", `metadata.annotations["example.com/build"]`),
			ref("HOST_IP", "status.hostIP"),
			ref("SA", "spec.serviceAccountName"),
			ref("POD_IP", "status.podIP"),
		}
	})
	got := running(t, tenant, policy.Default(policy.ProfileSoft))
	var paths []string
	for _, e := range got.Spec.Containers[0].Env {
		paths = append(paths, e.ValueFrom.FieldRef.FieldPath)
	}
	want := []string{
		"metadata.labels['t.knest.io/app']",
		"metadata.annotations['ta.knest.io/example.com_build']",
		"metadata.annotations['" + AnnotationHostIP + "']",
		"metadata.annotations['" + AnnotationServiceAccount + "']",
		"status.podIP",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("downward API paths (-want +got):\n%s", diff)
	}
	if got.Annotations["ta.knest.io/example.com_build"] != "42" {
		t.Errorf("the annotation the pod reads is not on the host pod: %v", got.Annotations)
	}
}

func TestBuildConfinesPodAffinityAndSpreadToTheTenant(t *testing.T) {
	t.Parallel()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}
	tenant := plainPod(func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
				{TopologyKey: corev1.LabelHostname, LabelSelector: sel},
				{TopologyKey: corev1.LabelHostname, LabelSelector: sel, NamespaceSelector: &metav1.LabelSelector{}},
				{TopologyKey: corev1.LabelHostname, LabelSelector: sel, Namespaces: []string{"db"}},
			},
		}}
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel,
		}}
		p.Spec.HostUsers = ptr.To(false)
	})
	got := running(t, tenant, policy.Default(policy.ProfileHard))
	terms := got.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	wantOwn := &metav1.LabelSelector{MatchLabels: map[string]string{"t.knest.io/app": "api", translate.LabelTenant: "acme", translate.LabelNamespace: "shop"}}
	if diff := cmp.Diff(wantOwn, terms[0].LabelSelector); diff != "" {
		t.Errorf("a term without namespaces means the pod's own (-want +got):\n%s", diff)
	}
	wantAll := &metav1.LabelSelector{MatchLabels: map[string]string{"t.knest.io/app": "api", translate.LabelTenant: "acme"}}
	if diff := cmp.Diff(wantAll, terms[1].LabelSelector); diff != "" {
		t.Errorf("an empty namespace selector means the tenant's namespaces, never the host's (-want +got):\n%s", diff)
	}
	wantDB := &metav1.LabelSelector{MatchLabels: map[string]string{"t.knest.io/app": "api", translate.LabelTenant: "acme"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: translate.LabelNamespace, Operator: metav1.LabelSelectorOpIn, Values: []string{"db"}}}}
	if diff := cmp.Diff(wantDB, terms[2].LabelSelector); diff != "" {
		t.Errorf("named namespaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantOwn, got.Spec.TopologySpreadConstraints[0].LabelSelector); diff != "" {
		t.Errorf("spread counts the pod's own namespace (-want +got):\n%s", diff)
	}
	if !ptr.Equal(got.Spec.HostUsers, ptr.To(false)) {
		t.Errorf("a pod that asked for a user namespace must get one on the host: hostUsers %v", got.Spec.HostUsers)
	}
}

func TestBuildLeavesEphemeralContainersToTheirSubresource(t *testing.T) {
	t.Parallel()
	tenant := plainPod(func(p *corev1.Pod) {
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"}}}
	})
	got := running(t, tenant, policy.Default(policy.ProfileSoft))
	if len(got.Spec.EphemeralContainers) != 0 {
		t.Errorf("a new host pod cannot be created with ephemeral containers: %+v", got.Spec.EphemeralContainers)
	}
	desired, err := build(t, tenant, got, policy.Default(policy.ProfileSoft))
	if err != nil {
		t.Fatal(err)
	}
	if w := Writes(got, desired); len(w) != 1 || w[0].Subresource != "ephemeralcontainers" {
		t.Errorf("the ephemeral container must follow through its subresource: %+v", w)
	}
}
