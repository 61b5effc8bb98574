package synctest

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/syncer/writer"
	"github.com/knest-dev/knest/pkg/translate"
)

// Cluster names, as in Write.Cluster and Inject.
const (
	Host   = "host"
	Tenant = "tenant"
)

// cacheTimeout bounds waiting for a cache to catch up with the API server.
const cacheTimeout = 10 * time.Second

// Options configure an Env.
type Options struct {
	// TenantIndexes registers the tenant cache's field indexes, as the
	// syncer does on its manager.
	TenantIndexes func(ctx context.Context, indexer client.FieldIndexer) error
	// HostIndexes registers the host cache's field indexes.
	HostIndexes func(ctx context.Context, c cache.Cache) error
}

// Env is one test's tenant: a tenant name, a host namespace and a tenant
// namespace of its own on the shared API servers, caches configured as the
// syncer configures its own, and a writer.Writer over them whose writes are
// recorded and whose calls can be made to fail.
type Env struct {
	// Tenant is the tenant's name, the value of its marker label.
	Tenant string
	// HostNamespace is the tenant's host namespace; it holds the host
	// ServiceAccount host pods run as.
	HostNamespace string
	// Namespace is a tenant namespace with its default ServiceAccount.
	Namespace string
	// TenantConfig and HostConfig reach the API servers as cluster admin.
	TenantConfig, HostConfig *rest.Config
	// TenantAdmin and HostAdmin read and write the API servers directly,
	// as the tenant's users and the host's kubelet and scheduler would;
	// WaitCaches waits for the caches to see their writes too.
	TenantAdmin, HostAdmin client.Client
	// TenantCache and HostCache read the caches the Writer reads.
	TenantCache, HostCache client.Reader
	// Writer is what the controllers under test read and write with.
	Writer *writer.Writer
	// Registry holds the Writer's metrics, and nothing else.
	Registry *prometheus.Registry

	mu      sync.Mutex
	writes  []Write
	events  []Event
	inject  map[string]interceptor.Funcs
	touched map[touchKey]client.Object
}

// Write is one write the Writer's clients sent to an API server.
type Write struct {
	// Cluster is Host or Tenant.
	Cluster string
	// Op is create, update, patch or delete.
	Op string
	// Kind is the object's Go type name, e.g. "Pod".
	Kind string
	Key  types.NamespacedName
	// Subresource is the subresource written, if any.
	Subresource string
	// Err is the write's outcome.
	Err error
}

func (w Write) String() string {
	s := w.Cluster + " " + w.Op + " " + w.Kind
	if w.Subresource != "" {
		s += "/" + w.Subresource
	}
	s += " " + w.Key.String()
	if w.Err != nil {
		s += " (" + w.Err.Error() + ")"
	}
	return s
}

// Event is an Event the Writer recorded on a tenant object.
type Event struct {
	Object                types.NamespacedName
	Type, Reason, Message string
}

type touchKey struct {
	cluster string
	kind    string
	key     types.NamespacedName
}

