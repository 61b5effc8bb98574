// Package nodesync maintains a tenant's virtual Nodes: one per host node its
// pods run on, created when a pod is bound to it, kept Ready with a fresh
// Lease, and removed once no tenant pod is bound to it. A virtual Node's
// name is an alias keyed by knestd, so host node names cannot be guessed
// back from it, and it advertises knestd's kubelet API, never a host node's.
package nodesync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// IndexNodeName indexes tenant pods by the node they are bound to; the
// tenant cache must have it.
const IndexNodeName = "spec.nodeName"

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

// Config configures a Manager.
type Config struct {
	// TenantClient reads (cached, with IndexNodeName) and writes the
	// tenant cluster.
	TenantClient client.Client
	// AliasKey keys the virtual Node names; it must stay the same across
	// restarts.
	AliasKey []byte
	// Address is where the tenant API server reaches knestd's kubelet API,
	// and the host IP tenant pods see.
	Address string
	// KubeletPort is the port of knestd's kubelet API.
	KubeletPort int32
	// Version is what virtual Nodes report as their kubelet version.
	Version string
	Metrics *writer.Metrics
	// HostNodes reads host Nodes for the host info virtual Nodes show; nil
	// shows none (the default). It must not be a cached client: the
	// operator grants get on nodes only, never list or watch, and a cache
	// would start a cluster-wide Node informer.
	HostNodes client.Reader
	// HostPods, Tenant and HostNamespace find the host node of a virtual
	// Node through the host pods of the tenant pods bound to it.
	HostPods      client.Reader
	Tenant        string
	HostNamespace string
	// Pool reads the host Nodes of the tenant's pool (a cache limited to
	// them, see PoolNode): each Ready, schedulable one has a virtual Node,
	// always, schedulable. Nil: virtual Nodes exist only while pods are
	// bound to them.
	Pool cache.Cache
	// PoolTolerations are the tolerations every host pod gets: a pool node
	// with a NoSchedule or NoExecute taint they do not tolerate runs none
	// of the tenant's pods, and gets no virtual Node.
	PoolTolerations []corev1.Toleration
}

// New returns a Manager; it maintains Nodes once started.
func New(c Config) *Manager {
	return &Manager{
		tenantClient: c.TenantClient, key: c.AliasKey, address: c.Address, kubeletPort: c.KubeletPort,
		version: c.Version, metrics: c.Metrics, hostNodes: c.HostNodes, hostPods: c.HostPods,
		tenant: c.Tenant, hostNamespace: c.HostNamespace, pool: c.Pool, poolTolerations: c.PoolTolerations, kick: make(chan struct{}, 1),
		ready: map[string]bool{}, hostInfo: map[string]*nodes.HostInfo{}, hostNodeOfAlias: map[string]string{},
	}
}

// Manager maintains the tenant's virtual Nodes: created when a pod is
// bound to one, kept Ready with a fresh Lease, and removed once no tenant pod
// is bound to it.
type Manager struct {
	tenantClient client.Client
	key          []byte
	address      string
	kubeletPort  int32
	version      string
	metrics      *writer.Metrics

	// hostNodes reads host Nodes for the host info virtual Nodes show; nil
	// shows none (the default). It must not be a cached client: the
	// operator grants get on nodes only, never list or watch, and a cache
	// would start a cluster-wide Node informer.
	hostNodes client.Reader
	// hostPods, tenant and hostNamespace find the host node of a virtual
	// Node through the host pods of the tenant pods bound to it: an alias
	// cannot be turned back into a host node name.
	hostPods      client.Reader
	tenant        string
	hostNamespace string
	// pool is the cache of the pool's host Nodes; nil without pool nodes.
	pool            cache.Cache
	poolTolerations []corev1.Toleration
	// kick asks for a sweep now: the pool changed.
	kick chan struct{}

	mu sync.Mutex
	// ready holds aliases known to exist, so binding needs no API call.
	ready map[string]bool
	// hostInfo holds the host info last read for each alias: a failed read
	// leaves a virtual Node showing what it showed.
	hostInfo map[string]*nodes.HostInfo
	// hostNodeOfAlias holds the host node of each alias known.
	hostNodeOfAlias map[string]string
	// poolAliases are the virtual Nodes of the pool's host nodes, as of
	// the last sweep.
	poolAliases map[string]bool
}

