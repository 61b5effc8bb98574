package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/eventsync"
	"github.com/knest-dev/knest/pkg/syncer/nodesync"
	"github.com/knest-dev/knest/pkg/syncer/podsync"
	"github.com/knest-dev/knest/pkg/syncer/resources/configmaps"
	"github.com/knest-dev/knest/pkg/syncer/resources/endpointslices"
	"github.com/knest-dev/knest/pkg/syncer/resources/ingresses"
	"github.com/knest-dev/knest/pkg/syncer/resources/networkpolicies"
	"github.com/knest-dev/knest/pkg/syncer/resources/persistentvolumeclaims"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/syncer/resources/secrets"
	"github.com/knest-dev/knest/pkg/syncer/resources/services"
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// Config configures a syncer.
type Config struct {
	// Tenant is the tenant's name: the value of the marker label.
	Tenant string
	// HostNamespace is the host namespace the tenant's objects live in.
	HostNamespace string
	// TenantConfig reaches the tenant API server.
	TenantConfig *rest.Config
	// TenantCAFile is the tenant's CA bundle, which token volumes carry;
	// unset, TenantConfig's CA (knestd's in-process config has none).
	TenantCAFile string
	// HostConfig reaches the host API server with an identity that needs
	// only a namespaced Role in HostNamespace.
	HostConfig *rest.Config
	// MetricsRegistry receives the syncer's metrics; nil means
	// controller-runtime's registry.
	MetricsRegistry prometheus.Registerer
	// MetricsBindAddress serves metrics; "" or "0" means not served.
	MetricsBindAddress string
	// NodeAddress is the address virtual Nodes advertise: where the tenant
	// API server reaches knestd's kubelet API, and the host IP tenant pods
	// see. Never a host node's.
	NodeAddress string
	// KubeletPort is the port of knestd's kubelet API; 0 if none.
	KubeletPort int32
	// DNSServiceIP is the host ClusterIP in front of knestd's DNS server:
	// ClusterFirst host pods resolve with it. "" leaves their DNS to the
	// host.
	DNSServiceIP string
	// ClusterDomain is the tenant's cluster domain, for host pods' DNS
	// search path.
	ClusterDomain string
	// NodeAliasKey keys the virtual Node names, so host node names cannot
	// be guessed back from them. It must stay the same across restarts.
	NodeAliasKey []byte
	// TokenAudience, if set, is the tenant's host token audience: new host
	// pods get their default API token from the host kubelet, for this
	// audience, instead of a token Secret (see podsync.Config).
	TokenAudience string
	// Version is what virtual Nodes report as their kubelet version.
	Version string
	// HostNodeInfo shows on each virtual Node what the nodes package
	// allows of its host node (zone, region, architecture, OS, instance
	// type, capacity), read with one GET per node and heartbeat. The host
	// identity then needs get on nodes (cluster scope); off, it needs no
	// access to Nodes at all.
	HostNodeInfo bool
	// PoolNodes shows the tenant one virtual Node per Ready, schedulable
	// host node of its pool (the policy's placement node selector), always,
	// schedulable: DaemonSets run and pods may name a node. The host
	// identity then needs list and watch on nodes (cluster scope); off,
	// virtual Nodes exist only while pods are bound to them.
	PoolNodes bool
	// HostPool is the pool CheckHostRunsPods returned; nil: New learns it
	// with a dry-run create of its own.
	HostPool *podsync.Pool
	// Frozen freezes the tenant's pods: their host pods are deleted and
	// none made, while the tenant pods stay (see podsync.Config).
	Frozen bool
	// Policy is the tenant's isolation policy: forced on every host pod,
	// which is checked against it before it is created.
	Policy *policy.Policy
	// PodWorkers is how many pods are synced at once; 0 means 16.
	PodWorkers int
	// skipNameValidation lets a test run a second syncer in its process:
	// controller-runtime refuses two controllers of one name in a process.
	skipNameValidation bool
}

