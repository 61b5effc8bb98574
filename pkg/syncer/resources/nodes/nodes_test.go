package nodes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestAlias(t *testing.T) {
	t.Parallel()
	keyA, keyB := []byte("tenant-a-secret-key"), []byte("tenant-b-secret-key")
	a := Alias(keyA, "ip-10-0-3-7.ec2.internal")
	if a != Alias(keyA, "ip-10-0-3-7.ec2.internal") {
		t.Errorf("Alias is not stable")
	}
	if a == Alias(keyA, "ip-10-0-3-8.ec2.internal") {
		t.Errorf("two host nodes share an alias")
	}
	if a == Alias(keyB, "ip-10-0-3-7.ec2.internal") {
		t.Errorf("two tenants see the same alias for a host node: aliases must be keyed per tenant")
	}
	if strings.Contains(a, "10-0-3-7") || len(validation.IsDNS1123Label(a)) > 0 {
		t.Errorf("alias %q leaks the host node name or is not a valid node name", a)
	}
}

func TestNode(t *testing.T) {
	t.Parallel()
	n := Node{Alias: "knest-node-abc", Address: "10.96.0.10", KubeletPort: 10250, Version: "v1.37.2"}
	node := Desired(n, nil)
	if node.Name != n.Alias || node.Labels[corev1.LabelHostname] != n.Alias || node.Labels[LabelVirtual] != "true" {
		t.Errorf("node metadata: %+v", node.ObjectMeta)
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("a virtual node must be tainted NoSchedule so DaemonSets find nothing to run on: %+v", node.Spec.Taints)
	}
	if diff := cmp.Diff(node, Desired(n, node)); diff != "" {
		t.Errorf("Desired is not stable:\n%s", diff)
	}
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	s1 := Status(n, node, t0)
	s2 := Status(n, s1, t0.Add(time.Minute))
	ready := s2.Status.Conditions[0]
	if ready.Type != corev1.NodeReady || ready.Status != corev1.ConditionTrue || !ready.LastHeartbeatTime.Time.Equal(t0.Add(time.Minute)) || !ready.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Ready must be true with a fresh heartbeat and the first transition time: %+v", ready)
	}
	if len(s2.Status.Images) != 0 || s2.Status.Addresses[0].Address != n.Address || s2.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("status must show knestd's address and port and no images: %+v", s2.Status)
	}
	lease := Lease(s2, nil, t0)
	if *lease.Spec.HolderIdentity != n.Alias || lease.Namespace != corev1.NamespaceNodeLease || lease.OwnerReferences[0].Kind != "Node" {
		t.Errorf("lease: %+v", lease)
	}
}

// forbiddenHost is a host node full of what a tenant must never see, beside
// what it may.
func forbiddenHost() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "ip-10-0-3-7.ec2.internal",
			UID:  "host-node-uid-6d1f",
			Labels: map[string]string{
				corev1.LabelHostname:                      "ip-10-0-3-7.ec2.internal",
				corev1.LabelTopologyRegion:                "eu-west-1",
				corev1.LabelTopologyZone:                  "eu-west-1b",
				corev1.LabelArchStable:                    "arm64",
				corev1.LabelOSStable:                      "linux",
				corev1.LabelInstanceTypeStable:            "m7g.4xlarge",
				"failure-domain.beta.kubernetes.io/zone":  "eu-west-1b-legacy",
				"node.kubernetes.io/instance-type-secret": "nope",
				"eks.amazonaws.com/nodegroup":             "tenant-b-private-pool",
				"team":                                    "payments-secret-team",
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"csi.volume.kubernetes.io/nodeid":                        `{"ebs.csi.aws.com":"i-0abc123secret"}`,
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			ProviderID: "aws:///eu-west-1b/i-0abc123secret",
			PodCIDR:    "10.244.77.0/24",
			Taints:     []corev1.Taint{{Key: "dedicated", Value: "tenant-b-secret", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"), corev1.ResourcePods: resource.MustParse("58"),
				"nvidia.com/gpu": resource.MustParse("7"), "hugepages-2Mi": resource.MustParse("1Gi"),
			},
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("15890m"), corev1.ResourceMemory: resource.MustParse("61Gi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("180Gi"), corev1.ResourcePods: resource.MustParse("58"),
				"nvidia.com/gpu": resource.MustParse("7"),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "10.0.3.7"},
				{Type: corev1.NodeExternalIP, Address: "203.0.113.77"},
				{Type: corev1.NodeInternalDNS, Address: "ip-10-0-3-7.ec2.internal"},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10777}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: "ec2machineid0001", SystemUUID: "ec2-uuid-0002", BootID: "boot-id-0003",
				KernelVersion: "6.1.99-secret-kernel", OSImage: "Amazon Linux 2023 secret-image",
				ContainerRuntimeVersion: "containerd://9.9.9-secret", KubeletVersion: "v1.31.9-eks-secret",
				OperatingSystem: "linux", Architecture: "arm64",
			},
			Images:       []corev1.ContainerImage{{Names: []string{"registry.tenant-b.example/private/app@sha256:abc"}, SizeBytes: 1}},
			VolumesInUse: []corev1.UniqueVolumeName{"kubernetes.io/csi/ebs.csi.aws.com^vol-0secret"},
			Conditions:   []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, Message: "tenant-b-secret pressure"}},
		},
	}
}

