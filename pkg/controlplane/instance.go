package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/controlplane/inprocess"
	"github.com/knest-dev/knest/pkg/datastore"
	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/etcd"
	"github.com/knest-dev/knest/pkg/kubeconfig"
	"github.com/knest-dev/knest/pkg/lifecycle"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/servicecidr"
)

// ProbeNamespacePrefix starts the name of the namespace created at every
// start to prove the controllers run.
const ProbeNamespacePrefix = "knest-readiness-probe-"

const (
	// componentStopBudget is how long each component may take to stop.
	componentStopBudget = 2 * time.Second
	// DefaultReadyTimeout bounds start-up.
	DefaultReadyTimeout = 2 * time.Minute
)

// Layout is where a control plane keeps its files in its data directory.
type Layout struct {
	Lock, PKI, Etcd, EncryptionKey, AdminKubeconfig, ControllerManagerKubeconfig string
}

// LayoutOf returns the layout of a data directory.
func LayoutOf(dataDir string) Layout {
	return Layout{
		Lock:                        filepath.Join(dataDir, "knestd.lock"),
		PKI:                         filepath.Join(dataDir, "pki"),
		Etcd:                        filepath.Join(dataDir, "etcd"),
		EncryptionKey:               filepath.Join(dataDir, "encryption.key"),
		AdminKubeconfig:             filepath.Join(dataDir, "admin.kubeconfig"),
		ControllerManagerKubeconfig: filepath.Join(dataDir, "controller-manager.kubeconfig"),
	}
}

// Spec describes one control plane: etcd, kube-apiserver and
// kube-controller-manager sharing a data directory.
type Spec struct {
	// Name names the cluster (CA subjects, kubeconfig context, etcd member).
	Name string
	// DataDir holds everything that must survive a restart.
	DataDir string
	// BindAddress and Port are where the API server listens; port 0 picks one.
	BindAddress string
	Port        int
	// AdvertiseAddress is the address the API server advertises.
	AdvertiseAddress net.IP
	// ServiceCIDR and ClusterDomain shape the service network.
	ServiceCIDR   string
	ClusterDomain string
	// KubernetesServiceIP overrides the "kubernetes" Service's ClusterIP.
	KubernetesServiceIP net.IP
	// SANs and SANIPs are added to the serving certificate.
	SANs   []string
	SANIPs []net.IP
	// EncryptionKeyFile holds the secrets key; empty means one generated
	// into the data directory.
	EncryptionKeyFile string
	// EtcdQuotaBytes caps the database; 0 is etcd's package default.
	EtcdQuotaBytes int64
	// EtcdLogFormat is embedded etcd's log encoding, json or console; ""
	// is etcd's default (json).
	EtcdLogFormat string
	// Datastore, if set, is kept current by a datastore.Monitor started
	// before the API server (its admission plugin is among
	// AdmissionPlugins).
	Datastore *datastore.Guard
	// APIServerFlags and ControllerManagerFlags are appended to the
	// generated flags; Controllers replaces the controller list when set.
	APIServerFlags         []string
	ControllerManagerFlags []string
	// AdmissionPlugins are compiled into the API server.
	AdmissionPlugins []AdmissionPlugin
	Controllers      []string
	// ReadyzChecks are added to the API server's /readyz. Start does not
	// wait for them: they are for parts started after the control plane.
	ReadyzChecks []healthz.HealthChecker
	// EgressSelectorConfig, if set, is the API server's
	// EgressSelectorConfiguration (YAML): where its outgoing connections go.
	EgressSelectorConfig []byte
	// TokenAuthenticator, if set, authenticates bearer tokens before the
	// API server's own authenticators (knestd's: host-minted tenant pod
	// tokens, pkg/hosttoken). It answers "not mine" for tokens it does not
	// own, and sits behind the reserved-identity guard like the others.
	TokenAuthenticator authenticator.Token
	// ReadyTimeout bounds start-up; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Handlers are extra API server paths (see APIServer.Handlers).
	Handlers map[string]http.Handler
	// CertValidity is how long issued leaf certificates are valid; 0 is
	// pki.LeafValidity.
	CertValidity time.Duration
	// PublicServer, if set, is the URL the admin kubeconfig names instead
	// of the listener's: the address a supervisor serves the API at while
	// the API server listens on loopback behind it. knestd's own clients
	// keep the listener's.
	PublicServer string
	// WrapHandler, if set, wraps the API server's handler inside its
	// filters (see APIServer.WrapHandler).
	WrapHandler func(http.Handler) http.Handler
}