// quietQueue is the queue of every syncer controller but the pods':
// client-go's rate-limiting queue instead of controller-runtime's priority
// queue (its default), which runs a 500 ms metrics ticker and a 10 s
// logging ticker per queue, whatever the process's metrics provider: ~20
// wake-ups a second for the 10 other queues of an idle tenant. Only the
// pods' queue uses priorities. In knestd client-go's queues keep no
// metrics (internal/noqueuemetrics), so these queues' workqueue_* series
// are not exported; the controllers' controller_runtime_reconcile_* series
// and knest_syncer_* are. The pod controller keeps the priority queue
// (host changes first) and its queue metrics, which make bench-sync reads.
var quietQueue = controller.Options{UsePriorityQueue: ptr.To(false)}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Tenant == "" {
		errs = append(errs, errors.New("syncer: tenant name is required"))
	}
	if c.HostNamespace == "" {
		errs = append(errs, errors.New("syncer: host namespace is required"))
	}
	if c.TenantConfig == nil || c.HostConfig == nil {
		errs = append(errs, errors.New("syncer: tenant and host configs are required"))
	}
	if c.Policy == nil {
		errs = append(errs, errors.New("syncer: an isolation policy is required"))
	}
	if c.DNSServiceIP != "" && net.ParseIP(c.DNSServiceIP) == nil {
		errs = append(errs, fmt.Errorf("syncer: DNS service IP %q is not an IP address", c.DNSServiceIP))
	}
	if c.NodeAddress == "" {
		errs = append(errs, errors.New("syncer: a node address is required"))
	}
	if len(c.NodeAliasKey) < 16 {
		errs = append(errs, errors.New("syncer: a node alias key of at least 16 bytes is required"))
	}
	return errors.Join(errs...)
}

// Index names of tenant pods' references.
const (
	indexConfigMapRefs = "knest.io/configmap-refs"
	indexSecretRefs    = "knest.io/secret-refs"
	// indexIngressSecretRefs indexes tenant Ingresses by the Secrets their
	// TLS entries name.
	indexIngressSecretRefs = "knest.io/ingress-secret-refs"
)

// typed builds a Kind's translation fields from the typed functions of a
// kind package; recreate may be nil.
func typed[T client.Object](name string, maxNameLength int, newObj func() T,
	forward func(tenant, host T, meta translate.Meta) T, recreate func(desired, host T) bool) Kind {
	k := Kind{
		Name:          name,
		New:           func() client.Object { return newObj() },
		MaxNameLength: maxNameLength,
		Forward: func(tenant, host client.Object, meta translate.Meta) client.Object {
			// A nil host stays the typed nil the kind package expects.
			h, _ := host.(T)
			return forward(tenant.(T), h, meta)
		},
	}
	if recreate != nil {
		k.Recreate = func(desired, host client.Object) bool { return recreate(desired.(T), host.(T)) }
	}
	return k
}

