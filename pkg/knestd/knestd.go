package knestd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/admission/confinement"
	"github.com/knest-dev/knest/pkg/admission/hostservices"
	"github.com/knest-dev/knest/pkg/admission/storagelimits"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/datastore"
	"github.com/knest-dev/knest/pkg/egress"
	"github.com/knest-dev/knest/pkg/etcd"
	"github.com/knest-dev/knest/pkg/hosttoken"
	"github.com/knest-dev/knest/pkg/idle"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/lifecycle"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/snapshot"
	"github.com/knest-dev/knest/pkg/syncer"
	"github.com/knest-dev/knest/pkg/syncer/podsync"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
)

// ReadyMessage is logged once the control plane is ready; tools wait for it.
const ReadyMessage = "Tenant control plane is ready"

// Run runs the control plane until ctx ends, then shuts it down. It returns
// an error if the control plane cannot start or fails.
func Run(ctx context.Context, o options.Options) error {
	start := time.Now()
	tuneMemoryForStart()
	if err := o.Validate(); err != nil {
		return err
	}
	pol, err := o.Policy()
	if err != nil {
		return err
	}
	o, dropSnapshotKey, err := resolveSnapshotKey(ctx, o)
	if err != nil {
		return err
	}
	defer dropSnapshotKey()
	restored, err := prepareData(ctx, o)
	if err != nil {
		return err
	}
	key, err := snapshot.EnsureKey(o.SnapshotKeyPath())
	if err != nil {
		return err
	}
	// A sleep ends the run like a signal, with its own cause.
	ctx, sleep := context.WithCancelCause(ctx)
	defer sleep(nil)
	d := &daemon{o: o, pol: pol, start: start, restored: restored, asleep: func() { sleep(ErrAsleep) }}
	d.snaps = &snapshots{o: o, key: key, restart: make(chan error, 1)}
	d.certs = &certs{o: o, restart: make(chan error, 1)}
	d.readiness.dnsName = "kubernetes.default.svc." + o.ClusterDomain
	d.sleep = newSleeper(o.SleepAfter, o.SupervisorPort != 0)
	if idle.Governed() {
		d.procs = idle.NewProcs()
	}
	steps := d.steps()
	// Served on the tenant API server's /metrics.
	if err := d.datastore.Metrics().Register(); err != nil {
		return fmt.Errorf("failed to register the datastore metrics: %w", err)
	}
	r, err := lifecycle.Start(ctx, steps)
	if err != nil {
		return err
	}
	err = r.Wait(ctx)
	if err == nil && errors.Is(context.Cause(ctx), ErrAsleep) {
		return ErrAsleep
	}
	if errors.Is(err, errRestart) || errors.Is(err, errRestartCA) {
		klog.FromContext(ctx).Info("Re-executing knestd", "reason", err.Error())
		dropSnapshotKey()
		return reexec()
	}
	return err
}

// prepareData stages a --restore-from snapshot and applies a staged
// restore, under the data dir's lock, before anything reads the data.
// It reports whether this start restored data.
func prepareData(ctx context.Context, o options.Options) (bool, error) {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return false, fmt.Errorf("data dir %s is not usable: %w", o.DataDir, err)
	}
	lock, err := dirlock.Acquire(controlplane.LayoutOf(o.DataDir).Lock)
	if err != nil {
		return false, fmt.Errorf("data dir %s is in use: %w", o.DataDir, err)
	}
	defer lock.Release()
	if o.RestoreFrom != "" {
		if err := restoreFrom(ctx, o); err != nil {
			return false, err
		}
	}
	return applyPendingRestore(ctx, o)
}

