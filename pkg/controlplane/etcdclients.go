package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"k8s.io/apimachinery/pkg/runtime"
	genericfeatures "k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/server/egressselector"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/tracing"
	"k8s.io/klog/v2"
)

// One etcd client for every resource.
//
// Upstream's storage factory dials a new etcd client, one gRPC connection
// with its own keepalive, reader and writer goroutines and buffers, for every
// resource it stores (kubernetes/kubernetes#111622): 62 connections to the
// tenant's etcd in an idle knestd, each served by etcd with as many again,
// and one watch stream each. knestd builds the resources' raw storage with
// upstream's store (etcd3.New) on one client per transport instead; etcd
// multiplexes the requests and every watch over it (the watches share one
// gRPC watch stream), as one client of a shared etcd does in other
// multi-tenant API servers. A tenant's control plane is small: one
// connection's throughput is far above what its API server asks of etcd
// (make bench-sync measures it). The health checks keep upstream's own
// clients.

// In-process etcd.
//
// knestd's etcd runs in knestd's own process, so the shared client of its
// transport calls etcd's gRPC service implementations as functions
// (etcd's v3client) instead of over loopback: a write then crosses no
// socket, no HTTP/2 framing and none of the four reader and writer
// goroutines of a gRPC connection (client and server, each way), each a
// wake-up for a request that arrives after a quiet spell (runtime traces
// of paused status writes: the etcd part of a write 1.32 -> 0.85 ms, p50;
// README "Lever: no loopback inside knestd for a write"), and a watch
// event reaches the watch cache the same way. The listener stays for the health checks, the
// datastore monitor, snapshots and anyone else who dials the URL.

// inProcessEtcd maps the client URL of an etcd running in this process to
// the function that makes an in-process client of it.
var inProcessEtcd sync.Map // string -> *localEtcd

type localEtcd struct{ newClient func() *clientv3.Client }

// serveInProcess lets transports whose only server is url reach it through
// newClient, until the returned function is called. Clients made before
// then keep working until etcd stops.
func serveInProcess(url string, newClient func() *clientv3.Client) (stop func()) {
	l := &localEtcd{newClient: newClient}
	inProcessEtcd.Store(url, l)
	return func() { inProcessEtcd.CompareAndDelete(url, l) }
}

// inProcessClient returns an in-process client for c when its one server
// runs in this process and c asks for no TLS (which an in-process client
// has no use for; a transport that names certificates dials).
func inProcessClient(c storagebackend.TransportConfig) (*clientv3.Client, bool) {
	if len(c.ServerList) != 1 || c.CertFile != "" || c.KeyFile != "" || c.TrustedCAFile != "" {
		return nil, false
	}
	l, ok := inProcessEtcd.Load(c.ServerList[0])
	if !ok {
		return nil, false
	}
	return l.(*localEtcd).newClient(), true
}

// Upstream's settings for its etcd clients (storagebackend/factory).
const (
	etcdKeepaliveTime    = 30 * time.Second
	etcdKeepaliveTimeout = 10 * time.Second
	etcdDialTimeout      = 20 * time.Second
)

// etcdClients hands out one client and one compactor per transport and
// compaction interval, counted: the last storage destroyed closes them.
type etcdClients struct {
	mu     sync.Mutex
	shared map[string]*sharedEtcd
}

type sharedEtcd struct {
	client    *kubernetes.Client
	compactor etcd3.Compactor
	stop      func()
	refs      int
}

// sharedEtcdClients serves every server of the process. The key tells
// transports apart by their servers and TLS files: the servers of one
// chain share one egress configuration.
var sharedEtcdClients = &etcdClients{shared: map[string]*sharedEtcd{}}

func transportKey(c storagebackend.TransportConfig, compaction time.Duration) string {
	return fmt.Sprintf("%q %q %q %q %s", c.ServerList, c.CertFile, c.KeyFile, c.TrustedCAFile, compaction)
}

// acquire returns the transport's shared client and compactor (nil when
// compaction is off) and the function that releases them.
func (e *etcdClients) acquire(c storagebackend.TransportConfig, compaction time.Duration) (*kubernetes.Client, etcd3.Compactor, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := transportKey(c, compaction)
	s, ok := e.shared[key]
	if !ok {
		client, err := dialEtcd(c)
		if err != nil {
			return nil, nil, nil, err
		}
		s = &sharedEtcd{client: client, stop: func() {}}
		if compaction > 0 {
			compactor := etcd3.StartCompactorPerEndpoint(client.Client, compaction)
			s.compactor, s.stop = compactor, compactor.Stop
		}
		e.shared[key] = s
	}
	s.refs++
	var once sync.Once
	return s.client, s.compactor, func() {
		once.Do(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if s.refs--; s.refs == 0 {
				s.stop()
				_ = s.client.Close()
				delete(e.shared, key)
			}
		})
	}, nil
}