// Kinds returns the kinds the syncer handles.
func Kinds(pol *policy.Policy) []Kind {
	configMap := typed("ConfigMap", translate.MaxSubdomainLength, func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
		configmaps.Forward, configmaps.Recreate)
	configMap.Wanted = referencedBy(indexConfigMapRefs)
	configMap.Triggers = []Trigger{referencingPods(pods.ConfigMapRefs)}
	configMap.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		cm := obj.(*corev1.ConfigMap)
		return refuseBytes(dataBytes(cm.Data)+dataBytes(cm.BinaryData), pol), nil
	}

	secret := typed("Secret", translate.MaxSubdomainLength, func() *corev1.Secret { return &corev1.Secret{} },
		secrets.Forward, secrets.Recreate)
	// A Secret reaches the host while a pod uses it or an Ingress names it
	// for TLS.
	secret.Wanted = anyOf(referencedBy(indexSecretRefs), referencedByIngresses)
	secret.Triggers = []Trigger{referencingPods(pods.SecretRefs), referencingIngresses}
	secret.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		return refuseBytes(dataBytes(obj.(*corev1.Secret).Data), pol), nil
	}

	service := typed("Service", translate.MaxLabelLength, func() *corev1.Service { return &corev1.Service{} },
		services.Forward, services.Recreate)
	// The admission plugin creates the host copy before the tenant Service
	// is stored.
	service.OrphanGrace = 30 * time.Second
	service.Wanted = func(_ context.Context, _ client.Reader, obj client.Object) (bool, error) {
		// The tenant's own "kubernetes" Service points at the tenant API
		// server, never at a host copy.
		return !translate.IsAPIServerService(obj.GetNamespace(), obj.GetName()), nil
	}

	slice := typed("EndpointSlice", translate.MaxSubdomainLength, func() *discoveryv1.EndpointSlice { return &discoveryv1.EndpointSlice{} },
		endpointslices.Forward, nil)
	slice.Wanted = selectorlessServiceSlice
	slice.Refuse = func(ctx context.Context, host client.Reader, hostNamespace string, obj client.Object) (string, error) {
		// The host cache holds only this tenant's pods.
		var pods corev1.PodList
		if err := host.List(ctx, &pods, client.InNamespace(hostNamespace)); err != nil {
			return "", fmt.Errorf("failed to list pods in host cluster: %w", err)
		}
		ips := map[string]bool{}
		for i := range pods.Items {
			for _, ip := range policy.PodAddresses(&pods.Items[i]) {
				ips[ip] = true
			}
		}
		return endpointslices.Refuse(obj.(*discoveryv1.EndpointSlice), ips), nil
	}
	// What Refuse decides depends on the tenant's host pod IPs: re-check a
	// namespace's slices when its host pods change.
	slice.Triggers = []Trigger{{Host: true, Object: &corev1.Pod{}, Requests: slicesOfHostPodNamespace}}
	claim := typed("PersistentVolumeClaim", translate.MaxSubdomainLength, func() *corev1.PersistentVolumeClaim { return &corev1.PersistentVolumeClaim{} },
		func(pvc, host *corev1.PersistentVolumeClaim, meta translate.Meta) *corev1.PersistentVolumeClaim {
			return persistentvolumeclaims.Forward(pvc, host, meta, pol)
		}, nil)
	// Admission refuses such claims; a claim stored before the policy
	// tightened is refused here, before any host write.
	claim.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		pvc := obj.(*corev1.PersistentVolumeClaim)
		if errs := policy.CheckClaim(&pvc.Spec, field.NewPath("spec"), pol); len(errs) > 0 {
			return errs.ToAggregate().Error(), nil
		}
		return "", nil
	}
	// Every claim syncs, used by a pod yet or not: removing a host claim
	// when its last pod goes would lose the data.
	claim.Backward = func(host, tenant client.Object) client.Object {
		return persistentvolumeclaims.Backward(host.(*corev1.PersistentVolumeClaim), tenant.(*corev1.PersistentVolumeClaim))
	}
	netpol := typed("NetworkPolicy", translate.MaxSubdomainLength, func() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} },
		func(np, host *networkingv1.NetworkPolicy, meta translate.Meta) *networkingv1.NetworkPolicy {
			return networkpolicies.Forward(np, host, meta, pol.EgressCIDRs)
		}, nil)
	ingress := typed("Ingress", translate.MaxSubdomainLength, func() *networkingv1.Ingress { return &networkingv1.Ingress{} },
		func(ing, host *networkingv1.Ingress, meta translate.Meta) *networkingv1.Ingress {
			return ingresses.Forward(ing, host, meta, pol)
		}, nil)
	// Admission refuses the same; an Ingress stored before the policy
	// tightened is refused here, before any host write, and its host copy
	// goes.
	ingress.Refuse = func(_ context.Context, _ client.Reader, _ string, obj client.Object) (string, error) {
		return ingresses.Refuse(obj.(*networkingv1.Ingress), pol), nil
	}
	ingress.Backward = func(host, tenant client.Object) client.Object {
		return ingresses.Backward(host.(*networkingv1.Ingress), tenant.(*networkingv1.Ingress))
	}
	// Two tenants never serve one hostname: see pkg/hostclaim.
	ingress.Hostnames = func(host client.Object) []string {
		return policy.IngressHostnames(&host.(*networkingv1.Ingress).Spec)
	}
	// One claim per hostname, whichever kind serves it.
	ingress.HostnamesInUse = hostnamesInUse("Ingress", pol.Exposure.Gateway != nil)
	kinds := []Kind{configMap, secret, service, slice, claim, netpol, ingress}
	if pol.Exposure.Gateway != nil {
		kinds = append(kinds, routeKinds(pol)...)
	}
	return kinds
}

