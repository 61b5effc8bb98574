package syncer

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
)

// indexNodeName indexes tenant pods by the node they are bound to.
const indexNodeName = "spec.nodeName"

const (
	// nodeSweepInterval is how often leases are renewed and unused virtual
	// Nodes removed.
	nodeSweepInterval = 10 * time.Second
	// nodeHeartbeat is how often a virtual Node's Ready condition is
	// refreshed (the Lease carries the frequent heartbeat).
	nodeHeartbeat = time.Minute
	// nodeGrace spares a new virtual Node the sweep until its first pod is
	// bound.
	nodeGrace = time.Minute
)

// nodeManager maintains the tenant's virtual Nodes: created when a pod is
// bound to one, kept Ready with a fresh Lease, and removed once no tenant pod
// is bound to it.
type nodeManager struct {
	tenantClient client.Client
	key          []byte
	address      string
	kubeletPort  int32
	version      string
	metrics      *metrics

	mu sync.Mutex
	// ready holds aliases known to exist, so binding needs no API call.
	ready map[string]bool
}

func (m *nodeManager) node(alias string) nodes.Node {
	return nodes.Node{Alias: alias, Address: m.address, KubeletPort: m.kubeletPort, Version: m.version}
}

// alias is the virtual Node name for a host node.
func (m *nodeManager) alias(hostNode string) string {
	return nodes.Alias(m.key, hostNode)
}

// ensure makes the virtual Node for hostNode exist and returns its name.
func (m *nodeManager) ensure(ctx context.Context, hostNode string) (string, error) {
	alias := m.alias(hostNode)
	m.mu.Lock()
	ready := m.ready[alias]
	m.mu.Unlock()
	if ready {
		return alias, nil
	}
	existing := &corev1.Node{}
	if err := m.tenantClient.Get(ctx, types.NamespacedName{Name: alias}, existing); kerrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return "", fmt.Errorf("failed to get Node %s in tenant cluster: %w", alias, err)
	}
	if existing == nil {
		created := nodes.Desired(m.node(alias), nil)
		if err := m.tenantClient.Create(ctx, created); err != nil && !kerrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("failed to create Node %s in tenant cluster: %w", alias, err)
		} else if err == nil {
			klog.FromContext(ctx).Info("Created virtual node", "node", alias)
			m.metrics.writeTenant("Node", "create")
			if err := m.heartbeat(ctx, created, time.Now()); err != nil {
				return "", err
			}
		}
	}
	m.mu.Lock()
	m.ready[alias] = true
	m.mu.Unlock()
	return alias, nil
}

// heartbeat refreshes a Node's status and Lease.
func (m *nodeManager) heartbeat(ctx context.Context, node *corev1.Node, now time.Time) error {
	status := nodes.Status(m.node(node.Name), node, now)
	if err := m.tenantClient.Status().Update(ctx, status); err != nil {
		return fmt.Errorf("failed to update status of Node %s in tenant cluster: %w", node.Name, err)
	}
	m.metrics.heartbeat("Node")
	return m.renew(ctx, node, now)
}

func (m *nodeManager) renew(ctx context.Context, node *corev1.Node, now time.Time) error {
	key := types.NamespacedName{Namespace: nodes.LeaseNamespace, Name: node.Name}
	existing := &coordinationv1.Lease{}
	if err := m.tenantClient.Get(ctx, key, existing); kerrors.IsNotFound(err) {
		if err := m.tenantClient.Create(ctx, nodes.Lease(node, nil, now)); err != nil && !kerrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create Lease %s in tenant cluster: %w", key, err)
		}
		m.metrics.writeTenant("Lease", "create")
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to get Lease %s in tenant cluster: %w", key, err)
	}
	if err := m.tenantClient.Update(ctx, nodes.Lease(node, existing, now)); err != nil {
		return fmt.Errorf("failed to renew Lease %s in tenant cluster: %w", key, err)
	}
	m.metrics.heartbeat("Lease")
	return nil
}

// Start renews and sweeps virtual Nodes until ctx ends.
func (m *nodeManager) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("controller", "virtual-nodes")
	ticker := time.NewTicker(nodeSweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := m.sweep(ctx, time.Now()); err != nil {
				logger.Error(err, "Failed to maintain virtual nodes")
			}
		}
	}
}

// sweep renews every virtual Node in use and removes the unused ones.
func (m *nodeManager) sweep(ctx context.Context, now time.Time) error {
	var list corev1.NodeList
	if err := m.tenantClient.List(ctx, &list, client.HasLabels{nodes.LabelVirtual}); err != nil {
		return fmt.Errorf("failed to list Nodes in tenant cluster: %w", err)
	}
	var errs []error
	for i := range list.Items {
		node := &list.Items[i]
		var bound corev1.PodList
		if err := m.tenantClient.List(ctx, &bound, client.MatchingFields{indexNodeName: node.Name}); err != nil {
			errs = append(errs, fmt.Errorf("failed to list Pods on Node %s in tenant cluster: %w", node.Name, err))
			continue
		}
		if len(bound.Items) == 0 && now.Sub(node.CreationTimestamp.Time) > nodeGrace {
			m.mu.Lock()
			delete(m.ready, node.Name)
			m.mu.Unlock()
			uid := node.UID
			if err := m.tenantClient.Delete(ctx, node, client.Preconditions{UID: &uid}); err != nil && !kerrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("failed to delete Node %s in tenant cluster: %w", node.Name, err))
				continue
			}
			klog.FromContext(ctx).Info("Removed unused virtual node", "node", node.Name)
			m.metrics.writeTenant("Node", "delete")
			continue
		}
		if stale(node, now) || m.moved(node) {
			if err := m.heartbeat(ctx, node, now); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := m.renew(ctx, node, now); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d virtual nodes: %w", len(errs), len(list.Items), errs[0])
	}
	return nil
}

// moved reports whether a Node advertises another kubelet address or port
// than this knestd serves, as after a restart on another port.
func (m *nodeManager) moved(node *corev1.Node) bool {
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != m.kubeletPort {
		return true
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address != m.address
		}
	}
	return true
}

// stale reports whether a Node's Ready condition is due for a heartbeat.
func stale(node *corev1.Node, now time.Time) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status != corev1.ConditionTrue || now.Sub(c.LastHeartbeatTime.Time) > nodeHeartbeat
		}
	}
	return true
}