// daemon holds what one of knestd's steps leaves for the later ones.
type daemon struct {
	// o is completed by the host step (resolveFromHost).
	o     options.Options
	pol   *policy.Policy
	start time.Time

	hostConfig   *rest.Config
	hostClient   kubernetes.Interface
	plugins      []controlplane.AdmissionPlugin
	egressRules  *egress.Rules
	egressConfig []byte
	inst         *controlplane.Instance
	datastore    *datastore.Guard
	kubeletPort  int32
	snaps        *snapshots
	certs        *certs
	// restored says this start applied a restore.
	restored bool
	// hostTokens authenticates host-minted tenant pod tokens (nil when not
	// syncing).
	hostTokens *hosttoken.Authenticator
	// hostPool is what the host checks learned of the tenant's host node
	// pool (nil if they could not), for the syncer.
	hostPool  *podsync.Pool
	readiness readiness
	sleep     *sleeper
	// procs governs GOMAXPROCS while idle; nil when not (idle.Governed).
	procs *idle.Procs
	// asleep stops knestd to sleep.
	asleep func()
}

// steps is knestd's start-up, in order; shutdown is the reverse.
func (d *daemon) steps() []lifecycle.Step {
	// Confinement is on in every configuration, syncing or not.
	d.plugins = []controlplane.AdmissionPlugin{{Name: confinement.PluginName, Factory: confinement.NewFactory(d.pol)}}
	// So are the datastore limits.
	quota := d.o.EtcdQuotaBytes
	if quota == 0 {
		quota = etcd.DefaultQuotaBackendBytes
	}
	d.datastore = datastore.NewGuard(datastore.Limits{QuotaBytes: quota, ObjectCounts: d.pol.Datastore.ObjectCounts})
	d.plugins = append(d.plugins, controlplane.AdmissionPlugin{Name: storagelimits.PluginName, Factory: storagelimits.NewFactory(d.datastore, d.o.Frozen)})
	var steps []lifecycle.Step
	if d.o.ProfilingAddress != "" {
		steps = append(steps, lifecycle.Step{Name: "profiling", Start: d.startProfiling})
	}
	if d.o.Syncing() {
		steps = append(steps,
			lifecycle.Step{Name: "host cluster", Start: d.connectHost},
			lifecycle.Do("host checks", d.checkHost),
		)
	}
	// The API server's connections go through knestd's egress socket,
	// which must serve before the API server starts; it stops last.
	steps = append(steps, lifecycle.Step{Name: "egress", Start: d.startEgress})
	inst, controlPlane := controlplane.Steps(d.controlPlaneSpec)
	d.inst = inst
	d.certs.inst = inst
	steps = append(steps, controlPlane...)
	steps = append(steps,
		lifecycle.Do("admin kubeconfig", func(context.Context) error {
			return d.inst.WriteAdminKubeconfig(d.inst.Layout.AdminKubeconfig)
		}),
	)
	if d.o.KubeconfigSecret != "" {
		steps = append(steps, lifecycle.Do("kubeconfig secret", func(ctx context.Context) error {
			return publishKubeconfig(ctx, d.o, d.inst, d.hostClient)
		}))
	}
	if d.restored {
		steps = append(steps, lifecycle.Do("restored pods", func(ctx context.Context) error {
			client := kubernetes.NewForConfigOrDie(tenantConfig(d.inst.LocalConfig()))
			if source := cloneSource(d.o.DataDir); source != "" {
				if err := reallocateClonedServices(ctx, client, source); err != nil {
					return err
				}
			}
			return recheckRestoredPods(ctx, client, d.pol)
		}))
	}
	steps = append(steps, lifecycle.Do("ready", d.ready),
		lifecycle.Step{Name: "idle GOMAXPROCS", Start: d.governProcs},
		lifecycle.Step{Name: "snapshots", Start: d.serveSnapshots},
		lifecycle.Do("data a restore replaced", func(ctx context.Context) error { return removeReplacedData(ctx, d.o.DataDir) }),
		lifecycle.Step{Name: "certificate renewal", Start: d.startCertRenewal},
	)
	if d.o.Syncing() {
		// The kubelet API and DNS serve the pods the syncer runs.
		steps = append(steps, lifecycle.Step{Name: "kubelet API", Start: d.startKubeletAPI})
		if d.o.DNSAddress != "" {
			steps = append(steps, lifecycle.Step{Name: "DNS", Start: d.startDNS})
		}
		steps = append(steps, lifecycle.Step{Name: "syncer", Start: d.startSyncer})
	}
	if d.sleep.supervised {
		// Last: a sleep stops the host pods while the syncer runs, then
		// everything.
		var stopPods func(context.Context) error
		if d.o.Syncing() {
			stopPods = func(ctx context.Context) error { return d.readiness.syncer.Load().Sleep(ctx) }
		}
		steps = append(steps, lifecycle.Step{Name: "sleep", Start: d.sleep.start(stopPods, d.asleep)})
	}
	return steps
}