// dialEtcd is upstream's etcd client (TLS, egress dialer, tracing,
// keepalive, waiting for the connection) made once per transport. The
// latency tracker upstream puts on each resource's client goes on the
// shared client once.
func dialEtcd(c storagebackend.TransportConfig) (*kubernetes.Client, error) {
	if local, ok := inProcessClient(c); ok {
		client := &kubernetes.Client{Client: local}
		client.Kubernetes = client
		client.KV = etcd3.NewETCDLatencyTracker(client.KV)
		return client, nil
	}
	cfg := clientv3.Config{
		Endpoints:            c.ServerList,
		DialTimeout:          etcdDialTimeout,
		DialKeepAliveTime:    etcdKeepaliveTime,
		DialKeepAliveTimeout: etcdKeepaliveTimeout,
		Logger:               zap.New(klogCore{}),
	}
	if c.CertFile != "" || c.KeyFile != "" || c.TrustedCAFile != "" {
		tlsInfo := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.TrustedCAFile}
		tlsConfig, err := tlsInfo.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd client TLS: %w", err)
		}
		cfg.TLS = tlsConfig
	}
	cfg.DialOptions = []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithPropagators(tracing.Propagators()), otelgrpc.WithTracerProvider(c.TracerProvider)))}
	if c.EgressLookup != nil {
		dial, err := c.EgressLookup(egressselector.Etcd.AsNetworkContext())
		if err != nil {
			return nil, err
		}
		if dial != nil {
			cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				if strings.Contains(addr, "//") {
					u, err := url.Parse(addr)
					if err != nil {
						return nil, err
					}
					addr = u.Host
				}
				return dial(ctx, "tcp", addr)
			}))
		}
	}
	client, err := kubernetes.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	if err := waitConnected(client.Client.ActiveConnection(), etcdDialTimeout); err != nil {
		_ = client.Close()
		return nil, err
	}
	client.KV = etcd3.NewETCDLatencyTracker(client.KV)
	return client, nil
}

// waitConnected waits until conn is ready, as upstream's clients do
// before their first request.
func waitConnected(conn *grpc.ClientConn, timeout time.Duration) error {
	if conn == nil {
		return fmt.Errorf("etcd client: no gRPC connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, state) {
			return fmt.Errorf("etcd connection not ready after %s: %w", timeout, ctx.Err())
		}
	}
}

// sharedRawStorage is upstream's raw etcd storage of a resource
// (generic.NewRawStorage) on the transport's shared client.
func sharedRawStorage(config *storagebackend.ConfigForResource, newFunc, newListFunc func() runtime.Object, resourcePrefix string) (storage.Interface, factory.DestroyFunc, error) {
	if config.Type != storagebackend.StorageTypeUnset && config.Type != storagebackend.StorageTypeETCD3 {
		return factory.Create(*config, newFunc, newListFunc, resourcePrefix)
	}
	client, compactor, release, err := sharedEtcdClients.acquire(config.Transport, config.CompactionInterval)
	if err != nil {
		return nil, nil, err
	}
	transformer := config.Transformer
	if transformer == nil {
		transformer = identity.NewEncryptCheckTransformer()
	}
	versioner := storage.APIObjectVersioner{}
	decoder := etcd3.NewDefaultDecoder(config.Codec, versioner)
	unsafeDelete := utilfeature.DefaultFeatureGate.Enabled(genericfeatures.AllowUnsafeMalformedObjectDeletion)
	if unsafeDelete {
		transformer = etcd3.WithCorruptObjErrorHandlingTransformer(transformer)
		decoder = etcd3.WithCorruptObjErrorHandlingDecoder(decoder)
	}
	store, err := etcd3.New(client, compactor, config.Codec, newFunc, newListFunc, config.Prefix, resourcePrefix,
		config.GroupResource, transformer, config.LeaseManagerConfig, decoder, versioner)
	if err != nil {
		release()
		return nil, nil, err
	}
	var once sync.Once
	destroy := func() {
		// Upstream calls a storage's destroy more than once (subresources
		// share it).
		once.Do(func() {
			store.Close()
			release()
		})
	}
	var s storage.Interface = store
	if unsafeDelete {
		s = etcd3.NewStoreWithUnsafeCorruptObjectDeletion(s, config.GroupResource)
	}
	return s, destroy, nil
}

// klogCore writes the shared clients' warnings and errors to knestd's log
// (klog, in the format the operator chose); upstream's clients write JSON
// of their own.
type klogCore struct{ fields []zapcore.Field }

func (klogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c klogCore) With(fields []zapcore.Field) zapcore.Core {
	return klogCore{fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c klogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c klogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field(nil), c.fields...), fields...) {
		f.AddTo(enc)
	}
	kv := make([]any, 0, 2*len(enc.Fields)+2)
	kv = append(kv, "component", "etcd-client")
	for k, v := range enc.Fields {
		kv = append(kv, k, v)
	}
	if e.Level >= zapcore.ErrorLevel {
		klog.ErrorS(nil, e.Message, kv...)
	} else {
		klog.InfoS(e.Message, kv...)
	}
	return nil
}

func (klogCore) Sync() error { return nil }
