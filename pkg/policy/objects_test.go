package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

func service(tweaks ...func(*corev1.ServiceSpec)) *corev1.ServiceSpec {
	s := &corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Port: 80}},
	}
	for _, tweak := range tweaks {
		tweak(s)
	}
	return s
}

func ofType(t corev1.ServiceType) func(*corev1.ServiceSpec) {
	return func(s *corev1.ServiceSpec) { s.Type = t }
}

func TestCheckService(t *testing.T) {
	t.Parallel()
	allowAll := func(p *Policy) {
		p.ServiceTypes = []corev1.ServiceType{corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}
	}
	tests := []struct {
		name    string
		policy  []func(*Policy)
		service *corev1.ServiceSpec
		want    []string
	}{
		{name: "a Service without a type passes", service: service()},
		{name: "a ClusterIP Service passes", service: service(ofType(corev1.ServiceTypeClusterIP))},
		{name: "a headless Service passes", service: service(func(s *corev1.ServiceSpec) { s.ClusterIP = corev1.ClusterIPNone })},
		{
			name:    "external IPs are refused even when every type is allowed",
			policy:  []func(*Policy){allowAll},
			service: service(func(s *corev1.ServiceSpec) { s.ExternalIPs = []string{"192.0.2.10"} }),
			want:    []string{"spec.externalIPs[0]: Invalid value"},
		},
		{name: "a NodePort Service is refused", service: service(ofType(corev1.ServiceTypeNodePort)), want: []string{"spec.type: Invalid value"}},
		{name: "a LoadBalancer Service is refused", service: service(ofType(corev1.ServiceTypeLoadBalancer)), want: []string{"spec.type: Invalid value"}},
		{name: "an ExternalName Service is refused", service: service(ofType(corev1.ServiceTypeExternalName)), want: []string{"spec.type: Invalid value"}},
		{name: "a NodePort Service passes when allowed", policy: []func(*Policy){allowAll}, service: service(ofType(corev1.ServiceTypeNodePort))},
		{name: "a LoadBalancer Service passes when allowed", policy: []func(*Policy){allowAll}, service: service(ofType(corev1.ServiceTypeLoadBalancer))},
		{name: "an ExternalName Service passes when allowed", policy: []func(*Policy){allowAll}, service: service(ofType(corev1.ServiceTypeExternalName))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := summary(CheckService(tc.service, policyFor(ProfileHard, tc.policy...)))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckServiceMessage(t *testing.T) {
	t.Parallel()
	errs := CheckService(service(ofType(corev1.ServiceTypeNodePort)), Default(ProfileSoft))
	want := `spec.type: Invalid value: "NodePort": Service type is not allowed in the soft profile; use one of "ClusterIP" (clusterIP: None for a headless Service)`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("CheckService = %v, want %q", errs, want)
	}
}

func TestCheckMeta(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		want        []string
	}{
		{
			name:        "ordinary keys pass",
			labels:      map[string]string{"app": "web", "app.kubernetes.io/name": "web", "notknest.io/x": "y"},
			annotations: map[string]string{"example.com/owner": "team-a"},
		},
		{
			name:   "a knest.io label is refused",
			labels: map[string]string{"knest.io/tenant": "other"},
			want:   []string{"metadata.labels[knest.io/tenant]: Invalid value"},
		},
		{
			name:        "a knest.io subdomain annotation is refused, whatever its case",
			annotations: map[string]string{"sync.knest.io/skip": "true", "Tenant.KNEST.io/x": "y"},
			want: []string{
				"metadata.annotations[Tenant.KNEST.io/x]: Invalid value",
				"metadata.annotations[sync.knest.io/skip]: Invalid value",
			},
		},
		{
			name:        "Pod Security keys are the tenant's own business on any object",
			labels:      map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
			annotations: map[string]string{"pod-security.kubernetes.io/exempt": "true"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			meta := &metav1.ObjectMeta{Name: "x", Labels: tc.labels, Annotations: tc.annotations}
			got := summary(CheckMeta(meta, nil, field.NewPath("metadata")))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// An update may keep the knest keys the stored object has (knest set them:
// the conformance suite labels the tenant's virtual Nodes, which carry
// knest.io/virtual-node), but not add, change or remove one.
func TestCheckMetaOnUpdate(t *testing.T) {
	t.Parallel()
	stored := &metav1.ObjectMeta{Name: "node", Labels: map[string]string{"knest.io/virtual-node": "true", "kubernetes.io/hostname": "node"}}
	tests := []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{name: "a label of the tenant's added beside knest's", labels: map[string]string{"knest.io/virtual-node": "true", "kubernetes.io/hostname": "node", "kubernetes.io/e2e-42": "42"}},
		{name: "knest's label changed", labels: map[string]string{"knest.io/virtual-node": "false"}, want: []string{"metadata.labels[knest.io/virtual-node]: Invalid value"}},
		{name: "knest's label removed", labels: map[string]string{"kubernetes.io/hostname": "node"}, want: []string{"metadata.labels[knest.io/virtual-node]: Forbidden"}},
		{name: "another knest label added", labels: map[string]string{"knest.io/virtual-node": "true", "knest.io/tenant": "other"}, want: []string{"metadata.labels[knest.io/tenant]: Invalid value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			meta := &metav1.ObjectMeta{Name: "node", Labels: tc.labels}
			if diff := cmp.Diff(tc.want, summary(CheckMeta(meta, stored, field.NewPath("metadata"))), cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamespacePodSecurityLabelsAreNeverRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  *Policy
		labels  map[string]string
		refused []string
		warned  []string
	}{
		{
			name:   "enforce=privileged (as the conformance suite labels its namespaces) is accepted with a warning in hard",
			policy: Default(ProfileHard),
			labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
			warned: []string{"pod-security.kubernetes.io/enforce=privileged has no effect below the floor: every pod of this tenant is held to Pod Security baseline (the hard profile (Pod Security baseline))"},
		},
		{
			name:   "enforce=privileged is accepted with a warning in soft",
			policy: Default(ProfileSoft),
			labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "privileged"},
			warned: []string{
				"pod-security.kubernetes.io/enforce=privileged has no effect below the floor: every pod of this tenant is held to Pod Security baseline (the soft profile (Pod Security baseline))",
				"pod-security.kubernetes.io/warn=privileged has no effect below the floor: every pod of this tenant is held to Pod Security baseline (the soft profile (Pod Security baseline))",
			},
		},
		{
			name:   "baseline is below a floor the operator raised to restricted",
			policy: func() *Policy { p := Default(ProfileHard); p.PodSecurityLevel = psapi.LevelRestricted; return p }(),
			labels: map[string]string{"pod-security.kubernetes.io/audit": "baseline"},
			warned: []string{"pod-security.kubernetes.io/audit=baseline has no effect below the floor: every pod of this tenant is held to Pod Security restricted (the hard profile (Pod Security restricted))"},
		},
		{
			name:   "tightening to restricted needs no warning",
			policy: Default(ProfileSoft),
			labels: map[string]string{
				"pod-security.kubernetes.io/enforce":         "restricted",
				"pod-security.kubernetes.io/enforce-version": "latest",
				"pod-security.kubernetes.io/audit":           "baseline",
			},
		},
		{
			name:   "values upstream Pod Security does not know are left to it",
			policy: Default(ProfileHard),
			labels: map[string]string{"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/exempt": "true"},
		},
		{
			name:    "knest keys are refused",
			policy:  Default(ProfileHard),
			labels:  map[string]string{"knest.io/tenant": "other", "Sub.KNEST.io/x": "y"},
			refused: []string{"metadata.labels[Sub.KNEST.io/x]: Invalid value", "metadata.labels[knest.io/tenant]: Invalid value"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			meta := &metav1.ObjectMeta{Name: "team-a", Labels: tc.labels}
			if diff := cmp.Diff(tc.refused, summary(CheckMeta(meta, nil, field.NewPath("metadata"))), cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warned, NamespaceWarnings(meta, tc.policy), cmpEmpty); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckPriorityClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxValue *int32
		value    int32
		want     []string
	}{
		{name: "the highest user priority passes by default", value: 1_000_000_000},
		{name: "a system priority is refused by default", value: 2_000_000_000, want: []string{"value: Invalid value"}},
		{name: "a negative priority passes", value: -10},
		{name: "the cap passes", maxValue: ptr.To[int32](1000), value: 1000},
		{name: "above the cap is refused", maxValue: ptr.To[int32](1000), value: 1001, want: []string{"value: Invalid value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Default(ProfileHard)
			if tc.maxValue != nil {
				p.PriorityClasses.MaxValue = tc.maxValue
			}
			got := summary(CheckPriorityClass(tc.value, p))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
