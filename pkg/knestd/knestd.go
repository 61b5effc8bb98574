package knestd

import (
	"context"
	"crypto/sha256"
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
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/syncer"
)

// ReadyMessage is logged once the control plane is ready; tools wait for it.
const ReadyMessage = "Tenant control plane is ready"

// Run runs the control plane until ctx ends, then shuts it down. It returns
// an error if the control plane cannot start or fails.
func Run(ctx context.Context, o options.Options) error {
	start := time.Now()
	logger := klog.FromContext(ctx)
	if err := o.Validate(); err != nil {
		return err
	}
	pol, err := o.Policy()
	if err != nil {
		return err
	}
	var hostConfig *rest.Config
	var hostClient kubernetes.Interface
	// Confinement is on in every configuration, syncing or not.
	plugins := []controlplane.AdmissionPlugin{{Name: confinement.PluginName, Factory: confinement.NewFactory(pol)}}
	if o.Syncing() {
		var err error
		if hostConfig, err = hostRESTConfig(o); err != nil {
			return err
		}
		if hostClient, err = kubernetes.NewForConfig(hostConfig); err != nil {
			return err
		}
		cleanup, err := resolveFromHost(ctx, &o, hostClient)
		defer cleanup()
		if err != nil {
			return err
		}
		plugins = append(plugins, controlplane.AdmissionPlugin{
			Name: hostservices.PluginName, Factory: hostservices.NewFactory(hostClient, o.Name, o.HostNamespace),
		})
		if err := syncer.CheckHostRunsPods(ctx, hostClient, o.HostNamespace, pol); err != nil {
			return err
		}
		if err := checkHostNodeAccess(ctx, hostClient, o); err != nil {
			return err
		}
	}
	// The API server's connections go through knestd's egress socket,
	// which must serve before the API server starts; it stops last.
	egressFailed := make(chan error, 1)
	egressRules, egressConfig, stopEgress, err := startEgress(ctx, o, pol, egressFailed)
	if err != nil {
		return err
	}
	defer stopEgress()
	sans, sanIPs := o.SANs()
	inst, err := controlplane.Start(ctx, controlplane.Spec{
		AdmissionPlugins: plugins, KubernetesServiceIP: net.ParseIP(o.KubernetesServiceIP),
		Name: o.Name, DataDir: o.DataDir, BindAddress: o.BindAddress, Port: o.SecurePort,
		AdvertiseAddress: o.Advertise(), ServiceCIDR: o.ServiceCIDR,
		ClusterDomain: o.ClusterDomain, SANs: sans, SANIPs: sanIPs,
		EncryptionKeyFile: o.EncryptionKeyFile, EtcdQuotaBytes: o.EtcdQuotaBytes,
		EgressSelectorConfig: egressConfig,
	})
	if err != nil {
		return err
	}
	if err := inst.WriteAdminKubeconfig(inst.Layout.AdminKubeconfig); err != nil {
		inst.Stop("start failed")
		return err
	}
	if err := publishKubeconfig(ctx, o, inst, hostClient); err != nil {
		inst.Stop("start failed")
		return err
	}
	tuneMemoryForIdle()
	logger.Info(ReadyMessage, "name", o.Name, "server", inst.Server,
		"kubeconfig", inst.Layout.AdminKubeconfig, "elapsed", time.Since(start).Round(time.Millisecond).String())

	syncCtx, stopSync := context.WithCancel(ctx)
	defer stopSync()
	// syncDone and servedFailed stay nil (never ready) when no syncer runs.
	var syncDone, servedFailed chan error
	if o.Syncing() {
		syncDone = make(chan error, 1)
		aliasKey, err := nodeAliasKey(pki.FilesIn(inst.Layout.PKI).ServiceAccountKey)
		if err != nil {
			inst.Stop("syncer failed")
			return err
		}
		// The kubelet API and DNS serve the pods the syncer runs.
		servedFailed = make(chan error, 4)
		kubeletPort, err := startKubelet(syncCtx, o, inst, hostConfig, servedFailed)
		if err != nil {
			inst.Stop("kubelet API failed")
			return err
		}
		allowKubelet(egressRules, o, kubeletPort)
		if err := startDNS(syncCtx, o, tenantConfig(inst.AdminConfig), servedFailed); err != nil {
			inst.Stop("DNS failed")
			return err
		}
		s, err := syncer.New(syncCtx, syncer.Config{
			Tenant: o.Name, HostNamespace: o.HostNamespace,
			TenantConfig: tenantConfig(inst.AdminConfig), HostConfig: hostConfig,
			MetricsBindAddress: o.SyncerMetricsAddress, PprofBindAddress: o.ProfilingAddress, Policy: pol,
			NodeAddress: o.Advertise().String(), NodeAliasKey: aliasKey, Version: version.Get().GitVersion,
			KubeletPort: kubeletPort, DNSServiceIP: o.DNSServiceIP, ClusterDomain: o.ClusterDomain,
			HostNodeInfo: o.HostNodeInfo, PoolNodes: o.PoolNodes,
		})
		if err != nil {
			inst.Stop("syncer failed")
			return err
		}
		go func() { syncDone <- s.Start(syncCtx) }()
		go allowTenantAddresses(syncCtx, egressRules, s)
		logger.Info("Syncing into the host cluster", "hostNamespace", o.HostNamespace)
	}

	select {
	case <-ctx.Done():
		stopSync()
		if syncDone != nil {
			<-syncDone
		}
		inst.Stop("signal")
		return nil
	case err := <-inst.Failed():
		stopSync()
		inst.Stop("component failed")
		return fmt.Errorf("control plane failed: %w", err)
	case err := <-syncDone:
		inst.Stop("syncer stopped")
		return fmt.Errorf("syncer stopped: %w", err)
	case err := <-egressFailed:
		stopSync()
		if syncDone != nil {
			<-syncDone
		}
		inst.Stop("egress failed")
		return err
	case err := <-servedFailed:
		stopSync()
		<-syncDone
		inst.Stop("kubelet API or DNS failed")
		return err
	}
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