// referencingIngresses reconciles the Secrets a tenant Ingress names for
// TLS, so they follow the Ingresses that start or stop naming them.
var referencingIngresses = Trigger{Object: &networkingv1.Ingress{}, Requests: func(_ context.Context, _ client.Reader, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, name := range ingresses.SecretRefs(o.(*networkingv1.Ingress)) {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	return out
}}

// referencedByIngresses wants a Secret while some tenant Ingress in its
// namespace names it for TLS.
func referencedByIngresses(ctx context.Context, c client.Reader, obj client.Object) (bool, error) {
	var list networkingv1.IngressList
	if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{indexIngressSecretRefs: obj.GetName()}); err != nil {
		return false, fmt.Errorf("failed to list Ingresses referencing %s/%s in tenant cluster: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return len(list.Items) > 0, nil
}

// anyOf wants an object when any of wants does.
func anyOf(wants ...func(context.Context, client.Reader, client.Object) (bool, error)) func(context.Context, client.Reader, client.Object) (bool, error) {
	return func(ctx context.Context, c client.Reader, obj client.Object) (bool, error) {
		for _, w := range wants {
			if ok, err := w(ctx, c, obj); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
}

// referencingPods reconciles what a tenant pod references, so objects follow
// the pods that start or stop using them.
func referencingPods(refs func(*corev1.Pod) []string) Trigger {
	return Trigger{Object: &corev1.Pod{}, Requests: func(_ context.Context, _ client.Reader, o client.Object) []reconcile.Request {
		var out []reconcile.Request
		for _, name := range refs(o.(*corev1.Pod)) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
		}
		return out
	}}
}

// slicesOfHostPodNamespace reconciles the EndpointSlices of the tenant
// namespace a host pod belongs to.
func slicesOfHostPodNamespace(ctx context.Context, tenant client.Reader, o client.Object) []reconcile.Request {
	ns := o.GetLabels()[translate.LabelNamespace]
	if ns == "" {
		return nil
	}
	var slices discoveryv1.EndpointSliceList
	if err := tenant.List(ctx, &slices, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, sl := range slices.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sl.Namespace, Name: sl.Name}})
	}
	return out
}

// selectorlessServiceSlice wants the tenant's own slices of Services that
// have no selector; slices of other Services are computed on the host.
func selectorlessServiceSlice(ctx context.Context, c client.Reader, obj client.Object) (bool, error) {
	slice := obj.(*discoveryv1.EndpointSlice)
	if !endpointslices.TenantManaged(slice) {
		return false, nil
	}
	var svc corev1.Service
	err := c.Get(ctx, types.NamespacedName{Namespace: slice.Namespace, Name: slice.Labels[discoveryv1.LabelServiceName]}, &svc)
	if kerrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get Service for EndpointSlice %s/%s in tenant cluster: %w", slice.Namespace, slice.Name, err)
	}
	return len(svc.Spec.Selector) == 0 && !translate.IsAPIServerService(svc.Namespace, svc.Name), nil
}