// connectHost builds the host clients and completes the options with what
// the host namespace holds; stopping removes the key file it may write.
func (d *daemon) connectHost(ctx context.Context) (lifecycle.Running, error) {
	var err error
	if d.hostConfig, err = hostRESTConfig(d.o); err != nil {
		return lifecycle.Running{}, err
	}
	if d.hostClient, err = kubernetes.NewForConfig(d.hostConfig); err != nil {
		return lifecycle.Running{}, err
	}
	cleanup, err := resolveFromHost(ctx, &d.o, d.hostClient)
	if err != nil {
		cleanup()
		return lifecycle.Running{}, err
	}
	d.hostTokens = hosttoken.New(hosttoken.Config{
		Keys:   &hosttoken.KeySet{Host: d.hostClient.Discovery().RESTClient()},
		Tenant: d.o.Name, HostNamespace: d.o.HostNamespace, ServiceAccount: pods.HostServiceAccount,
	})
	d.plugins = append(d.plugins, controlplane.AdmissionPlugin{
		Name: hostservices.PluginName, Factory: hostservices.NewFactory(d.hostClient, d.o.Name, d.o.HostNamespace),
	})
	return lifecycle.Running{Stop: cleanup}, nil
}

// checkHost refuses to start a tenant the host cannot serve.
func (d *daemon) checkHost(ctx context.Context) error {
	pool, err := syncer.CheckHostRunsPods(ctx, d.hostClient, d.o.HostNamespace, d.pol)
	if err != nil {
		return err
	}
	d.hostPool = pool
	if d.o.HostNodeInfo || d.o.PoolNodes {
		return checkHostNodeAccess(ctx, d.hostClient, d.o)
	}
	return nil
}

func (d *daemon) startEgress(ctx context.Context) (lifecycle.Running, error) {
	failed := make(chan error, 1)
	rules, config, stop, err := startEgress(ctx, d.o, d.pol, failed)
	if err != nil {
		return lifecycle.Running{}, err
	}
	d.egressRules, d.egressConfig = rules, config
	return lifecycle.Running{Stop: stop, Failed: failed}, nil
}

// controlPlaneSpec is read when the control plane's first step runs, after
// the host and egress steps completed what it needs.
func (d *daemon) controlPlaneSpec() controlplane.Spec {
	o := d.o
	sans, sanIPs := o.SANs()
	var tokens authenticator.Token
	if d.hostTokens != nil {
		tokens = d.hostTokens
	}
	bind, public := o.BindAddress, ""
	if o.SupervisorPort != 0 {
		// knest-supervisor owns the tenant's address and proxies to the
		// API server on loopback.
		bind, public = "127.0.0.1", publicServer(o.Advertise(), o.SupervisorPort)
	}
	return controlplane.Spec{
		PublicServer: public, WrapHandler: d.wrapHandler(),
		TokenAuthenticator: tokens,
		AdmissionPlugins:   d.plugins, KubernetesServiceIP: net.ParseIP(o.KubernetesServiceIP),
		Name: o.Name, DataDir: o.DataDir, BindAddress: bind, Port: o.SecurePort,
		AdvertiseAddress: o.Advertise(), ServiceCIDR: o.ServiceCIDR,
		ClusterDomain: o.ClusterDomain, SANs: sans, SANIPs: sanIPs,
		EncryptionKeyFile: o.EncryptionKeyFile, EtcdQuotaBytes: d.datastore.Limits().BackendQuotaBytes(), EtcdLogFormat: o.EtcdLogFormat(),
		EgressSelectorConfig: d.egressConfig, Handlers: d.handlers(), CertValidity: o.CertValidity,
		ReadyzChecks: d.readiness.checks(o.Syncing(), o.DNSAddress != ""), Datastore: d.datastore,
	}
}