func TestHostInfoOfLetsOnlyTheAllowlistThrough(t *testing.T) {
	t.Parallel()
	want := &HostInfo{
		Labels: map[string]string{
			corev1.LabelTopologyRegion: "eu-west-1", corev1.LabelTopologyZone: "eu-west-1b",
			corev1.LabelArchStable: "arm64", corev1.LabelOSStable: "linux", corev1.LabelInstanceTypeStable: "m7g.4xlarge",
		},
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"), corev1.ResourcePods: resource.MustParse("58"),
		},
		Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("15890m"), corev1.ResourceMemory: resource.MustParse("61Gi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("180Gi"), corev1.ResourcePods: resource.MustParse("58"),
		},
	}
	if diff := cmp.Diff(want, HostInfoOf(forbiddenHost())); diff != "" {
		t.Errorf("HostInfoOf (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&HostInfo{Labels: map[string]string{}, Capacity: corev1.ResourceList{}, Allocatable: corev1.ResourceList{}}, HostInfoOf(&corev1.Node{})); diff != "" {
		t.Errorf("HostInfoOf a node without labels or resources (-want +got):\n%s", diff)
	}
}

// TestNoHostSecretReachesTheVirtualNode serializes the whole virtual Node
// built from a host node full of secrets and looks for every one of them.
func TestNoHostSecretReachesTheVirtualNode(t *testing.T) {
	t.Parallel()
	host := forbiddenHost()
	n := Node{Alias: "knest-node-abc", Address: "10.96.0.10", KubeletPort: 10250, Version: "v1.37.2", Host: HostInfoOf(host)}
	node := Status(n, Desired(n, nil), time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))
	data, err := json.Marshal(node)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	forbidden := []string{
		host.Name, "10-0-3-7", "10.0.3.7", "203.0.113.77", string(host.UID), "10.244.77.0",
		"i-0abc123secret", "tenant-b", "payments-secret-team", "eu-west-1b-legacy", "nope",
		"failure-domain", "eks.amazonaws.com", "nodegroup", "team", "ttl", "csi", "attach-detach",
		"dedicated", "nvidia.com/gpu", "hugepages", "10777",
		"ec2machineid0001", "ec2-uuid-0002", "boot-id-0003", "secret-kernel", "secret-image", "containerd", "v1.31.9",
		"registry.", "sha256", "vol-0secret", "MemoryPressure", "secret",
	}
	for _, s := range forbidden {
		if strings.Contains(got, s) {
			t.Errorf("the virtual node shows %q of the host node:\n%s", s, got)
		}
	}
	// Of the allowed, everything arrives.
	for _, s := range []string{"eu-west-1", "eu-west-1b", "arm64", "m7g.4xlarge", "64Gi", "15890m", "180Gi", `"pods":"58"`} {
		if !strings.Contains(got, s) {
			t.Errorf("the virtual node lacks %q of the host node's allowed info:\n%s", s, got)
		}
	}
}

// bare is a virtual Node exactly as it was before host info existed.
func bare(alias, address string, extraLabels map[string]string) *corev1.Node {
	labels := map[string]string{LabelVirtual: "true", corev1.LabelHostname: alias, corev1.LabelOSStable: "linux"}
	for k, v := range extraLabels {
		labels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: alias, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: TaintVirtual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
	}
}