// Instance is a running control plane.
type Instance struct {
	// Server is the URL clients use.
	Server string
	// Files are the PKI files.
	Files pki.Files
	// Layout is the data directory layout.
	Layout Layout
	// AdminConfig is knestd's own cluster-admin client configuration (user
	// pki.InternalUser); the tenant's admin kubeconfig is another user.
	AdminConfig *rest.Config

	// EtcdURL is the embedded etcd's client URL, set once etcd runs.
	EtcdURL string
	// EncryptionKey is the secrets-encryption key in use.
	EncryptionKey []byte

	admin kubeconfig.Client
	// local carries LocalConfig's requests to the API server of this
	// process.
	local *inprocess.Server
	// pkiConfig is what the certificates step ensured, for renewals.
	pkiConfig pki.Config
	// renewMu serializes renewals.
	renewMu sync.Mutex
	// servingCert is the API server's serving certificate, which renewals
	// reload; nil until the API server step runs.
	servingCert atomic.Pointer[ServingCert]
	// runner is set by Start; an Instance from Steps is stopped by whoever
	// runs its steps.
	runner *lifecycle.Runner
}

// Start brings a control plane up and returns once the API server is ready
// and the controllers have created the default ServiceAccount, or with the
// reason it could not. Errors before anything runs are single lines naming the
// problem; existing files are never removed or replaced.
func Start(ctx context.Context, s Spec) (*Instance, error) {
	inst, steps := Steps(func() Spec { return s })
	r, err := lifecycle.Start(ctx, steps)
	if err != nil {
		return nil, err
	}
	inst.runner = r
	return inst, nil
}

// Steps returns the steps Start runs, for a caller that runs them among its
// own, and the Instance they fill in as they run. spec is called when the
// first of them runs, so that the caller's earlier steps can complete it.
func Steps(spec func() Spec) (*Instance, []lifecycle.Step) {
	st := &starter{spec: spec, inst: &Instance{}}
	return st.inst, []lifecycle.Step{
		lifecycle.Do("data dir", st.prepareDataDir),
		{Name: "data dir lock", Start: st.lockDataDir},
		{Name: "listener", Start: st.listen},
		lifecycle.Do("certificates", st.certificates),
		lifecycle.Do("encryption key", st.encryptionKey),
		{Name: "runtime files", Start: st.writeRuntimeFiles},
		// Components run on contexts of their own, ended by their step's
		// stop, so that the controllers go before the API server and the
		// API server before etcd.
		{Name: "etcd", Start: st.startEtcd},
		lifecycle.Do("clients", st.clients),
		{Name: "datastore monitor", Start: st.startDatastoreMonitor},
		{Name: "kube-apiserver", Start: st.startAPIServer},
		{Name: "kube-controller-manager", Start: st.startControllerManager},
	}
}

// RenewCertificates re-issues the leaf certificates that are close to
// expiry (all of them with rotate), under the same CAs and with the same
// keys, and rewrites the admin kubeconfig if its certificate changed. The
// API server's serving certificate is read again here (certfiles.go), its
// proxy client certificate by its file watcher, and knestd's own clients
// and the controller-manager's reload theirs
// (kubeconfig.Client.ReferenceFiles), so nothing restarts. It reports
// whether the admin kubeconfig changed, also with an error (one that did
// not stop the admin kubeconfig's rewrite).
func (i *Instance) RenewCertificates(now time.Time, rotate bool) (bool, error) {
	i.renewMu.Lock()
	defer i.renewMu.Unlock()
	before, err := os.ReadFile(i.Files.AdminCert)
	if err != nil {
		return false, err
	}
	c := i.pkiConfig
	c.RotateLeaves = rotate
	if _, err := pki.Ensure(c, now); err != nil {
		return false, err
	}
	// The API server watches no file for its serving certificate
	// (certfiles.go): it serves the renewed one once read here. Read at
	// every check, so a failed read is retried with the next.
	var reloadErr error
	if sc := i.servingCert.Load(); sc != nil {
		reloadErr = sc.Reload(context.Background())
	}
	after, err := os.ReadFile(i.Files.AdminCert)
	if err != nil {
		return false, errors.Join(reloadErr, err)
	}
	if string(before) == string(after) {
		return false, reloadErr
	}
	return true, errors.Join(reloadErr, i.WriteAdminKubeconfig(i.Layout.AdminKubeconfig))
}