// HostNode returns the host node virtual Node alias stands for, if it is a
// virtual Node of this tenant: one knest made for a host node its pods run
// on. The answer comes from knestd's own records and the host pods, never
// from what the tenant wrote into the Node.
func (m *Manager) HostNode(ctx context.Context, alias string) (string, bool) {
	m.mu.Lock()
	h, ok := m.hostNodeOfAlias[alias]
	m.mu.Unlock()
	if ok {
		return h, true
	}
	// Learned before a restart: the host pods of the pods bound to it tell.
	var bound corev1.PodList
	if err := m.tenantClient.List(ctx, &bound, client.MatchingFields{IndexNodeName: alias}, client.UnsafeDisableDeepCopy); err != nil {
		return "", false
	}
	if h = m.hostNodeOf(ctx, alias, bound.Items); h == "" {
		return "", false
	}
	m.remember(alias, h)
	return h, true
}

func (m *Manager) remember(alias, hostNode string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hostNodeOfAlias[alias] = hostNode
}

func (m *Manager) node(alias string) nodes.Node {
	return nodes.Node{Alias: alias, Address: m.address, KubeletPort: m.kubeletPort, Version: m.version, Pool: m.pool != nil}
}

// describe returns the virtual Node alias, with the host info of host node
// hostNode ("" if unknown) when host info is on.
func (m *Manager) describe(ctx context.Context, alias, hostNode string) nodes.Node {
	n := m.node(alias)
	if m.hostNodes != nil {
		n.Host = m.readHostInfo(ctx, alias, hostNode)
	}
	return n
}

// readHostInfo reads what virtual Node alias may show of host node hostNode
// with one GET. A failed read is logged and counted, never returned: the
// virtual Node keeps the host info last read, or shows none, and pods are
// bound to it all the same.
func (m *Manager) readHostInfo(ctx context.Context, alias, hostNode string) *nodes.HostInfo {
	if hostNode != "" {
		var h corev1.Node
		err := m.hostNodes.Get(ctx, types.NamespacedName{Name: hostNode}, &h)
		if err == nil {
			info := nodes.HostInfoOf(&h)
			m.mu.Lock()
			m.hostInfo[alias] = info
			m.mu.Unlock()
			return info
		}
		m.metrics.HostNodeError(err)
		// The log names the alias, as the tenant sees it, and never the
		// host node, whose name the error (and its URL) would carry.
		klog.FromContext(ctx).Error(errors.New(strings.ReplaceAll(err.Error(), hostNode, "<host node>")),
			"Failed to read the host node of a virtual node; it shows the host info last read, if any", "node", alias)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostInfo[alias]
}

// hostNodeOf returns the host node the tenant pods bound to virtual Node
// alias run on, from their host pods; "" if none tells.
func (m *Manager) hostNodeOf(ctx context.Context, alias string, bound []corev1.Pod) string {
	for _, p := range bound {
		key := types.NamespacedName{Namespace: m.hostNamespace, Name: translate.HostName(m.tenant, p.Namespace, p.Name, translate.MaxSubdomainLength)}
		var h corev1.Pod
		if err := m.hostPods.Get(ctx, key, &h); err != nil {
			continue
		}
		if h.Spec.NodeName != "" && m.Alias(h.Spec.NodeName) == alias {
			return h.Spec.NodeName
		}
	}
	return ""
}

// Alias is the virtual Node name for a host node.
func (m *Manager) Alias(hostNode string) string {
	return nodes.Alias(m.key, hostNode)
}

// KnownHostNodes returns the host nodes this Manager has made or found
// virtual Nodes for, each with its alias.
func (m *Manager) KnownHostNodes() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.hostNodeOfAlias))
	for alias, h := range m.hostNodeOfAlias {
		out[h] = alias
	}
	return out
}

// VirtualNodes returns the tenant's virtual Nodes whose host node knestd
// knows, with the labels the tenant sees on them: node selection on labels
// the tenant set decides among them. The host node comes from knestd's own
// records, never from the Node object.
func (m *Manager) VirtualNodes(ctx context.Context) []policy.VirtualNode {
	var list corev1.NodeList
	if err := m.tenantClient.List(ctx, &list, client.MatchingLabels{nodes.LabelVirtual: "true"}); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to list virtual nodes for node selection")
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []policy.VirtualNode
	for i := range list.Items {
		if h, ok := m.hostNodeOfAlias[list.Items[i].Name]; ok {
			out = append(out, policy.VirtualNode{Name: list.Items[i].Name, Labels: list.Items[i].Labels, HostNode: h})
		}
	}
	return out
}

