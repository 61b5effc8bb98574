package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/knest-dev/knest/pkg/devcluster"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
	"github.com/knest-dev/knest/test/integration/framework"
)

// nodeInfoPools are the host's nodes: two sandboxed ones (where the hard
// profile runs pods) with the labels a cloud would give them, and one
// label a tenant must never see.
const nodeInfoPools = `
- name: general
  count: 1
- name: sandboxed
  count: 2
  labels:
    topology.kubernetes.io/region: knest-r1
    topology.kubernetes.io/zone: knest-r1-a
    node.kubernetes.io/instance-type: kwok.large
    team: payments-private
  taints: [{key: knest.io/pool, value: sandboxed, effect: NoSchedule}]
  cpu: "48"
  memory: 96Gi
  maxPods: 250
`

func TestIntegrationHostNodeInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	poolsFile := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(poolsFile, []byte(nodeInfoPools), 0o600); err != nil {
		t.Fatal(err)
	}
	host := devenv.DefaultHost()
	host.PoolsFile = poolsFile
	e := setUpHost(t, host, nil)
	ctx := t.Context()
	hostCfg := framework.AdminConfig(t, e.dev.Layout.HostKubeconfig())
	// The second sandboxed node is in another zone, so a tenant pod can be
	// sent to it (the zone is a node label key tenants may select on).
	zoneB := devcluster.NodeName("sandboxed", 1)
	labelHostNode(t, e, zoneB, map[string]any{corev1.LabelTopologyZone: "knest-r1-b"})

	t.Run("without the grant knestd stops at start, naming the chart value to set", func(t *testing.T) {
		out, err := framework.Run(t, time.Minute, framework.KnestdPath(), append(e.dev.KnestdArgs(e.it), "--host-node-info")...)
		if err == nil {
			t.Fatalf("knestd started with --host-node-info although its host identity may not get Nodes:\n%s", lastLines(out, 10))
		}
		last := lastLines(out, 1)
		t.Logf("knestd stopped with: %s", last)
		if !strings.HasPrefix(last, "knestd: --host-node-info:") || !strings.Contains(last, "may not get Nodes") || !strings.Contains(last, "hostNodeInfo=true") {
			t.Errorf("knestd's last line does not say what is missing and what to set:\n%s", lastLines(out, 5))
		}
	})

	// The grant as the chart makes it, to the identity knestd uses.
	grant := func(t *testing.T, on bool) {
		t.Helper()
		values := map[string]any{"quota": map[string]any{"enabled": false}, "hostNodeInfo": on}
		if err := devenv.InstallPolicies(ctx, hostCfg, tenantName, hostNamespace, policy.DefaultProfile, values); err != nil {
			t.Fatal(err)
		}
	}
	grant(t, true)
	e.knestdArgs = []string{"--host-node-info"}
	e.startKnestd(t)

	var nodeA *corev1.Node
	t.Run("a virtual node shows its host node's zone, region, arch, OS, instance type and capacity, nothing else", func(t *testing.T) {
		tenantPod, hostNode := e.runInZone(t, "in-a", "knest-r1-a")
		node, err := e.tenant.CoreV1().Nodes().Get(ctx, tenantPod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodeA = node
		want := map[string]string{
			nodes.LabelVirtual: "true", corev1.LabelHostname: node.Name,
			corev1.LabelTopologyRegion: "knest-r1", corev1.LabelTopologyZone: "knest-r1-a",
			corev1.LabelArchStable: hostNode.Labels[corev1.LabelArchStable], corev1.LabelOSStable: hostNode.Labels[corev1.LabelOSStable],
			corev1.LabelInstanceTypeStable: "kwok.large",
		}
		if diff := cmp.Diff(want, node.Labels); diff != "" {
			t.Errorf("virtual node labels (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(allowedResources(hostNode.Status.Capacity), node.Status.Capacity); diff != "" {
			t.Errorf("virtual node capacity, want the host node's (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(allowedResources(hostNode.Status.Allocatable), node.Status.Allocatable); diff != "" {
			t.Errorf("virtual node allocatable, want the host node's (-want +got):\n%s", diff)
		}
		if q := node.Status.Capacity[corev1.ResourceCPU]; q.String() != "48" {
			t.Errorf("virtual node CPU capacity %s, want the pool's 48", q.String())
		}
		assertNoHostSecrets(t, node, hostNode)
	})

	t.Run("a changed host label reaches the virtual node at its next heartbeat, other labels never", func(t *testing.T) {
		if nodeA == nil {
			t.Skip("no virtual node")
		}
		hostNode := hostNodeOfVirtual(t, e, "in-a")
		labelHostNode(t, e, hostNode, map[string]any{corev1.LabelInstanceTypeStable: "kwok.xlarge", "example.com/rack": "r12"})
		within(t, 90*time.Second, "the new instance type on the virtual node", func(ctx context.Context) (bool, error) {
			node, err := e.tenant.CoreV1().Nodes().Get(ctx, nodeA.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if _, ok := node.Labels["example.com/rack"]; ok {
				return false, fmt.Errorf("a host label outside the allowlist reached the virtual node: %v", node.Labels)
			}
			return node.Labels[corev1.LabelInstanceTypeStable] == "kwok.xlarge", nil
		})
	})

	t.Run("with the grant revoked a pod is still bound, to a bare virtual node, and the error is counted", func(t *testing.T) {
		grant(t, false)
		identity := framework.Client(t, framework.AdminConfig(t, e.identity))
		within(t, 10*time.Second, "the grant revoked", func(ctx context.Context) (bool, error) {
			_, err := identity.CoreV1().Nodes().Get(ctx, zoneB, metav1.GetOptions{})
			return apierrors.IsForbidden(err), nil
		})
		before := hostNodeErrors(t, e.metrics, "Forbidden")
		tenantPod, hostNode := e.runInZone(t, "in-b", "knest-r1-b")
		if hostNode.Name != zoneB {
			t.Fatalf("the pod runs on %s, want %s", hostNode.Name, zoneB)
		}
		node, err := e.tenant.CoreV1().Nodes().Get(ctx, tenantPod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{nodes.LabelVirtual: "true", corev1.LabelHostname: node.Name, corev1.LabelOSStable: "linux"}
		if diff := cmp.Diff(want, node.Labels); diff != "" {
			t.Errorf("virtual node labels, want a bare node's (-want +got):\n%s", diff)
		}
		bare := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
		if diff := cmp.Diff(bare, node.Status.Capacity); diff != "" {
			t.Errorf("virtual node capacity, want a bare node's (-want +got):\n%s", diff)
		}
		if after := hostNodeErrors(t, e.metrics, "Forbidden"); after <= before {
			t.Errorf("knest_syncer_host_node_errors_total{reason=\"Forbidden\"} stayed at %v", after)
		}
		out := e.knestdOutput(t)
		if !strings.Contains(out, "Failed to read the host node of a virtual node") || !strings.Contains(out, node.Name) {
			t.Errorf("knestd did not log the failed read with the virtual node's name %s:\n%s", node.Name, lastLines(out, 20))
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "Failed to read the host node") && strings.Contains(line, zoneB) {
				t.Errorf("knestd's log names the host node:\n%s", line)
			}
		}
	})
}

// runInZone runs a tenant pod on a host node of zone and returns it once it
// is Running and bound, with the host node it runs on.
func (e *env) runInZone(t *testing.T, name, zone string) (*corev1.Pod, *corev1.Node) {
	t.Helper()
	p := simplePod(name)
	p.Spec.NodeSelector = map[string]string{corev1.LabelTopologyZone: zone}
	if _, err := e.tenant.CoreV1().Pods("default").Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var tenantPod *corev1.Pod
	within(t, 30*time.Second, "tenant pod "+name+" Running and bound", func(ctx context.Context) (bool, error) {
		p, err := e.tenantPod(ctx, "default", name)
		if err != nil {
			return false, err
		}
		tenantPod = p
		return p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "", nil
	})
	hostNode, err := e.host.CoreV1().Nodes().Get(t.Context(), hostNodeOfVirtual(t, e, name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hostNode.Labels[corev1.LabelTopologyZone] != zone {
		t.Fatalf("host pod of %s runs on %s in zone %q, want zone %q", name, hostNode.Name, hostNode.Labels[corev1.LabelTopologyZone], zone)
	}
	return tenantPod, hostNode
}

// hostNodeOfVirtual returns the host node the host pod of default/name runs on.
func hostNodeOfVirtual(t *testing.T, e *env, name string) string {
	t.Helper()
	h, err := e.hostPod(t.Context(), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return h.Spec.NodeName
}

func labelHostNode(t *testing.T, e *env, node string, labels map[string]any) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.host.CoreV1().Nodes().Patch(t.Context(), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allowedResources is what a virtual node may show of a host node's
// resource list: cpu, memory, ephemeral-storage and pods (110 pods when the
// host lists none).
func allowedResources(host corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods} {
		if q, ok := host[r]; ok {
			out[r] = q
		}
	}
	return out
}

// assertNoHostSecrets fails if the virtual node shows the host node's name,
// addresses, images, annotations, system info or forbidden labels.
func assertNoHostSecrets(t *testing.T, virtual, host *corev1.Node) {
	t.Helper()
	data, err := json.Marshal(virtual)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	forbidden := []string{host.Name, "payments-private", "team"}
	for _, a := range host.Status.Addresses {
		// On the devcluster knestd and the KWOK nodes share 127.0.0.1.
		if a.Address != virtual.Status.Addresses[0].Address {
			forbidden = append(forbidden, a.Address)
		}
	}
	for _, taint := range host.Spec.Taints {
		forbidden = append(forbidden, taint.Key, taint.Value)
	}
	for k, v := range host.Annotations {
		forbidden = append(forbidden, k, v)
	}
	for _, v := range []string{host.Status.NodeInfo.MachineID, host.Status.NodeInfo.SystemUUID, host.Status.NodeInfo.BootID,
		host.Status.NodeInfo.KernelVersion, host.Status.NodeInfo.OSImage, host.Status.NodeInfo.ContainerRuntimeVersion, host.Status.NodeInfo.KubeletVersion} {
		forbidden = append(forbidden, v)
	}
	for _, s := range forbidden {
		// Short values ("0", "true") say nothing of the host.
		if len(s) > 4 && strings.Contains(got, s) {
			t.Errorf("the virtual node shows %q of its host node:\n%s", s, got)
		}
	}
	if len(virtual.Status.Images) != 0 || len(virtual.Annotations) != 0 {
		t.Errorf("virtual node images %v, annotations %v: want none", virtual.Status.Images, virtual.Annotations)
	}
}

// hostNodeErrors reads knest_syncer_host_node_errors_total for reason from
// knestd's metrics endpoint (0 before the first error).
func hostNodeErrors(t *testing.T, addr, reason string) float64 {
	t.Helper()
	v, _ := metricSum(t, addr, fmt.Sprintf("knest_syncer_host_node_errors_total{reason=%q} ", reason))
	return v
}