// BeginCARotation starts a cluster CA rotation (pki.BeginCARotation) and
// rewrites the admin kubeconfig. The controller-manager (the CA bundle it
// publishes in every namespace's kube-root-ca.crt) and knestd's own clients
// read the CA files when they start: the caller restarts the control plane.
func (i *Instance) BeginCARotation(now time.Time, transition time.Duration) (*pki.CARotation, error) {
	i.renewMu.Lock()
	defer i.renewMu.Unlock()
	r, err := pki.BeginCARotation(i.pkiConfig, now, transition)
	if err != nil {
		return nil, err
	}
	return r, i.WriteAdminKubeconfig(i.Layout.AdminKubeconfig)
}

// FinishCARotation ends a CA rotation's transition (pki.FinishCARotation),
// or with ifDue only one whose end has come, and rewrites the admin
// kubeconfig; as after BeginCARotation, the caller restarts the control
// plane. It reports whether it finished one.
func (i *Instance) FinishCARotation(now time.Time, ifDue bool) (bool, error) {
	i.renewMu.Lock()
	defer i.renewMu.Unlock()
	if ifDue {
		done, err := pki.FinishCARotationIfDue(i.pkiConfig, now)
		if err != nil || !done {
			return false, err
		}
	} else if _, err := pki.FinishCARotation(i.pkiConfig, now); err != nil {
		return false, err
	}
	return true, i.WriteAdminKubeconfig(i.Layout.AdminKubeconfig)
}

// CertRenewBefore is how close to expiry RenewCertificates renews a leaf.
func (i *Instance) CertRenewBefore() time.Duration {
	_, renewBefore := i.pkiConfig.Validity()
	return renewBefore
}

// WriteAdminKubeconfig writes a self-contained cluster-admin kubeconfig.
func (i *Instance) WriteAdminKubeconfig(path string) error { return i.admin.Write(path) }

// Failed delivers the first component failure after start-up. Only for an
// Instance from Start.
func (i *Instance) Failed() <-chan error { return i.runner.Failed() }

// Stop stops the components in reverse order, each within a fixed budget.
// Only for an Instance from Start.
func (i *Instance) Stop(reason string) { i.runner.Stop(reason) }

// starter holds what one step of Steps leaves for the later ones.
type starter struct {
	spec func() Spec
	s    Spec
	inst *Instance

	listener                                    net.Listener
	listenerTaken                               atomic.Bool
	key                                         []byte
	encryptionConfig, authnConfig, egressConfig string
	etcdURL                                     string
	client                                      kubernetes.Interface
	// readyBy bounds the API server's and the controllers' start-up together.
	readyBy time.Time
}

// prepareDataDir creates the data directory and proves it is writable before
// anything is started, so the failure is one clear line.
func (st *starter) prepareDataDir(context.Context) error {
	st.s = st.spec()
	// The kubeconfigs of the components name certificate files by path, and
	// client-go reads a relative path in a kubeconfig relative to the
	// kubeconfig's directory, not the working directory: a relative data
	// dir (knestd --data-dir data, knest dev up --dir _output/dev) would
	// name files that do not exist. Every path under it is absolute.
	abs, err := filepath.Abs(st.s.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %s is not usable: %w", st.s.DataDir, err)
	}
	st.s.DataDir = abs
	st.inst.Layout = LayoutOf(st.s.DataDir)
	dir := st.s.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not usable: %w", dir, unwrapPathError(err))
	}
	probe, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, unwrapPathError(err))
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func (st *starter) lockDataDir(context.Context) (lifecycle.Running, error) {
	lock, err := dirlock.Acquire(st.inst.Layout.Lock)
	if err != nil {
		return lifecycle.Running{}, fmt.Errorf("data dir %s is in use: %w", st.s.DataDir, err)
	}
	return lifecycle.Running{Stop: lock.Release}, nil
}