// Address is the address virtual Nodes advertise.
func (m *Manager) Address() string { return m.address }

// Ensure makes the virtual Node for hostNode exist and returns its name.
func (m *Manager) Ensure(ctx context.Context, hostNode string) (string, error) {
	alias := m.Alias(hostNode)
	m.remember(alias, hostNode)
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
		n := m.describe(ctx, alias, hostNode)
		created := nodes.Desired(n, nil)
		if err := m.tenantClient.Create(ctx, created); err != nil && !kerrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("failed to create Node %s in tenant cluster: %w", alias, err)
		} else if err == nil {
			klog.FromContext(ctx).Info("Created virtual node", "node", alias)
			m.metrics.TenantWrite("Node", "create")
			if err := m.heartbeat(ctx, created, n, time.Now()); err != nil {
				return "", err
			}
		}
	}
	m.mu.Lock()
	m.ready[alias] = true
	m.mu.Unlock()
	return alias, nil
}

// heartbeat refreshes a Node's status and Lease, and its labels and taints
// when they are not what they should be: host info changed the labels, or
// the API server's TaintNodesByCondition admission gave a new Node the
// not-ready taint, which no node lifecycle controller removes here.
func (m *Manager) heartbeat(ctx context.Context, node *corev1.Node, n nodes.Node, now time.Time) error {
	desired := nodes.Desired(n, node)
	if !equality.Semantic.DeepEqual(desired.Labels, node.Labels) || !equality.Semantic.DeepEqual(desired.Spec.Taints, node.Spec.Taints) {
		// Only labels and taints: the rest of the Node is as it was created.
		updated := node.DeepCopy()
		updated.Labels, updated.Spec.Taints = desired.Labels, desired.Spec.Taints
		if err := m.tenantClient.Update(ctx, updated); err != nil {
			return fmt.Errorf("failed to update labels and taints of Node %s in tenant cluster: %w", node.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Updated the labels and taints of virtual node", "node", node.Name)
		m.metrics.TenantWrite("Node", "update")
		node = updated
	}
	status := nodes.Status(n, node, now)
	if err := m.tenantClient.Status().Update(ctx, status); err != nil {
		return fmt.Errorf("failed to update status of Node %s in tenant cluster: %w", node.Name, err)
	}
	m.metrics.Heartbeat("Node")
	return m.renew(ctx, node, now)
}

func (m *Manager) renew(ctx context.Context, node *corev1.Node, now time.Time) error {
	key := types.NamespacedName{Namespace: nodes.LeaseNamespace, Name: node.Name}
	existing := &coordinationv1.Lease{}
	if err := m.tenantClient.Get(ctx, key, existing); kerrors.IsNotFound(err) {
		if err := m.tenantClient.Create(ctx, nodes.Lease(node, nil, now)); err != nil && !kerrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create Lease %s in tenant cluster: %w", key, err)
		}
		m.metrics.TenantWrite("Lease", "create")
		return nil
	} else if err != nil {
		return fmt.Errorf("failed to get Lease %s in tenant cluster: %w", key, err)
	}
	if err := m.tenantClient.Update(ctx, nodes.Lease(node, existing, now)); err != nil {
		return fmt.Errorf("failed to renew Lease %s in tenant cluster: %w", key, err)
	}
	m.metrics.Heartbeat("Lease")
	return nil
}

// Start renews and sweeps virtual Nodes until ctx ends: at once, every
// nodeSweepInterval, and when the pool changes.
func (m *Manager) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("controller", "virtual-nodes")
	if m.pool != nil {
		inf, err := m.pool.GetInformer(ctx, &corev1.Node{})
		if err != nil {
			return fmt.Errorf("failed to watch the host nodes of the pool: %w", err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { m.Kick() },
			UpdateFunc: func(oldObj, newObj any) {
				o, ok1 := oldObj.(*corev1.Node)
				n, ok2 := newObj.(*corev1.Node)
				if !ok1 || !ok2 || PoolNode(o, m.poolTolerations) != PoolNode(n, m.poolTolerations) {
					m.Kick()
				}
			},
			DeleteFunc: func(any) { m.Kick() },
		}); err != nil {
			return fmt.Errorf("failed to watch the host nodes of the pool: %w", err)
		}
	}
	ticker := time.NewTicker(nodeSweepInterval)
	defer ticker.Stop()
	for {
		if err := m.sweep(ctx, time.Now()); err != nil {
			logger.Error(err, "Failed to maintain virtual nodes")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-m.kick:
		}
	}
}