// New returns a fresh tenant on the package's clusters, or skips the test
// when there are none (-short). Its caches stop when the test ends; its
// objects stay (the servers go with the test binary).
func New(t *testing.T, c *Clusters, o Options) *Env {
	t.Helper()
	if c.Host == nil || c.Tenant == nil {
		t.Skip("needs the host and tenant API servers, which are not started with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	id := randomName()
	e := &Env{
		Tenant: "t-" + id, HostNamespace: "host-" + id, Namespace: "ns-" + id,
		TenantConfig: c.Tenant, HostConfig: c.Host,
		Registry: prometheus.NewRegistry(),
		inject:   map[string]interceptor.Funcs{}, touched: map[touchKey]client.Object{},
	}
	scheme := runtime.NewScheme()
	must(t, clientgoscheme.AddToScheme(scheme))
	must(t, gatewayv1.Install(scheme))
	tenantDirect, err := client.NewWithWatch(c.Tenant, client.Options{Scheme: scheme})
	must(t, err)
	hostDirect, err := client.NewWithWatch(c.Host, client.Options{Scheme: scheme})
	must(t, err)
	e.TenantAdmin = interceptor.NewClient(tenantDirect, e.record(Tenant, false))
	e.HostAdmin = interceptor.NewClient(hostDirect, e.record(Host, false))

	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.HostNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: pods.HostServiceAccount}},
	} {
		must(t, e.HostAdmin.Create(ctx, obj))
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}},
		// The controller-manager makes it too; whoever is first.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "default"}},
	} {
		if err := e.TenantAdmin.Create(ctx, obj); err != nil && !kerrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	// The caches as syncer.New configures them.
	tenant, err := cluster.New(c.Tenant, func(co *cluster.Options) {
		co.Scheme = scheme
		co.Cache.DefaultTransform = cache.TransformStripManagedFields()
	})
	must(t, err)
	marker, err := labels.Parse(translate.LabelTenant + "=" + e.Tenant)
	must(t, err)
	host, err := cluster.New(c.Host, func(co *cluster.Options) {
		co.Scheme = scheme
		co.Cache.DefaultNamespaces = map[string]cache.Config{e.HostNamespace: {}}
		co.Cache.DefaultLabelSelector = marker
		co.Cache.DefaultTransform = cache.TransformStripManagedFields()
		co.Cache.ByObject = map[client.Object]cache.ByObject{&corev1.Event{}: {Label: labels.Everything()}}
	})
	must(t, err)
	if o.TenantIndexes != nil {
		must(t, o.TenantIndexes(ctx, tenant.GetFieldIndexer()))
	}
	if o.HostIndexes != nil {
		must(t, o.HostIndexes(ctx, host.GetCache()))
	}
	var running sync.WaitGroup
	for _, cl := range []cluster.Cluster{tenant, host} {
		running.Go(func() {
			if err := cl.Start(ctx); err != nil {
				t.Errorf("cache stopped: %v", err)
			}
		})
	}
	if !tenant.GetCache().WaitForCacheSync(ctx) || !host.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	e.TenantCache, e.HostCache = tenant.GetCache(), host.GetCache()

	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kubernetes.NewForConfigOrDie(c.Tenant).EventsV1()})
	must(t, broadcaster.StartRecordingToSinkWithContext(ctx))
	metrics, err := writer.NewMetrics(e.Registry)
	must(t, err)
	e.Writer = &writer.Writer{
		Tenant: e.Tenant, HostNamespace: e.HostNamespace,
		TenantClient: interceptor.NewClient(interceptor.NewClient(withWatch{tenant.GetClient()}, e.record(Tenant, true)), e.injected(Tenant)),
		HostClient:   interceptor.NewClient(interceptor.NewClient(withWatch{host.GetClient()}, e.record(Host, true)), e.injected(Host)),
		HostReader:   host.GetAPIReader(),
		Recorder:     &recorder{e: e, next: broadcaster.NewRecorder(scheme, "knest-syncer")},
		Metrics:      metrics,
	}
	t.Cleanup(func() {
		broadcaster.Shutdown()
		cancel()
		running.Wait()
	})
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// withWatch lets interceptor wrap a cluster's client, which cannot watch.
type withWatch struct{ client.Client }

func (withWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, fmt.Errorf("synctest: the syncer's clients do not watch")
}

// Inject makes the Writer's client of cluster (Host or Tenant) call the
// given functions instead of the API server: to fail a call, or to change
// the world just before it. The functions get the real client. The zero
// Funcs ends the injection.
func (e *Env) Inject(cluster string, f interceptor.Funcs) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inject[cluster] = f
}

// Writes returns the writes the Writer's clients sent since the last call.
func (e *Env) Writes() []Write {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.writes
	e.writes = nil
	return w
}

// Events returns the Events the Writer recorded so far.
func (e *Env) Events() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.events...)
}

