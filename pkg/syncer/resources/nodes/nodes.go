// Package nodes builds the virtual Nodes a tenant sees.
//
// A tenant pod is bound to a virtual Node standing for the host node its host
// pod runs on. The syncer's host identity is namespaced and cannot read host
// Nodes, and a tenant must learn nothing about host nodes anyway, so a
// virtual Node is made from nothing but its alias: a keyed hash of the host
// node's name (the key is the tenant's own secret, so host node names cannot
// be guessed back from aliases), the address of knestd (the "kubelet" the
// tenant API server talks to) and the knest version. By default it carries
// no images, no host labels, no capacity of the host node.
//
// Where the operator lets knestd read host Nodes (knestd --host-node-info),
// a virtual Node also shows HostInfo: the host node's labels in HostLabels
// (region, zone, architecture, OS, instance type) and its capacity and
// allocatable of HostResources. Nothing else of the host node is ever read
// into it: not its name or hostname label, addresses, images, taints,
// annotations, other labels, other resources or nodeInfo (kernel, OS image,
// machine and system IDs).
//
// A virtual Node either stands for a host node of the tenant's pool and is
// always there, schedulable (Pool: knestd --pool-nodes): the tenant sees
// its nodes as on any cluster, DaemonSets run a pod on each, and a pod that
// names one runs on its host node; or it exists only while pods are bound
// to it and is tainted NoSchedule, so a DaemonSet finds nothing to run on.
package nodes

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Keys and values knest sets on virtual Nodes.
const (
	// LabelVirtual marks the Nodes the syncer maintains.
	LabelVirtual = "knest.io/virtual-node"
	// TaintVirtual keeps DaemonSets and tenant schedulers off virtual Nodes.
	TaintVirtual = "knest.io/virtual-node"
	// LeaseNamespace holds node heartbeats.
	LeaseNamespace = corev1.NamespaceNodeLease
	// LeaseDuration is how long a heartbeat is good for.
	LeaseDuration = 40 * time.Second
)

var aliasEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Alias is the virtual Node name standing for host node hostNode, keyed by
// the tenant's alias key.
func Alias(key []byte, hostNode string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(hostNode))
	return "knest-node-" + strings.ToLower(aliasEncoding.EncodeToString(mac.Sum(nil)))[:12]
}

// Node describes a virtual Node's fixed parts.
type Node struct {
	Alias string
	// Address is where the tenant API server reaches the node's kubelet
	// API (knestd) and what tenant pods see as their host IP.
	Address string
	// KubeletPort is the port of that API; 0 if none is served.
	KubeletPort int32
	// Version is reported as the kubelet version.
	Version string
	// Pool says the Node stands for a host node of the tenant's pool and
	// is schedulable; otherwise it is tainted NoSchedule.
	Pool bool
	// Host is what the virtual Node shows of its host node; nil shows
	// nothing of it.
	Host *HostInfo
}

// HostInfo is what a virtual Node may show of its host node: only what
// HostInfoOf lets through.
type HostInfo struct {
	// Labels are the host node's labels in HostLabels.
	Labels map[string]string
	// Capacity and Allocatable are the host node's, of HostResources.
	Capacity, Allocatable corev1.ResourceList
}

// HostLabels are the host node labels a virtual Node may show: where the
// node is and what it is, never which one it is.
var HostLabels = []string{
	corev1.LabelTopologyRegion,
	corev1.LabelTopologyZone,
	corev1.LabelArchStable,
	corev1.LabelOSStable,
	corev1.LabelInstanceTypeStable,
}

// HostResources are the host node resources a virtual Node may show.
var HostResources = []corev1.ResourceName{
	corev1.ResourceCPU,
	corev1.ResourceMemory,
	corev1.ResourceEphemeralStorage,
	corev1.ResourcePods,
}

// HostInfoOf returns what a virtual Node may show of host node h: its
// labels in HostLabels and its resources in HostResources, nothing else.
func HostInfoOf(h *corev1.Node) *HostInfo {
	info := &HostInfo{Labels: map[string]string{}, Capacity: corev1.ResourceList{}, Allocatable: corev1.ResourceList{}}
	for _, k := range HostLabels {
		if v, ok := h.Labels[k]; ok {
			info.Labels[k] = v
		}
	}
	for _, r := range HostResources {
		if q, ok := h.Status.Capacity[r]; ok {
			info.Capacity[r] = q.DeepCopy()
		}
		if q, ok := h.Status.Allocatable[r]; ok {
			info.Allocatable[r] = q.DeepCopy()
		}
	}
	return info
}

// Capacity a virtual Node reports without HostInfo (and for resources its
// HostInfo lacks): there is no scheduler in the tenant, so these only keep
// tools that divide by capacity sane.
var defaultCapacity = corev1.ResourceList{
	corev1.ResourcePods: resource.MustParse("110"),
}

// Desired returns the virtual Node with its metadata and spec; existing is
// the current Node or nil and is not modified. Status is separate (Status).
func Desired(n Node, existing *corev1.Node) *corev1.Node {
	out := &corev1.Node{}
	if existing != nil {
		out = existing.DeepCopy()
	}
	out.Name = n.Alias
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[LabelVirtual] = "true"
	out.Labels[corev1.LabelHostname] = n.Alias
	out.Labels[corev1.LabelOSStable] = "linux"
	if n.Host != nil {
		// The host's, exactly: a label the host node lost goes too.
		for _, k := range HostLabels {
			if v, ok := n.Host.Labels[k]; ok {
				out.Labels[k] = v
			} else if k != corev1.LabelOSStable {
				delete(out.Labels, k)
			}
		}
	}
	out.Spec.Taints = nil
	if !n.Pool {
		out.Spec.Taints = []corev1.Taint{{Key: TaintVirtual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	}
	return out
}

// Status returns node with a fresh status: Ready, heartbeat at now (the
// transition time is kept while Ready stays true).
func Status(n Node, node *corev1.Node, now time.Time) *corev1.Node {
	out := node.DeepCopy()
	transition := metav1.NewTime(now)
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			transition = c.LastTransitionTime
		}
	}
	capacity, allocatable := defaultCapacity.DeepCopy(), defaultCapacity.DeepCopy()
	if n.Host != nil {
		for _, r := range HostResources {
			if q, ok := n.Host.Capacity[r]; ok {
				capacity[r] = q.DeepCopy()
			}
			if q, ok := n.Host.Allocatable[r]; ok {
				allocatable[r] = q.DeepCopy()
			}
		}
	}
	out.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KnestVirtualNode",
			Message:           "pods bound here run on a host node",
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: transition,
		}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.Address},
			{Type: corev1.NodeHostName, Address: n.Alias},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: n.KubeletPort}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: n.Version, OperatingSystem: "linux",
		},
	}
	return out
}

// Lease returns the node's heartbeat Lease renewed at now; existing is the
// current Lease or nil and is not modified.
func Lease(node *corev1.Node, existing *coordinationv1.Lease, now time.Time) *coordinationv1.Lease {
	out := &coordinationv1.Lease{}
	if existing != nil {
		out = existing.DeepCopy()
	}
	out.Name, out.Namespace = node.Name, LeaseNamespace
	out.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
	}}
	out.Spec.HolderIdentity = ptr.To(node.Name)
	out.Spec.LeaseDurationSeconds = ptr.To(int32(LeaseDuration / time.Second))
	out.Spec.RenewTime = &metav1.MicroTime{Time: now}
	return out
}