// referencedBy wants an object while some tenant pod in its namespace
// references it, as recorded in the given pod index.
func referencedBy(index string) func(context.Context, client.Reader, client.Object) (bool, error) {
	return func(ctx context.Context, c client.Reader, obj client.Object) (bool, error) {
		// Existence only: one pod, not a copy of each. A ConfigMap every
		// pod of a namespace references (kube-root-ca.crt, which token
		// volumes read) is reconciled on each of their changes; copying
		// all its pods every time made that quadratic.
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(obj.GetNamespace()), client.MatchingFields{index: obj.GetName()},
			client.Limit(1), client.UnsafeDisableDeepCopy); err != nil {
			return false, fmt.Errorf("failed to list pods referencing %s/%s in tenant cluster: %w", obj.GetNamespace(), obj.GetName(), err)
		}
		return len(pods.Items) > 0, nil
	}
}

// indexTenantPods registers the tenant cache's indexes: the ConfigMaps
// and Secrets each pod references, the Secrets each Ingress names for TLS,
// and the Node each pod is bound to.
func indexTenantPods(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &corev1.Pod{}, indexConfigMapRefs, func(o client.Object) []string {
		return pods.ConfigMapRefs(o.(*corev1.Pod))
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &corev1.Pod{}, indexSecretRefs, func(o client.Object) []string {
		return pods.SecretRefs(o.(*corev1.Pod))
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &networkingv1.Ingress{}, indexIngressSecretRefs, func(o client.Object) []string {
		return ingresses.SecretRefs(o.(*networkingv1.Ingress))
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &corev1.Pod{}, nodesync.IndexNodeName, func(o client.Object) []string {
		if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	})
}

// Syncer runs the reconcilers of every kind.
type Syncer struct {
	mgr manager.Manager
	// host and hostNamespace answer WaitForHostAddresses.
	host          cluster.Cluster
	hostNamespace string
	// caches are the tenant's, the host namespace's and the host node
	// pool's, by name: Ready waits on them.
	caches map[string]cache.Cache
	// pods is the pod reconciler, for Sleep.
	pods *podsync.Reconciler
}

// Sleep stops the tenant's host pods before knestd sleeps
// (podsync.Reconciler.Sleep): it retries until every tenant pod is handled
// or ctx ends. The syncer must have started (its caches synced).
func (s *Syncer) Sleep(ctx context.Context) error {
	for {
		err := s.pods.Sleep(ctx)
		if err == nil {
			return nil
		}
		klog.FromContext(ctx).Error(err, "Stopping the host pods for the sleep; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to stop the host pods before sleeping: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// New sets up a syncer; Start runs it.
func New(ctx context.Context, cfg Config) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := gatewayv1.Install(scheme); err != nil {
		return nil, err
	}
	if gw := cfg.Policy.Exposure.Gateway; gw != nil {
		// Routes sync: the host must serve them, and the tenant's API
		// serves them before the caches watch them.
		if err := checkHostServesRoutes(cfg.HostConfig, gw); err != nil {
			return nil, err
		}
		if err := installTenantGatewayAPI(ctx, cfg.TenantConfig); err != nil {
			return nil, err
		}
	}
	metricsAddr := cfg.MetricsBindAddress
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	mgr, err := ctrl.NewManager(cfg.TenantConfig, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: "0",
		// knestd serves the process's profiles (--profiling-address).
		PprofBindAddress: "0",
		LeaderElection:   false,
		// The syncer never reads managedFields, and an update without them
		// keeps the server's: caches without them hold a third less.
		Cache:      cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(cfg.skipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to set up the tenant manager: %w", err)
	}
	marker, err := labels.Parse(translate.LabelTenant + "=" + cfg.Tenant)
	if err != nil {
		return nil, err
	}
	host, err := cluster.New(cfg.HostConfig, func(o *cluster.Options) {
		o.Scheme = scheme
		// Only what the namespaced Role may see, and only ours.
		o.Cache.DefaultNamespaces = map[string]cache.Config{cfg.HostNamespace: {}}
		o.Cache.DefaultLabelSelector = marker
		o.Cache.DefaultTransform = cache.TransformStripManagedFields()
		// Events carry no marker: all of the namespace's, to find those
		// about our copies.
		o.Cache.ByObject = map[client.Object]cache.ByObject{&corev1.Event{}: {Label: labels.Everything()}}
	})
	if err != nil {
		return nil, fmt.Errorf("failed to set up the host cluster client: %w", err)
	}
	if err := mgr.Add(host); err != nil {
		return nil, err
	}
	caches := map[string]cache.Cache{"tenant": mgr.GetCache(), "host namespace": host.GetCache()}
	if err := indexHostAddresses(ctx, host.GetCache()); err != nil {
		return nil, err
	}
	reg := cfg.MetricsRegistry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	// How long knestd's requests wait for the host budget (--host-qps,
	// --host-burst: client-go's rate limiter) and how long they then take,
	// by verb and API server: the operator sees whether the budget or the
	// host is what a burst of pods waits for. Process-wide, in
	// controller-runtime's registry, and registered once however many
	// syncers a process makes.
	ctrlmetrics.RegisterRESTClientMetrics(ctrlmetrics.MetricRequestLatency, ctrlmetrics.MetricRateLimiterLatency)
	m, err := writer.NewMetrics(reg)
	if err != nil {
		return nil, err
	}

	if err := indexTenantPods(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}

	tenantClient := mgr.GetClient()
	w := &writer.Writer{
		Tenant: cfg.Tenant, HostNamespace: cfg.HostNamespace,
		TenantClient: tenantClient, HostClient: host.GetClient(), HostReader: host.GetAPIReader(),
		Recorder: mgr.GetEventRecorder("knest-syncer"), Metrics: m,
	}
	kinds := Kinds(cfg.Policy)
	// What the syncer reads through its caches, by cache: the Pod
	// reconciler's and the Event reconciler's to start with, and in the
	// tenant the Nodes and their Leases the virtual-node manager reads and
	// the Events the Event reconciler looks up. A cache makes an informer
	// on the first read of a kind it lacks, and Ready then waits for it:
	// one made after the first Ready failed knestd's /readyz for as long as
	// it took to sync (seen in CI right after a tenant reported ready).
	watched := map[cache.Cache][]client.Object{
		mgr.GetCache():  {&corev1.Pod{}, &corev1.Namespace{}, &corev1.Node{}, &coordinationv1.Lease{}, &corev1.Event{}},
		host.GetCache(): {&corev1.Pod{}, &corev1.Secret{}, &corev1.Event{}},
	}
	for _, kind := range kinds {
		watched[mgr.GetCache()] = append(watched[mgr.GetCache()], kind.New())
		watched[host.GetCache()] = append(watched[host.GetCache()], kind.New())
		r := &reconciler{kind: kind, w: w, pass: passthrough(cfg.Policy)}
		b := builder.ControllerManagedBy(mgr).
			Named("sync-" + kind.Name).
			WithOptions(quietQueue).
			For(kind.New()).
			WatchesRawSource(source.Kind(host.GetCache(), kind.New(),
				handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
					id, ok := translate.IdentityOf(cfg.Tenant, o)
					if !ok || id.Kind != kind.Name {
						return nil
					}
					return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: id.Namespace, Name: id.Name}}}
				})))
		for _, tr := range kind.Triggers {
			cache := mgr.GetCache()
			if tr.Host {
				cache = host.GetCache()
			}
			watched[cache] = append(watched[cache], tr.Object)
			b = b.WatchesRawSource(source.Kind(cache, tr.Object,
				handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
					return tr.Requests(ctx, tenantClient, o)
				})))
		}
		if err := b.Complete(r); err != nil {
			return nil, fmt.Errorf("failed to set up the %s reconciler: %w", kind.Name, err)
		}
	}
	// The IngressClasses the tenant may use, once its API serves.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if err := ensureTenantIngressClasses(ctx, mgr.GetClient(), cfg.Policy.Exposure); err != nil {
			// Informational objects: the syncer goes on without them.
			klog.FromContext(ctx).Error(err, "Failed to show the tenant its IngressClasses")
		}
		return nil
	})); err != nil {
		return nil, err
	}
	if gw := cfg.Policy.Exposure.Gateway; gw != nil {
		// The Gateway the tenant's routes name, once its API serves.
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			if err := ensureTenantGateway(ctx, mgr.GetClient(), gw); err != nil {
				klog.FromContext(ctx).Error(err, "Failed to show the tenant the host's shared Gateway")
			}
			return nil
		})); err != nil {
			return nil, err
		}
	}
	caData, err := tenantCA(cfg.TenantCAFile, cfg.TenantConfig)
	if err != nil {
		return nil, err
	}
	nodeConfig := nodesync.Config{
		TenantClient: tenantClient, AliasKey: cfg.NodeAliasKey, Address: cfg.NodeAddress, KubeletPort: cfg.KubeletPort,
		Version: cfg.Version, Metrics: m, HostPods: host.GetClient(), Tenant: cfg.Tenant, HostNamespace: cfg.HostNamespace,
	}
	if cfg.HostNodeInfo {
		// The uncached reader: a GET by name, never a Node informer.
		nodeConfig.HostNodes = host.GetAPIReader()
	}
	if cfg.PoolNodes {
		hostClientset, err := kubernetes.NewForConfig(cfg.HostConfig)
		if err != nil {
			return nil, err
		}
		hostPool := cfg.HostPool
		if hostPool == nil {
			p := podsync.HostPool(ctx, hostClientset, cfg.HostNamespace, cfg.Policy)
			hostPool = &p
		}
		poolSelector := hostPool.NodeSelector
		klog.FromContext(ctx).Info("Virtual nodes stand for the host nodes of the pool", "selector", labels.SelectorFromSet(poolSelector).String())
		// The pool's Nodes only, and of each only what the pool needs.
		pool, err := cluster.New(cfg.HostConfig, func(o *cluster.Options) {
			o.Scheme = scheme
			o.Cache.ByObject = map[client.Object]cache.ByObject{&corev1.Node{}: {
				Label: labels.SelectorFromSet(poolSelector), Transform: nodesync.PoolNodeTransform,
			}}
		})
		if err != nil {
			return nil, fmt.Errorf("failed to set up the host node pool cache: %w", err)
		}
		if err := mgr.Add(pool); err != nil {
			return nil, err
		}
		nodeConfig.Pool = pool.GetCache()
		caches["host node pool"] = pool.GetCache()
		watched[pool.GetCache()] = []client.Object{&corev1.Node{}}
		nodeConfig.PoolTolerations = hostPool.Tolerations
	}
	nm := nodesync.New(nodeConfig)
	if err := mgr.Add(nm); err != nil {
		return nil, err
	}
	pr := podsync.New(podsync.Config{
		Writer: w, Nodes: nm, Policy: cfg.Policy, TenantCA: caData, TokenAudience: cfg.TokenAudience, Frozen: cfg.Frozen,
		DNS: pods.DNS{Nameserver: cfg.DNSServiceIP, ClusterDomain: cfg.ClusterDomain},
	})
	if err := pr.SetupWithManager(mgr, host, cfg.PodWorkers); err != nil {
		return nil, err
	}

	byName := map[string]func() client.Object{"Pod": func() client.Object { return &corev1.Pod{} }}
	for _, k := range kinds {
		byName[k.Name] = k.New
	}
	er := &eventsync.Reconciler{Kinds: byName, Writer: w, NodeAlias: nm.Alias, KnownHostNodes: nm.KnownHostNodes}
	if err := builder.ControllerManagedBy(mgr).
		Named("sync-host-events").
		WithOptions(quietQueue).
		WatchesRawSource(source.Kind(host.GetCache(), client.Object(&corev1.Event{}), &handler.EnqueueRequestForObject{})).
		Complete(er); err != nil {
		return nil, fmt.Errorf("failed to set up the event reconciler: %w", err)
	}
	for c, objs := range watched {
		if err := registerInformers(ctx, c, objs); err != nil {
			return nil, err
		}
	}
	return &Syncer{mgr: mgr, host: host, hostNamespace: cfg.HostNamespace, caches: caches, pods: pr}, nil
}

