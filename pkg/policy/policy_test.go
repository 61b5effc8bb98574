package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

func TestLoadExample(t *testing.T) {
	t.Parallel()
	got, err := Load(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Policy{
		Profile:        ProfileHard,
		RuntimeClasses: RuntimeClasses{Forced: "kata-qemu"},
		PriorityClasses: PriorityClasses{
			Classes:  map[string]string{"low": "tenant-low", "normal": "tenant-normal"},
			MaxValue: ptr.To[int32](100000),
		},
		Tolerations:   []TolerationRule{{Key: "example.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		NodeLabelKeys: []string{"kubernetes.io/arch", "topology.kubernetes.io/zone", "example.com/gpu"},
		ServiceTypes:  []corev1.ServiceType{corev1.ServiceTypeLoadBalancer},
		VolumeTypes:   []string{"csi"},
		EgressCIDRs:   []string{"10.20.0.0/16", "2001:db8::/32"},
		Placement: Placement{
			NodeSelector: map[string]string{"example.com/pool": "tenant-acme"},
			Tolerations: []corev1.Toleration{{
				Key: "example.com/pool", Operator: corev1.TolerationOpEqual, Value: "tenant-acme", Effect: corev1.TaintEffectNoSchedule,
			}},
		},
		PodSecurityLevel: psapi.LevelRestricted,
		Metadata: MetadataAllowlist{
			Labels:      []string{"example.com/team"},
			Annotations: []string{"kubectl.kubernetes.io/default-container", "example.com/*"},
		},
		SecurityProfiles: SecurityProfiles{
			SeccompLocalhost:  []string{"profiles/audit.json"},
			AppArmorLocalhost: []string{"k8s-apparmor-example-deny-write"},
		},
		Storage:    Storage{Classes: []string{"fast", "standard"}, Default: "standard"},
		HostLimits: HostLimits{ServicePorts: DefaultServicePorts, EndpointSlices: DefaultEndpointSlices, NetworkPolicies: DefaultNetworkPolicies, ObjectBytes: DefaultObjectBytes},
		Datastore:  DatastoreLimits{ObjectCounts: map[string]int{"configmaps": DefaultDatastoreObjects, "secrets": 2000, "deployments.apps": 500}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("loaded policy (-want +got):\n%s", diff)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	nodeLabelKeys := []string{"kubernetes.io/os", "kubernetes.io/arch", "topology.kubernetes.io/zone", "topology.kubernetes.io/region"}
	tests := []struct {
		profile Profile
		want    *Policy
	}{
		{
			profile: ProfileHard,
			want: &Policy{
				Profile:          ProfileHard,
				RuntimeClasses:   RuntimeClasses{Forced: "kata"},
				PriorityClasses:  PriorityClasses{MaxValue: ptr.To[int32](1_000_000_000)},
				NodeLabelKeys:    nodeLabelKeys,
				PodSecurityLevel: psapi.LevelBaseline,
				Metadata:         MetadataAllowlist{Annotations: []string{DefaultContainerAnnotation}},
				HostLimits:       HostLimits{ServicePorts: DefaultServicePorts, EndpointSlices: DefaultEndpointSlices, NetworkPolicies: DefaultNetworkPolicies, ObjectBytes: DefaultObjectBytes},
				Datastore:        DatastoreLimits{ObjectCounts: map[string]int{"configmaps": DefaultDatastoreObjects, "secrets": DefaultDatastoreObjects}},
			},
		},
		{
			profile: ProfileSoft,
			want: &Policy{
				Profile:          ProfileSoft,
				PriorityClasses:  PriorityClasses{MaxValue: ptr.To[int32](1_000_000_000)},
				NodeLabelKeys:    nodeLabelKeys,
				PodSecurityLevel: psapi.LevelBaseline,
				Metadata:         MetadataAllowlist{Annotations: []string{DefaultContainerAnnotation}},
				HostLimits:       HostLimits{ServicePorts: DefaultServicePorts, EndpointSlices: DefaultEndpointSlices, NetworkPolicies: DefaultNetworkPolicies, ObjectBytes: DefaultObjectBytes},
				Datastore:        DatastoreLimits{ObjectCounts: map[string]int{"configmaps": DefaultDatastoreObjects, "secrets": DefaultDatastoreObjects}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.profile), func(t *testing.T) {
			t.Parallel()
			got := Default(tc.profile)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Default(%s) (-want +got):\n%s", tc.profile, diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Default(%s) is invalid: %v", tc.profile, err)
			}
		})
	}
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaultsWhatTheFileLeavesOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want *Policy
	}{
		{name: "an empty file is the hard default", file: "", want: Default(ProfileHard)},
		{name: "a soft file gets no forced runtime class", file: "profile: soft\n", want: Default(ProfileSoft)},
		{
			name: "an empty list of node label keys allows none",
			file: "nodeLabelKeys: []\n",
			want: func() *Policy { p := Default(ProfileHard); p.NodeLabelKeys = []string{}; return p }(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(writePolicy(t, tc.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want []string // each must appear in the error
	}{
		{
			name: "an unknown field",
			file: "profile: hard\nvolumeType: [hostPath]\n",
			want: []string{`unknown field "volumeType"`},
		},
		{
			name: "a repeated field",
			file: "profile: hard\nprofile: soft\n",
			want: []string{`"profile" already set`},
		},
		{
			name: "a bad profile",
			file: "profile: medium\n",
			want: []string{`profile: Unsupported value: "medium": supported values: "hard", "soft"`},
		},
		{
			name: "an invalid CIDR",
			file: "egressCIDRs: [10.0.0.0/8, 10.1.0.0/33]\n",
			want: []string{`egressCIDRs[1]: Invalid value: "10.1.0.0/33": must be a network in CIDR notation`},
		},
		{
			name: "a CIDR with host bits",
			file: "egressCIDRs: [10.1.2.3/16]\n",
			want: []string{`egressCIDRs[0]: Invalid value: "10.1.2.3/16": has host bits set; did you mean 10.1.0.0/16?`},
		},
		{
			name: "a bad toleration operator",
			file: "tolerations:\n- key: example.com/gpu\n  operator: Maybe\n",
			want: []string{`tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"`},
		},
		{
			name: "a toleration rule without a key",
			file: "tolerations:\n- operator: Exists\n",
			want: []string{`tolerations[0].key: Required value: a rule without a key would allow tolerating every taint`},
		},
		{
			name: "a placement toleration without a key and with a bad effect",
			file: "placement:\n  tolerations:\n  - operator: Exists\n    effect: NoRun\n",
			want: []string{
				`placement.tolerations[0].key: Required value`,
				`placement.tolerations[0].effect: Unsupported value: "NoRun"`,
			},
		},
		{
			name: "a misspelled volume type",
			file: "volumeTypes: [hostpath]\n",
			want: []string{`volumeTypes[0]: Unsupported value: "hostpath": supported values: `, `"hostPath"`},
		},
		{
			name: "an unknown service type",
			file: "serviceTypes: [Public]\n",
			want: []string{`serviceTypes[0]: Unsupported value: "Public"`},
		},
		{
			name: "a runtime class allowed next to the forced one",
			file: "runtimeClasses:\n  allowed: [runc]\n",
			want: []string{`runtimeClasses.allowed[0]: Invalid value: "runc": has no effect: every host pod gets the forced runtime class "kata"`},
		},
		{
			name: "a tenant class mapped to a host system class",
			file: "priorityClasses:\n  classes:\n    critical: system-cluster-critical\n",
			want: []string{`priorityClasses.classes[critical]: Invalid value: "system-cluster-critical": host system priority classes are reserved`},
		},
		{
			name: "a priority cap above user priorities",
			file: "priorityClasses:\n  maxValue: 2000000000\n",
			want: []string{`priorityClasses.maxValue: Invalid value: 2000000000: must be at most 1000000000`},
		},
		{
			name: "a bad placement label",
			file: "placement:\n  nodeSelector:\n    example.com/pool: not a value\n",
			want: []string{`placement.nodeSelector[example.com/pool]: Invalid value: "not a value"`},
		},
		{
			name: "a datastore count cap on a resource knestd cannot count, and a cap of zero",
			file: "datastore:\n  objectCounts:\n    widgets.example.com: 10\n    secrets: 0\n",
			want: []string{`datastore.objectCounts[widgets.example.com]: Unsupported value: "widgets.example.com"`, `datastore.objectCounts[secrets]: Invalid value: 0: must be positive`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writePolicy(t, tc.file)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file %s: %v", path, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q: %v", want, err)
				}
			}
		})
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a missing file = %v, want an error naming %s", err, path)
	}
}

func TestValidateRequiresAForcedRuntimeClassInHard(t *testing.T) {
	t.Parallel()
	p := Default(ProfileHard)
	p.RuntimeClasses.Forced = ""
	want := "runtimeClasses.forced: Required value: the hard profile runs every pod in a sandboxed runtime class"
	if err := p.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestHostPriorityClass(t *testing.T) {
	t.Parallel()
	p := Default(ProfileHard)
	p.PriorityClasses.Classes = map[string]string{"low": "tenant-low"}
	if got, ok := p.HostPriorityClass("low"); !ok || got != "tenant-low" {
		t.Errorf(`HostPriorityClass("low") = %q, %v; want "tenant-low", true`, got, ok)
	}
	if got, ok := p.HostPriorityClass("high"); ok {
		t.Errorf(`HostPriorityClass("high") = %q, true; want not allowed`, got)
	}
}
