package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
			name:        "Pod Security keys are refused on any object",
			labels:      map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
			annotations: map[string]string{"pod-security.kubernetes.io/exempt": "true"},
			want: []string{
				"metadata.annotations[pod-security.kubernetes.io/exempt]: Invalid value",
				"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			meta := &metav1.ObjectMeta{Name: "x", Labels: tc.labels, Annotations: tc.annotations}
			got := summary(CheckMeta(meta, field.NewPath("metadata")))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		profile     Profile
		labels      map[string]string
		annotations map[string]string
		want        []string
	}{
		{
			name:    "enforce=privileged is refused in soft",
			profile: ProfileSoft,
			labels:  map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
			want:    []string{"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value"},
		},
		{
			name:    "enforce=privileged is refused in hard",
			profile: ProfileHard,
			labels:  map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
			want:    []string{"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value"},
		},
		{
			name:    "warn=baseline is refused in hard",
			profile: ProfileHard,
			labels:  map[string]string{"pod-security.kubernetes.io/warn": "baseline"},
			want:    []string{"metadata.labels[pod-security.kubernetes.io/warn]: Invalid value"},
		},
		{
			name:    "tightening to restricted passes in soft",
			profile: ProfileSoft,
			labels: map[string]string{
				"pod-security.kubernetes.io/enforce":         "restricted",
				"pod-security.kubernetes.io/enforce-version": "latest",
				"pod-security.kubernetes.io/audit":           "baseline",
			},
		},
		{
			name:    "an unknown level or version is refused",
			profile: ProfileHard,
			labels: map[string]string{
				"pod-security.kubernetes.io/enforce":         "strict",
				"pod-security.kubernetes.io/enforce-version": "v2",
			},
			want: []string{
				"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value",
				"metadata.labels[pod-security.kubernetes.io/enforce]: Unsupported value",
			},
		},
		{
			name:        "other Pod Security keys and knest keys are refused",
			profile:     ProfileHard,
			labels:      map[string]string{"pod-security.kubernetes.io/exempt": "true", "knest.io/tenant": "other"},
			annotations: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			want: []string{
				"metadata.annotations[pod-security.kubernetes.io/enforce]: Invalid value",
				"metadata.labels[knest.io/tenant]: Invalid value",
				"metadata.labels[pod-security.kubernetes.io/exempt]: Invalid value",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			meta := &metav1.ObjectMeta{Name: "team-a", Labels: tc.labels, Annotations: tc.annotations}
			got := summary(CheckNamespace(meta, field.NewPath("metadata"), Default(tc.profile)))
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckNamespaceMessage(t *testing.T) {
	t.Parallel()
	meta := &metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}
	errs := CheckNamespace(meta, field.NewPath("metadata"), Default(ProfileHard))
	want := `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "privileged": would loosen Pod Security below restricted, ` +
		`which the hard profile (Pod Security restricted) enforces in every namespace; remove the label or set it to restricted`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("CheckNamespace = %v, want %q", errs, want)
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