func (st *starter) listen(context.Context) (lifecycle.Running, error) {
	address := net.JoinHostPort(st.s.BindAddress, strconv.Itoa(st.s.Port))
	network := "tcp"
	if ip := net.ParseIP(st.s.BindAddress); ip != nil && ip.To4() != nil {
		// Otherwise 0.0.0.0 (a pod's bind address) listens on both stacks
		// and reports "::", and knestd's own clients dial ::1, which the
		// serving certificate does not cover.
		network = "tcp4"
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return lifecycle.Running{}, fmt.Errorf("cannot listen on %s: %w", address, errors.Unwrap(err))
	}
	st.listener = l
	st.inst.Server = (&url.URL{Scheme: "https", Host: dialAddress(l.Addr().(*net.TCPAddr))}).String()
	// Once the API server took the listener over, it closes it when it
	// stops: closed under an API server still serving (one that did not
	// stop within its budget, on a loaded machine), upstream's RunServer
	// panics, and the panic hides why knestd stopped.
	return lifecycle.Running{Stop: func() {
		if !st.listenerTaken.Load() {
			l.Close()
		}
	}}, nil
}

func (st *starter) certificates(context.Context) error {
	s := st.s
	serviceIP, err := servicecidr.FirstIP(s.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("service CIDR %w", err)
	}
	sanIPs := append([]net.IP(nil), s.SANIPs...)
	if s.KubernetesServiceIP != nil {
		sanIPs = append(sanIPs, s.KubernetesServiceIP)
	}
	if !s.AdvertiseAddress.IsUnspecified() {
		sanIPs = append(sanIPs, s.AdvertiseAddress)
	}
	st.inst.pkiConfig = pki.Config{
		Dir: st.inst.Layout.PKI, ClusterName: s.Name, ServiceIP: serviceIP, ClusterDomain: s.ClusterDomain,
		ExtraSANs: s.SANs, ExtraIPs: sanIPs, LeafValidity: s.CertValidity,
	}
	st.inst.Files, err = pki.Ensure(st.inst.pkiConfig, time.Now())
	return err
}

func (st *starter) encryptionKey(context.Context) error {
	var err error
	if st.s.EncryptionKeyFile == "" {
		st.key, err = encryption.EnsureKey(st.inst.Layout.EncryptionKey)
	} else {
		st.key, err = encryption.LoadKey(st.s.EncryptionKeyFile)
	}
	st.inst.EncryptionKey = st.key
	return err
}

// writeRuntimeFiles writes the files that hold the key in clear, or only
// matter to this process, to a private runtime directory removed on stop,
// never to the data volume.
func (st *starter) writeRuntimeFiles(context.Context) (lifecycle.Running, error) {
	dir, err := os.MkdirTemp("", "knest-"+st.s.Name+"-")
	if err != nil {
		return lifecycle.Running{}, fmt.Errorf("failed to create runtime directory: %w", err)
	}
	removeDir := func() { os.RemoveAll(dir) }
	files := []struct {
		path *string
		name string
		data []byte
	}{
		{&st.encryptionConfig, "encryption-config.yaml", encryption.Config(st.key)},
		{&st.authnConfig, "authentication-config.yaml", []byte(AuthenticationConfig)},
		{&st.egressConfig, "egress-selector-config.yaml", st.s.EgressSelectorConfig},
	}
	for _, f := range files {
		if f.data == nil {
			continue
		}
		*f.path = filepath.Join(dir, f.name)
		if err := atomicfile.Write(*f.path, f.data, 0o600); err != nil {
			removeDir()
			return lifecycle.Running{}, err
		}
	}
	return lifecycle.Running{Stop: removeDir}, nil
}

func (st *starter) startEtcd(ctx context.Context) (lifecycle.Running, error) {
	logger := klog.FromContext(ctx)
	etcdCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := etcd.Run(etcdCtx, etcd.Options{Dir: st.inst.Layout.Etcd, Name: st.s.Name, QuotaBackendBytes: st.s.EtcdQuotaBytes, LogFormat: st.s.EtcdLogFormat})
	if err != nil {
		stop()
		return lifecycle.Running{}, err
	}
	st.etcdURL = srv.ClientURL()
	st.inst.EtcdURL = st.etcdURL
	// The API server's storage reaches this etcd in-process; everyone
	// else through its URL.
	stopInProcess := serveInProcess(st.etcdURL, srv.NewInProcessClient)
	failed := make(chan error, 1)
	go func() {
		if err, ok := <-srv.Err(); ok && err != nil {
			failed <- fmt.Errorf("etcd failed: %w", err)
		}
	}()
	return lifecycle.Running{Failed: failed, Stop: func() {
		stopInProcess()
		stop()
		select {
		case <-srv.Stopped():
		case <-time.After(componentStopBudget):
			logger.Info("etcd did not stop in time")
		}
	}}, nil
}