// wrapHandler is the API server's inner handler's wrapper: the sleeper's
// request count (when knestd can sleep) and the idle GOMAXPROCS.
func (d *daemon) wrapHandler() func(http.Handler) http.Handler {
	sleep := d.sleep.wrap()
	if d.procs == nil {
		return sleep
	}
	return func(h http.Handler) http.Handler {
		if sleep != nil {
			h = sleep(h)
		}
		return d.procs.Handler(h)
	}
}

// governProcs lowers GOMAXPROCS to 1 while the tenant is quiet (pkg/idle
// Procs), from when the control plane is ready, unless the operator set
// GOMAXPROCS.
func (d *daemon) governProcs(ctx context.Context) (lifecycle.Running, error) {
	if d.procs == nil {
		return lifecycle.Running{}, nil
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.procs.Run(runCtx)
	}()
	return lifecycle.Running{Stop: func() { stop(); <-done }}, nil
}

func (d *daemon) handlers() map[string]http.Handler {
	h := d.snaps.handlers()
	h[CertsPath] = http.HandlerFunc(d.certs.serve)
	h[SleepPath] = http.HandlerFunc(d.sleep.serve)
	return h
}

func (d *daemon) startCertRenewal(ctx context.Context) (lifecycle.Running, error) {
	d.certs.mu.Lock()
	d.certs.o, d.certs.host = d.o, d.hostClient
	d.certs.mu.Unlock()
	return d.certs.startRenewal(ctx)
}

// serveSnapshots opens the snapshot endpoint; a restore in place ends in
// its Failed channel, which stops knestd for Run to re-execute it.
func (d *daemon) serveSnapshots(context.Context) (lifecycle.Running, error) {
	d.snaps.mu.Lock()
	d.snaps.inst, d.snaps.serving = d.inst, true
	d.snaps.host = d.hostClient
	d.snaps.mu.Unlock()
	return lifecycle.Running{Failed: d.snaps.restart}, nil
}

func (d *daemon) ready(ctx context.Context) error {
	tuneMemoryForIdle()
	klog.FromContext(ctx).Info(ReadyMessage, "name", d.o.Name, "server", d.inst.Server,
		"kubeconfig", d.inst.Layout.AdminKubeconfig, "elapsed", time.Since(d.start).Round(time.Millisecond).String())
	return nil
}

func (d *daemon) startKubeletAPI(ctx context.Context) (lifecycle.Running, error) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	failed := make(chan error, 1)
	port, err := startKubelet(runCtx, d.o, d.inst, d.hostConfig, failed)
	if err != nil {
		stop()
		return lifecycle.Running{}, err
	}
	d.kubeletPort = port
	allowKubelet(d.egressRules, d.o, port)
	return lifecycle.Running{Stop: stop, Failed: failed}, nil
}

func (d *daemon) startDNS(ctx context.Context) (lifecycle.Running, error) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	// startDNS's goroutines report at most three failures; none may block.
	failed := make(chan error, 3)
	addr, err := startDNS(runCtx, d.o, tenantConfig(d.inst.LocalConfig()), failed)
	if err != nil {
		stop()
		return lifecycle.Running{}, err
	}
	d.readiness.dnsAddr.Store(&addr)
	return lifecycle.Running{Stop: stop, Failed: failed}, nil
}

