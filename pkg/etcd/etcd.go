package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// DefaultQuotaBackendBytes caps the database size of one tenant. etcd refuses
// writes (the API server answers "etcdserver: mvcc: database space exceeded")
// once it is reached, which bounds what one tenant can store on the host.
const DefaultQuotaBackendBytes = 2 << 30

// Options configure an embedded etcd.
type Options struct {
	// Dir is the etcd data directory; created with mode 0700.
	Dir string
	// Name is the member name, stable across restarts.
	Name string
	// QuotaBackendBytes is the database size limit; 0 means DefaultQuotaBackendBytes.
	QuotaBackendBytes int64
	// SnapshotCount is how many applied entries trigger a snapshot (and
	// bound the raft log kept in memory); 0 keeps etcd's default.
	SnapshotCount uint64
	// LogLevel of etcd's own logger; "" means "warn": etcd is an
	// implementation detail here and its info logs drown knestd's.
	LogLevel string
	// LogFormat is etcd's log encoding: "json" (one JSON object a line,
	// etcd's default when "") or "console" (text).
	LogFormat string
	// StartTimeout bounds how long Run waits for the server to be ready.
	StartTimeout time.Duration
}

// Validate reports configuration errors.
func (o Options) Validate() error {
	if o.Dir == "" {
		return errors.New("etcd: data directory is required")
	}
	if o.Name == "" {
		return errors.New("etcd: member name is required")
	}
	if o.QuotaBackendBytes < 0 {
		return fmt.Errorf("etcd: quota must not be negative, got %d", o.QuotaBackendBytes)
	}
	return nil
}

// The embedded etcd's timers (Config), set for one member on loopback that
// is idle most of its life.
const (
	TickMs               = 100
	ElectionMs           = 500
	BackendBatchInterval = time.Second
)

// Config turns the options into an embed.Config.
func (o Options) Config() (*embed.Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = o.Name
	cfg.Dir = o.Dir
	// Port 0: the kernel picks a free port, read back from the listener.
	client := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	// Advertised URLs are recorded in the member list; with one member they
	// are never dialled, but must be concrete host:port pairs.
	advertisedPeer := url.URL{Scheme: "http", Host: "127.0.0.1:2380"}
	cfg.AdvertisePeerUrls = []url.URL{advertisedPeer}
	cfg.AdvertiseClientUrls = []url.URL{{Scheme: "http", Host: "127.0.0.1:2379"}}
	cfg.InitialCluster = o.Name + "=" + advertisedPeer.String()
	cfg.InitialClusterToken = "knest-" + o.Name
	cfg.QuotaBackendBytes = o.QuotaBackendBytes
	if cfg.QuotaBackendBytes == 0 {
		cfg.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if o.SnapshotCount > 0 {
		cfg.SnapshotCount = o.SnapshotCount
	}
	// One member on loopback: no network to tolerate, and no peer for the
	// election timeout to wait for: it only sets how long a (re)started
	// member takes to elect itself, since etcd advances a lone member's
	// election clock to one tick before the timeout: 1 to 5 ticks, 0.1-0.5 s
	// here (the default 100 ms tick x 10 took up to a second). The tick is
	// the raft loop's wake-up rate when idle: 100 ms, 10 a second (etcd
	// needs an election of at least 5 ticks). A 50 ms tick measured ~37
	// more wake-ups a second of an idle knestd.
	cfg.TickMs = TickMs
	cfg.ElectionMs = ElectionMs
	// The backend commits its write batch to bbolt every interval, waking
	// each time even with nothing to commit (default 100 ms). The WAL, not
	// this commit, makes a write durable; a batch not yet committed is
	// served from the batch's buffer and replayed from the WAL after a
	// crash, and a snapshot commits first.
	cfg.BackendBatchInterval = BackendBatchInterval
	cfg.LogLevel = o.LogLevel
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if o.LogFormat != "" {
		cfg.LogFormat = o.LogFormat
	}
	cfg.LogOutputs = []string{"stderr"}
	return cfg, nil
}

// Server is a running embedded etcd.
type Server struct {
	etcd    *embed.Etcd
	url     string
	stopped chan struct{}
}

// ClientURL is the address clients dial, e.g. http://127.0.0.1:41234.
func (s *Server) ClientURL() string { return s.url }

// NewInProcessClient returns a client that calls this server's gRPC
// service implementations as functions, in this process: no socket, no
// HTTP/2 framing, no reader and writer goroutines on either side. It has
// no connection to wait for or lose; once the server stops, its calls
// fail. The caller closes it.
func (s *Server) NewInProcessClient() *clientv3.Client { return v3client.New(s.etcd.Server) }

// Stopped is closed once the server has shut down after its context ended.
func (s *Server) Stopped() <-chan struct{} { return s.stopped }

// Err delivers errors the server hits after it started serving.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Run starts etcd and returns once it is ready to serve, or with the reason
// it is not. When ctx ends the server is closed; Stopped tells when that is done.
func Run(ctx context.Context, o Options) (*Server, error) {
	cfg, err := o.Config()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create etcd data directory: %w", err)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to start etcd: %w", err)
	}
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcd was not ready within %s", timeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	s := &Server{
		etcd:    e,
		url:     "http://" + e.Clients[0].Addr().String(),
		stopped: make(chan struct{}),
	}
	go func() {
		<-ctx.Done()
		e.Close()
		close(s.stopped)
	}()
	return s, nil
}