// clients writes the controller-manager's kubeconfig and builds knestd's
// own client, which uses the internal identity, never the tenant's admin
// (admission tells them apart).
func (st *starter) clients(context.Context) error {
	s, files, server := st.s, st.inst.Files, st.inst.Server
	// Clients trust the CA bundle: both cluster CAs during a CA rotation's
	// transition.
	public := server
	if s.PublicServer != "" {
		public = s.PublicServer
	}
	st.inst.admin = kubeconfig.Client{Name: s.Name, Server: public, CAFile: files.CABundle, CertFile: files.AdminCert, KeyFile: files.AdminKey}
	// knestd's own clients name their certificate files, so that renewed
	// certificates take effect without a restart (RenewCertificates).
	// They reach the API server of this process: uncompressed.
	cm := kubeconfig.Client{Name: s.Name, Server: server, CAFile: files.CABundle, CertFile: files.ControllerManagerCert, KeyFile: files.ControllerManagerKey, ReferenceFiles: true, Uncompressed: true}
	if err := cm.Write(st.inst.Layout.ControllerManagerKubeconfig); err != nil {
		return err
	}
	internal := kubeconfig.Client{Name: s.Name, Server: server, CAFile: files.CABundle, CertFile: files.InternalCert, KeyFile: files.InternalKey, ReferenceFiles: true, Uncompressed: true}
	adminCfg, err := internal.Build()
	if err != nil {
		return err
	}
	if st.inst.AdminConfig, err = clientcmd.NewDefaultClientConfig(*adminCfg, nil).ClientConfig(); err != nil {
		return err
	}
	st.inst.local = inprocess.New(&user.DefaultInfo{Name: pki.InternalUser, Groups: []string{user.SystemPrivilegedGroup}})
	st.client, err = kubernetes.NewForConfig(st.inst.AdminConfig)
	return err
}

// LocalConfig is AdminConfig's identity without the network: its requests
// call the API server's handler in this process (pkg/controlplane/inprocess)
// and fail while the API server does not run. It carries no TLS settings,
// so it cannot open a connection upgrade (exec, attach, port-forward);
// AdminConfig can.
func (i *Instance) LocalConfig() *rest.Config {
	return &rest.Config{Host: i.Server, Transport: i.local}
}

