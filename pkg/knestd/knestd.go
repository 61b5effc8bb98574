package knestd

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/admission/confinement"
	"github.com/knest-dev/knest/pkg/admission/hostservices"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/egress"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/lifecycle"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer"
)

// ReadyMessage is logged once the control plane is ready; tools wait for it.
const ReadyMessage = "Tenant control plane is ready"

// Run runs the control plane until ctx ends, then shuts it down. It returns
// an error if the control plane cannot start or fails.
func Run(ctx context.Context, o options.Options) error {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return err
	}
	pol, err := o.Policy()
	if err != nil {
		return err
	}
	d := &daemon{o: o, pol: pol, start: start}
	d.readiness.dnsName = "kubernetes.default.svc." + o.ClusterDomain
	r, err := lifecycle.Start(ctx, d.steps())
	if err != nil {
		return err
	}
	return r.Wait(ctx)
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
	kubeletPort  int32
	readiness    readiness
}

// steps is knestd's start-up, in order; shutdown is the reverse.
func (d *daemon) steps() []lifecycle.Step {
	// Confinement is on in every configuration, syncing or not.
	d.plugins = []controlplane.AdmissionPlugin{{Name: confinement.PluginName, Factory: confinement.NewFactory(d.pol)}}
	var steps []lifecycle.Step
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
	steps = append(steps, lifecycle.Do("ready", d.ready))
	if d.o.Syncing() {
		// The kubelet API and DNS serve the pods the syncer runs.
		steps = append(steps, lifecycle.Step{Name: "kubelet API", Start: d.startKubeletAPI})
		if d.o.DNSAddress != "" {
			steps = append(steps, lifecycle.Step{Name: "DNS", Start: d.startDNS})
		}
		steps = append(steps, lifecycle.Step{Name: "syncer", Start: d.startSyncer})
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
	d.plugins = append(d.plugins, controlplane.AdmissionPlugin{
		Name: hostservices.PluginName, Factory: hostservices.NewFactory(d.hostClient, d.o.Name, d.o.HostNamespace),
	})
	return lifecycle.Running{Stop: cleanup}, nil
}

// checkHost refuses to start a tenant the host cannot serve.
func (d *daemon) checkHost(ctx context.Context) error {
	if err := syncer.CheckHostRunsPods(ctx, d.hostClient, d.o.HostNamespace, d.pol); err != nil {
		return err
	}
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
	return controlplane.Spec{
		AdmissionPlugins: d.plugins, KubernetesServiceIP: net.ParseIP(o.KubernetesServiceIP),
		Name: o.Name, DataDir: o.DataDir, BindAddress: o.BindAddress, Port: o.SecurePort,
		AdvertiseAddress: o.Advertise(), ServiceCIDR: o.ServiceCIDR,
		ClusterDomain: o.ClusterDomain, SANs: sans, SANIPs: sanIPs,
		EncryptionKeyFile: o.EncryptionKeyFile, EtcdQuotaBytes: o.EtcdQuotaBytes, EtcdLogFormat: o.EtcdLogFormat(),
		EgressSelectorConfig: d.egressConfig,
		ReadyzChecks:         d.readiness.checks(o.Syncing(), o.DNSAddress != ""),
	}
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
	addr, err := startDNS(runCtx, d.o, tenantConfig(d.inst.AdminConfig), failed)
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
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s, err := syncer.New(runCtx, syncer.Config{
		Tenant: o.Name, HostNamespace: o.HostNamespace,
		TenantConfig: tenantConfig(d.inst.AdminConfig), HostConfig: d.hostConfig,
		MetricsBindAddress: o.SyncerMetricsAddress, PprofBindAddress: o.ProfilingAddress, Policy: d.pol,
		NodeAddress: o.Advertise().String(), NodeAliasKey: aliasKey, Version: version.Get().GitVersion,
		KubeletPort: d.kubeletPort, DNSServiceIP: o.DNSServiceIP, ClusterDomain: o.ClusterDomain,
		HostNodeInfo: o.HostNodeInfo, PoolNodes: o.PoolNodes,
	})
	if err != nil {
		stop()
		return lifecycle.Running{}, err
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

// tenantConfig is the syncer's tenant client config: its own API server,
// in-process, so not throttled like a remote one.
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

// IdleGCPercent is the GOGC knestd switches to once it is ready, unless the
// operator set GOGC. Start-up allocates heavily (API definitions, OpenAPI
// specs) and runs faster with Go's default of 100; afterwards a tenant
// control plane is mostly idle, and a tighter heap goal keeps its resident
// memory ~25 MiB lower at the cost of a little CPU per request
// (hack/bench/startup measures both).
const IdleGCPercent = 50

func tuneMemoryForIdle() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(IdleGCPercent)
	}
	// Hand the start-up peak back to the OS now instead of over minutes.
	debug.FreeOSMemory()
}