func (d *daemon) startSyncer(ctx context.Context) (lifecycle.Running, error) {
	o := d.o
	aliasKey, err := nodeAliasKey(pki.FilesIn(d.inst.Layout.PKI).ServiceAccountKey)
	if err != nil {
		return lifecycle.Running{}, err
	}
	audience, err := d.hostTokenAudience(ctx)
	if err != nil {
		return lifecycle.Running{}, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s, err := syncer.New(runCtx, syncer.Config{
		TokenAudience: audience,
		Tenant:        o.Name, HostNamespace: o.HostNamespace,
		TenantConfig: tenantConfig(d.inst.LocalConfig()), TenantCAFile: d.inst.Files.CABundle, HostConfig: d.hostConfig,
		MetricsBindAddress: o.SyncerMetricsAddress, Policy: d.pol,
		NodeAddress: o.Advertise().String(), NodeAliasKey: aliasKey, Version: version.Get().GitVersion,
		KubeletPort: d.kubeletPort, DNSServiceIP: o.DNSServiceIP, ClusterDomain: o.ClusterDomain,
		HostNodeInfo: o.HostNodeInfo, PoolNodes: o.PoolNodes, HostPool: d.hostPool, Frozen: o.Frozen,
	})
	if err != nil {
		stop()
		return lifecycle.Running{}, err
	}
	if audience != "" {
		d.hostTokens.Serve(audience, s)
	}
	done := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		err := s.Start(runCtx)
		close(done)
		if err == nil {
			err = errors.New("exited")
		}
		failed <- fmt.Errorf("syncer stopped: %w", err)
	}()
	go allowTenantAddresses(runCtx, d.egressRules, s)
	d.readiness.syncer.Store(s)
	klog.FromContext(ctx).Info("Syncing into the host cluster", "hostNamespace", o.HostNamespace)
	return lifecycle.Running{Stop: func() { stop(); <-done }, Failed: failed}, nil
}

// hostTokenAudience is the audience of the tokens the host kubelet mints
// for this tenant's pods (pkg/hosttoken), derived from the tenant's
// service-account signing key: unique to the tenant and lasting as long.
// It is "" (every pod token through a host Secret, as before) when
// --host-minted-tokens is off, or when the host
// publishes no service-account issuer discovery knestd can read: the
// reason is logged for the operator.
func (d *daemon) hostTokenAudience(ctx context.Context) (string, error) {
	if !d.o.HostMintedTokens {
		return "", nil
	}
	if _, err := d.hostTokens.Issuer(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Host-minted pod tokens are off: each tenant pod's token goes through a host Secret")
		return "", nil
	}
	data, err := os.ReadFile(pki.FilesIn(d.inst.Layout.PKI).ServiceAccountKey)
	if err != nil {
		return "", fmt.Errorf("failed to read the service-account key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("knest host token audience\x00"), data...))
	return hosttoken.Audience(hex.EncodeToString(sum[:16])), nil
}

// tenantConfig is the tenant client config of knestd's own parts (syncer,
// DNS, kubelet): the API server of this process, called in-process
// (Instance.LocalConfig), so not throttled like a remote one.
func tenantConfig(admin *rest.Config) *rest.Config {
	c := rest.CopyConfig(admin)
	c.QPS, c.Burst = 1000, 2000
	return c
}

// nodeAliasKey derives the key of virtual Node names from the tenant's
// service-account signing key: secret, and as lasting as the tenant.
func nodeAliasKey(saKeyFile string) ([]byte, error) {
	data, err := os.ReadFile(saKeyFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the service-account key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("knest virtual node alias\x00"), data...))
	return sum[:], nil
}

// StartGCPercent is knestd's GOGC from the start until it is ready, and
// IdleGCPercent from then on, unless the operator set GOGC.
//
// Start-up allocates heavily (API definitions, OpenAPI specs, the watch
// caches) and most of it is garbage soon; what stays is interleaved with it.
// Go does not move objects, so the holes the garbage leaves in the spans
// of what stays are resident for the process's life: with Go's default of
// 100, ~33 MB of an idle knestd's heap spans were free slots. Collecting
// more often during the start leaves fewer holes (anonymous RSS ~146 ->
// ~130 MiB) for ~0.85-1.1 s more CPU per start (hack/bench/startup, README).
// Once ready a tenant control plane is mostly idle: 25 would cost idle CPU
// (collections at a smaller heap growth), 50 keeps the heap close to what
// stays without it.
const (
	StartGCPercent = 25
	IdleGCPercent  = 50
)

func tuneMemoryForStart() { setGCPercent(StartGCPercent) }

func tuneMemoryForIdle() {
	setGCPercent(IdleGCPercent)
	// Hand the start-up peak back to the OS now instead of over minutes.
	debug.FreeOSMemory()
}

// setGCPercent sets GOGC to percent unless the operator set GOGC.
func setGCPercent(percent int) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(percent)
	}
}
