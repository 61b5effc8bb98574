package knestd

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/knestd/options"
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
	serviceIP, _ := o.ServiceIP()
	sans, sanIPs := o.SANs()
	inst, err := controlplane.Start(ctx, controlplane.Spec{
		Name: o.Name, DataDir: o.DataDir, BindAddress: o.BindAddress, Port: o.SecurePort,
		AdvertiseAddress: o.Advertise(), ServiceCIDR: o.ServiceCIDR, ServiceIP: serviceIP,
		ClusterDomain: o.ClusterDomain, SANs: sans, SANIPs: sanIPs,
		EncryptionKeyFile: o.EncryptionKeyFile, EtcdQuotaBytes: o.EtcdQuotaBytes,
	})
	if err != nil {
		return err
	}
	if err := inst.WriteAdminKubeconfig(inst.Layout.AdminKubeconfig); err != nil {
		inst.Stop("start failed")
		return err
	}
	tuneMemoryForIdle()
	logger.Info(ReadyMessage, "name", o.Name, "server", inst.Server,
		"kubeconfig", inst.Layout.AdminKubeconfig, "elapsed", time.Since(start).Round(time.Millisecond).String())

	select {
	case <-ctx.Done():
		inst.Stop("signal")
		return nil
	case err := <-inst.Failed():
		inst.Stop("component failed")
		return fmt.Errorf("control plane failed: %w", err)
	}
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