// HostPod reads a pod of the host namespace from the syncer's host cache,
// which holds only the tenant's own (marker-labelled) objects.
func (s *Syncer) HostPod(ctx context.Context, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	return p, s.host.GetCache().Get(ctx, types.NamespacedName{Namespace: s.hostNamespace, Name: name}, p)
}

// TenantPod reads a tenant pod from the syncer's tenant cache.
func (s *Syncer) TenantPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	return p, s.mgr.GetCache().Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, p)
}

// TenantServiceAccount reads a tenant ServiceAccount from the syncer's
// tenant cache.
func (s *Syncer) TenantServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	sa := &corev1.ServiceAccount{}
	return sa, s.mgr.GetCache().Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, sa)
}

// tenantCA returns the CA bundle the tenant API server's clients trust.
func tenantCA(file string, c *rest.Config) ([]byte, error) {
	if file == "" {
		if len(c.CAData) > 0 {
			return c.CAData, nil
		}
		file = c.CAFile
	}
	if file == "" {
		return nil, errors.New("syncer: the tenant config names no CA")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read the tenant CA: %w", err)
	}
	return data, nil
}

// ReadyWait bounds how long Ready waits for the caches on one call.
const ReadyWait = time.Second

// Ready reports whether the syncer runs and every informer of its caches
// (the tenant's, the host namespace's and the host node pool's) has
// synced: before that its reconcilers act on a partial view. It is
// called on every readiness probe, so it covers informers the
// controllers add when they start, too.
func (s *Syncer) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyWait)
	defer cancel()
	for _, name := range slices.Sorted(maps.Keys(s.caches)) {
		if !s.caches[name].WaitForCacheSync(ctx) {
			return fmt.Errorf("the syncer's %s cache has not synced", name)
		}
	}
	return nil
}