// startDatastoreMonitor measures the datastore before the API server
// serves, so that a restart in read-only mode is in the mode from its first
// request.
func (st *starter) startDatastoreMonitor(ctx context.Context) (lifecycle.Running, error) {
	if st.s.Datastore == nil {
		return lifecycle.Running{}, nil
	}
	etcdClient, err := clientv3.New(clientv3.Config{
		Endpoints: []string{st.etcdURL}, DialTimeout: 10 * time.Second,
		// etcd's zap logger at its default level logs every retry.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return lifecycle.Running{}, fmt.Errorf("failed to connect to etcd: %w", err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m := &datastore.Monitor{Guard: st.s.Datastore, Etcd: etcdClient, Endpoint: st.etcdURL, Tenant: st.client}
	if err := m.Start(runCtx); err != nil {
		stop()
		etcdClient.Close()
		return lifecycle.Running{}, err
	}
	return lifecycle.Running{Stop: func() { stop(); etcdClient.Close() }}, nil
}

func (st *starter) startAPIServer(ctx context.Context) (lifecycle.Running, error) {
	s := st.s
	timeout := s.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	st.readyBy = time.Now().Add(timeout)
	serving, err := NewServingCert(st.inst.Files.ServingCert, st.inst.Files.ServingKey)
	if err != nil {
		return lifecycle.Running{}, err
	}
	st.inst.servingCert.Store(serving)
	st.listenerTaken.Store(true)
	api := startComponent(ctx, "kube-apiserver", func(ctx context.Context) error {
		return RunAPIServer(ctx, APIServer{
			Listener: st.listener, AdvertiseAddress: s.AdvertiseAddress, ServiceCIDR: s.ServiceCIDR,
			ClusterDomain: s.ClusterDomain, EtcdURL: st.etcdURL, PKI: st.inst.Files,
			EncryptionConfigFile: st.encryptionConfig, AuthenticationConfigFile: st.authnConfig,
			AdmissionPlugins: s.AdmissionPlugins, ExtraFlags: s.APIServerFlags, KubernetesServiceIP: s.KubernetesServiceIP,
			EgressSelectorConfigFile: st.egressConfig, Handlers: s.Handlers, TokenAuthenticator: s.TokenAuthenticator, ReadyzChecks: s.ReadyzChecks,
			WrapHandler: s.WrapHandler, InProcess: st.inst.local, ServingCert: serving,
		})
	})
	readyCtx, cancel := context.WithDeadline(ctx, st.readyBy)
	defer cancel()
	if err := waitFor(readyCtx, api, func(ctx context.Context) bool {
		req := st.client.Discovery().RESTClient().Get().AbsPath("/readyz")
		for _, c := range s.ReadyzChecks {
			req = req.Param("exclude", c.Name())
		}
		body, err := req.DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}); err != nil {
		api.stop()
		return lifecycle.Running{}, fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	return api.running(), nil
}

func (st *starter) startControllerManager(ctx context.Context) (lifecycle.Running, error) {
	kcm := startComponent(ctx, "kube-controller-manager", func(ctx context.Context) error {
		return RunControllerManager(ctx, ControllerManager{
			Kubeconfig: st.inst.Layout.ControllerManagerKubeconfig, ServiceCIDR: st.s.ServiceCIDR, PKI: st.inst.Files,
			Controllers: st.s.Controllers, ExtraFlags: st.s.ControllerManagerFlags,
		})
	})
	readyCtx, cancel := context.WithDeadline(ctx, st.readyBy)
	defer cancel()
	if err := waitForControllers(readyCtx, st.client, kcm); err != nil {
		kcm.stop()
		return lifecycle.Running{}, fmt.Errorf("kube-controller-manager did not start its controllers: %w", err)
	}
	return kcm.running(), nil
}

// component is an upstream component run in a goroutine on a context of its
// own, ended by stop.
type component struct {
	name   string
	logger klog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	// err is what the component's run returned, once done is closed.
	err error
}

func startComponent(ctx context.Context, name string, run func(context.Context) error) *component {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &component{name: name, logger: klog.FromContext(ctx), cancel: cancel, done: make(chan struct{})}
	go func() {
		c.err = run(runCtx)
		close(c.done)
	}()
	return c
}

// exitErr is why the component exited, once done is closed.
func (c *component) exitErr() error {
	if c.err == nil {
		return errors.New("exited")
	}
	return c.err
}

// running reports the component's exit as a failure (the runner ignores
// the exit stop causes).
func (c *component) running() lifecycle.Running {
	failed := make(chan error, 1)
	go func() {
		<-c.done
		failed <- fmt.Errorf("%s stopped: %w", c.name, c.exitErr())
	}()
	return lifecycle.Running{Stop: c.stop, Failed: failed}
}

// stop ends the component and waits for it within a fixed budget.
func (c *component) stop() {
	c.cancel()
	select {
	case <-c.done:
		if c.err != nil && !errors.Is(c.err, context.Canceled) {
			c.logger.Error(c.err, "Component stopped with an error", "component", c.name)
		}
	case <-time.After(componentStopBudget):
		c.logger.Info("Component did not stop in time", "component", c.name)
	}
}

// waitForControllers proves the controllers run: it creates a probe
// namespace and waits for the service-account controller to give it its
// default ServiceAccount. Objects that already exist prove nothing after a
// restart, so the probe is new every time; it is deleted afterwards (the
// namespace controller finishes that in the background).
func waitForControllers(ctx context.Context, client kubernetes.Interface, kcm *component) error {
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: ProbeNamespacePrefix, Labels: map[string]string{"knest.io/probe": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to create the readiness probe namespace: %w", err)
	}
	err = waitFor(ctx, kcm, func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	if delErr := client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); delErr != nil && err == nil {
		return fmt.Errorf("failed to delete the readiness probe namespace: %w", delErr)
	}
	return err
}

// waitFor polls cond until it holds, the component exits, or ctx ends.
func waitFor(ctx context.Context, c *component, cond func(context.Context) bool) error {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if cond(ctx) {
			return nil
		}
		select {
		case <-c.done:
			return c.exitErr()
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dialAddress turns a listener address into one clients can dial: an
// unspecified address becomes loopback.
func dialAddress(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip.IsUnspecified() {
		if ip.To4() != nil {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
}