func TestDesiredWithHostInfo(t *testing.T) {
	t.Parallel()
	const alias = "knest-node-abc"
	zoneA := &HostInfo{Labels: map[string]string{
		corev1.LabelTopologyRegion: "r1", corev1.LabelTopologyZone: "r1-a", corev1.LabelArchStable: "arm64",
		corev1.LabelOSStable: "linux", corev1.LabelInstanceTypeStable: "big",
	}}
	tests := []struct {
		name     string
		host     *HostInfo
		existing *corev1.Node
		want     *corev1.Node
	}{
		{name: "without host info a new node is bare", want: bare(alias, "", nil)},
		{
			name: "without host info the labels on an existing node stay as they are", existing: bare(alias, "", map[string]string{corev1.LabelTopologyZone: "set-by-tenant", "team": "a"}),
			want: bare(alias, "", map[string]string{corev1.LabelTopologyZone: "set-by-tenant", "team": "a"}),
		},
		{
			name: "with host info a new node carries the host's allowlisted labels", host: zoneA,
			want: bare(alias, "", map[string]string{corev1.LabelTopologyRegion: "r1", corev1.LabelTopologyZone: "r1-a", corev1.LabelArchStable: "arm64", corev1.LabelInstanceTypeStable: "big"}),
		},
		{
			name: "a label the host node lost goes, the OS falls back to linux, the tenant's own labels stay",
			host: &HostInfo{Labels: map[string]string{corev1.LabelTopologyZone: "r1-b"}},
			existing: bare(alias, "", map[string]string{
				corev1.LabelTopologyRegion: "r1", corev1.LabelTopologyZone: "r1-a", corev1.LabelArchStable: "arm64",
				corev1.LabelOSStable: "windows", corev1.LabelInstanceTypeStable: "big", "team": "a",
			}),
			want: bare(alias, "", map[string]string{corev1.LabelTopologyZone: "r1-b", "team": "a"}),
		},
		{
			name: "the host's hostname never replaces the alias",
			host: &HostInfo{Labels: map[string]string{corev1.LabelHostname: "host-node-1"}},
			want: bare(alias, "", nil),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := Node{Alias: alias, Address: "10.96.0.10", Host: tc.host}
			got := Desired(n, tc.existing)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, Desired(n, got)); diff != "" {
				t.Errorf("Desired is not stable:\n%s", diff)
			}
		})
	}
}

func TestStatusWithHostInfo(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	pods110 := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	tests := []struct {
		name                  string
		host                  *HostInfo
		capacity, allocatable corev1.ResourceList
	}{
		{name: "without host info the node reports 110 pods and nothing else", capacity: pods110, allocatable: pods110},
		{
			name: "with host info the node reports the host's capacity and allocatable",
			host: &HostInfo{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("58")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("15")},
			},
			capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("58")},
			allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("15"), corev1.ResourcePods: resource.MustParse("110")},
		},
		{
			name:     "a resource outside the allowlist in host info is still not shown",
			host:     &HostInfo{Capacity: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}},
			capacity: pods110, allocatable: pods110,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := Node{Alias: "knest-node-abc", Address: "10.96.0.10", KubeletPort: 10250, Version: "v1.37.2", Host: tc.host}
			got := Status(n, Desired(n, nil), now).Status
			want := corev1.NodeStatus{
				Capacity: tc.capacity, Allocatable: tc.allocatable,
				Conditions: []corev1.NodeCondition{{
					Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KnestVirtualNode",
					Message:           "pods bound here run on a host node",
					LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
				}},
				Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.96.0.10"}, {Type: corev1.NodeHostName, Address: "knest-node-abc"}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
				NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredTaintsFollowTheNodeModel(t *testing.T) {
	t.Parallel()
	bound := Desired(Node{Alias: "knest-node-a"}, nil)
	if len(bound.Spec.Taints) != 1 || bound.Spec.Taints[0].Key != TaintVirtual {
		t.Errorf("a virtual node that stands only for bound pods has taints %v, want the NoSchedule %s taint", bound.Spec.Taints, TaintVirtual)
	}
	pool := Desired(Node{Alias: "knest-node-a", Pool: true}, bound)
	if len(pool.Spec.Taints) != 0 {
		t.Errorf("a pool node has taints %v, want none: it is schedulable", pool.Spec.Taints)
	}
}