// Reasons returns the reasons of the Events recorded on tenant object key.
func (e *Env) Reasons(key types.NamespacedName) []string {
	var out []string
	for _, ev := range e.Events() {
		if ev.Object == key {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// Counter returns the value of counter metric name with the given labels
// in the Writer's metrics (0 if it was never counted).
func (e *Env) Counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := e.Registry.Gather()
	must(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// WaitCaches waits until the caches show every object written so far,
// by the test's admin clients or by the Writer, as the API server has it:
// a controller under test then reads what was written.
func (e *Env) WaitCaches(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	touched := make(map[touchKey]client.Object, len(e.touched))
	for k, v := range e.touched {
		touched[k] = v
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
	defer cancel()
	for k, proto := range touched {
		direct, cached := e.TenantAdmin.(client.Reader), e.TenantCache
		if k.cluster == Host {
			if k.key.Namespace != e.HostNamespace {
				continue
			}
			direct, cached = e.HostAdmin, e.HostCache
		}
		var last string
		err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			want, got := proto.DeepCopyObject().(client.Object), proto.DeepCopyObject().(client.Object)
			wantErr, gotErr := direct.Get(ctx, k.key, want), cached.Get(ctx, k.key, got)
			_, isEvent := want.(*corev1.Event)
			// The host cache holds Events whatever their labels.
			selected := k.cluster == Tenant || isEvent || want.GetLabels()[translate.LabelTenant] == e.Tenant
			if kerrors.IsNotFound(wantErr) || !selected {
				// Gone, or not in the host cache's selection.
				last = fmt.Sprintf("cache has it (%v)", gotErr)
				return kerrors.IsNotFound(gotErr), nil
			}
			if wantErr != nil || gotErr != nil {
				last = fmt.Sprintf("API: %v, cache: %v", wantErr, gotErr)
				return false, nil
			}
			last = fmt.Sprintf("API at %s, cache at %s", want.GetResourceVersion(), got.GetResourceVersion())
			return want.GetResourceVersion() == got.GetResourceVersion(), nil
		})
		if err != nil {
			t.Fatalf("the %s cache did not catch up with %s %s: %s", k.cluster, k.kind, k.key, last)
		}
	}
}

// record is a client layer that remembers which objects were written,
// for WaitCaches, and with writes set, the writes themselves.
func (e *Env) record(cluster string, writes bool) interceptor.Funcs {
	note := func(op, sub string, obj client.Object, err error) {
		kind := kindOf(obj)
		key := client.ObjectKeyFromObject(obj)
		e.mu.Lock()
		defer e.mu.Unlock()
		if writes {
			e.writes = append(e.writes, Write{Cluster: cluster, Op: op, Kind: kind, Key: key, Subresource: sub, Err: err})
		}
		if sub == "token" {
			// The ServiceAccount itself does not change.
			return
		}
		proto, ok := obj.DeepCopyObject().(client.Object)
		if !ok {
			return
		}
		e.touched[touchKey{cluster: cluster, kind: kind, key: key}] = proto
	}
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			err := c.Create(ctx, obj, opts...)
			note("create", "", obj, err)
			return err
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			err := c.Update(ctx, obj, opts...)
			note("update", "", obj, err)
			return err
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			err := c.Patch(ctx, obj, patch, opts...)
			note("patch", "", obj, err)
			return err
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			err := c.Delete(ctx, obj, opts...)
			note("delete", "", obj, err)
			return err
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			err := c.SubResource(sub).Create(ctx, obj, subObj, opts...)
			note("create", sub, obj, err)
			return err
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			err := c.SubResource(sub).Update(ctx, obj, opts...)
			note("update", sub, obj, err)
			return err
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			err := c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			note("patch", sub, obj, err)
			return err
		},
	}
}

// injected is a client layer that calls what Inject set for cluster, if
// anything.
func (e *Env) injected(cluster string) interceptor.Funcs {
	funcs := func() interceptor.Funcs {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.inject[cluster]
	}
	return interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if f := funcs().Get; f != nil {
				return f(ctx, c, key, obj, opts...)
			}
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if f := funcs().List; f != nil {
				return f(ctx, c, list, opts...)
			}
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if f := funcs().Create; f != nil {
				return f(ctx, c, obj, opts...)
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if f := funcs().Update; f != nil {
				return f(ctx, c, obj, opts...)
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if f := funcs().Patch; f != nil {
				return f(ctx, c, obj, patch, opts...)
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if f := funcs().Delete; f != nil {
				return f(ctx, c, obj, opts...)
			}
			return c.Delete(ctx, obj, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			if f := funcs().SubResourceCreate; f != nil {
				return f(ctx, c, sub, obj, subObj, opts...)
			}
			return c.SubResource(sub).Create(ctx, obj, subObj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if f := funcs().SubResourceUpdate; f != nil {
				return f(ctx, c, sub, obj, opts...)
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if f := funcs().SubResourcePatch; f != nil {
				return f(ctx, c, sub, obj, patch, opts...)
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

func kindOf(obj client.Object) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
}

// recorder remembers the Events recorded on tenant objects, then sends
// them to the tenant API server as the syncer's recorder does.
type recorder struct {
	e    *Env
	next events.EventRecorder
}

func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ev := Event{Type: eventtype, Reason: reason, Message: fmt.Sprintf(note, args...)}
	if o, ok := regarding.(client.Object); ok {
		ev.Object = client.ObjectKeyFromObject(o)
	}
	r.e.mu.Lock()
	r.e.events = append(r.e.events, ev)
	r.e.mu.Unlock()
	r.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// Reconcile waits for the caches to show what was written so far, then
// reconciles key with r and returns its outcome and the writes it made.
func (e *Env) Reconcile(t *testing.T, r reconcile.Reconciler, key types.NamespacedName) (reconcile.Result, []Write, error) {
	t.Helper()
	e.WaitCaches(t)
	e.Writes()
	result, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	return result, e.Writes(), err
}

// Settle reconciles key until a reconcile succeeds without writing, and
// fails the test if that takes more than a few rounds.
func (e *Env) Settle(t *testing.T, r reconcile.Reconciler, key types.NamespacedName) {
	t.Helper()
	var last []Write
	for range 8 {
		_, writes, err := e.Reconcile(t, r, key)
		if err == nil && len(writes) == 0 {
			return
		}
		last = writes
	}
	t.Fatalf("%s did not settle; the last reconcile wrote %v", key, last)
}

// Ops renders writes as "cluster op Kind[/subresource]", for comparing.
func Ops(writes []Write) []string {
	var out []string
	for _, w := range writes {
		s := w.Cluster + " " + w.Op + " " + w.Kind
		if w.Subresource != "" {
			s += "/" + w.Subresource
		}
		out = append(out, s)
	}
	return out
}

// Run runs start (a syncer's Start) until the test ends, then cancels it
// and checks that it returned nil.
func Run(t *testing.T, ctx context.Context, cancel context.CancelFunc, start func(context.Context) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("syncer stopped with %v", err)
		}
	})
}
