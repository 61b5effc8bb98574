package nodes

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
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