// registerInformers creates c's informers for objs before the caches
// start. A cache's WaitForCacheSync waits only for the informers it has,
// and a controller adds those it watches only once it starts: without
// this, Ready could pass in between, with a cache that never syncs (a
// host Role that lacks a grant) not yet in it.
func registerInformers(ctx context.Context, c cache.Cache, objs []client.Object) error {
	for _, o := range objs {
		if _, err := c.GetInformer(ctx, o, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("failed to set up the cache of %T: %w", o, err)
		}
	}
	return nil
}

// Start runs the syncer until ctx ends.
func (s *Syncer) Start(ctx context.Context) error {
	return s.mgr.Start(ctx)
}

// passthrough is the policy's allowlist of tenant metadata keys that reach
// host objects as they are.
func passthrough(pol *policy.Policy) translate.Passthrough {
	return translate.Passthrough{Label: pol.Metadata.AllowsLabel, Annotation: pol.Metadata.AllowsAnnotation}
}

// refuseBytes says why a ConfigMap or Secret of size bytes must not be
// copied to the host, or "". The cap applies where the host is written,
// not at the tenant API: tenants keep large objects that never reach the
// host (Helm keeps its releases in Secrets).
func refuseBytes(size int, pol *policy.Policy) string {
	if errs := policy.CheckObjectBytes(size, pol); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	return ""
}

// dataBytes is the size of a ConfigMap's or Secret's data: keys and values.
func dataBytes[V string | []byte](data map[string]V) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// CheckHostRunsPods makes sure the host can run this tenant's pods under pol
// before anything is synced; see podsync.CheckHostRunsPods.
func CheckHostRunsPods(ctx context.Context, host kubernetes.Interface, namespace string, pol *policy.Policy) (*podsync.Pool, error) {
	return podsync.CheckHostRunsPods(ctx, host, namespace, pol)
}