// Pool reports whether virtual Nodes stand for the pool's host nodes.
func (m *Manager) Pool() bool { return m.pool != nil }

// Kick asks for a sweep now.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// PoolNode reports whether a host Node of the pool gets a virtual Node:
// it is Ready and schedulable, and the tenant's host pods tolerate its
// NoSchedule and NoExecute taints.
func PoolNode(n *corev1.Node, tolerations []corev1.Toleration) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, t, false) {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PoolNodeTransform keeps of a host Node only what the pool needs: its
// name, the host labels a virtual Node may show, whether it is
// schedulable, its taints and its Ready condition.
func PoolNodeTransform(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{}
	out.Name, out.UID, out.ResourceVersion, out.DeletionTimestamp = n.Name, n.UID, n.ResourceVersion, n.DeletionTimestamp
	for _, k := range nodes.HostLabels {
		if v, ok := n.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	out.Spec.Unschedulable = n.Spec.Unschedulable
	out.Spec.Taints = n.Spec.Taints
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out, nil
}

// syncPool makes a virtual Node for each host node of the pool and
// records which they are.
func (m *Manager) syncPool(ctx context.Context) error {
	var list corev1.NodeList
	if err := m.pool.List(ctx, &list); err != nil {
		return fmt.Errorf("failed to list the host nodes of the pool: %w", err)
	}
	aliases := map[string]bool{}
	var errs []error
	for i := range list.Items {
		if !PoolNode(&list.Items[i], m.poolTolerations) {
			continue
		}
		alias, err := m.Ensure(ctx, list.Items[i].Name)
		if err != nil {
			errs = append(errs, err)
		}
		aliases[alias] = true
	}
	m.mu.Lock()
	m.poolAliases = aliases
	m.mu.Unlock()
	return errors.Join(errs...)
}

// sweep renews every virtual Node in use and removes the unused ones.
func (m *Manager) sweep(ctx context.Context, now time.Time) error {
	var errs []error
	if m.pool != nil {
		if err := m.syncPool(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	var list corev1.NodeList
	if err := m.tenantClient.List(ctx, &list, client.HasLabels{nodes.LabelVirtual}); err != nil {
		return errors.Join(append(errs, fmt.Errorf("failed to list Nodes in tenant cluster: %w", err))...)
	}
	m.mu.Lock()
	pool := m.poolAliases
	m.mu.Unlock()
	for i := range list.Items {
		node := &list.Items[i]
		var bound corev1.PodList
		// Read only: no copies of every bound pod each sweep.
		if err := m.tenantClient.List(ctx, &bound, client.MatchingFields{IndexNodeName: node.Name}, client.UnsafeDisableDeepCopy); err != nil {
			errs = append(errs, fmt.Errorf("failed to list Pods on Node %s in tenant cluster: %w", node.Name, err))
			continue
		}
		if len(bound.Items) == 0 && !pool[node.Name] && now.Sub(node.CreationTimestamp.Time) > nodeGrace {
			m.mu.Lock()
			delete(m.ready, node.Name)
			delete(m.hostInfo, node.Name)
			delete(m.hostNodeOfAlias, node.Name)
			m.mu.Unlock()
			uid := node.UID
			if err := m.tenantClient.Delete(ctx, node, client.Preconditions{UID: &uid}); err != nil && !kerrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("failed to delete Node %s in tenant cluster: %w", node.Name, err))
				continue
			}
			klog.FromContext(ctx).Info("Removed unused virtual node", "node", node.Name)
			m.metrics.TenantWrite("Node", "delete")
			continue
		}
		if stale(node, now) || m.moved(node) || (len(node.Spec.Taints) == 0) != (m.pool != nil) {
			n := m.node(node.Name)
			if m.hostNodes != nil {
				m.mu.Lock()
				hostNode := m.hostNodeOfAlias[node.Name]
				m.mu.Unlock()
				if hostNode == "" {
					hostNode = m.hostNodeOf(ctx, node.Name, bound.Items)
				}
				n = m.describe(ctx, node.Name, hostNode)
			}
			if err := m.heartbeat(ctx, node, n, now); err != nil {
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
func (m *Manager) moved(node *corev1.Node) bool {
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
