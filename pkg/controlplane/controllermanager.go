package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/knest-dev/knest/pkg/pki"
)

// Controllers are the controllers a tenant control plane runs; doc.go says
// why each of the others is left out.
var Controllers = []string{
	"serviceaccount-token-controller",
	"serviceaccount-controller",
	"legacy-serviceaccount-token-cleaner-controller",
	"root-ca-certificate-publisher-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"resourcequota-controller",
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"disruption-controller",
	"pod-garbage-collector-controller",
	"horizontal-pod-autoscaler-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"service-cidr-controller",
	"clusterrole-aggregation-controller",
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-approving-controller",
	"certificatesigningrequest-cleaner-controller",
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	"volumeattributesclass-protection-controller",
	"ephemeral-volume-controller",
	"validatingadmissionpolicy-status-controller",
}

// ControllerManager configures a kube-controller-manager.
type ControllerManager struct {
	// Kubeconfig points at the API server with the controller-manager's
	// own client certificate.
	Kubeconfig string
	// ServiceCIDR is the service IP range.
	ServiceCIDR string
	// PKI are the certificates and keys.
	PKI pki.Files
	// Controllers to run; nil means Controllers.
	Controllers []string
	// ExtraFlags are appended last, so they win.
	ExtraFlags []string
}

// Validate reports configuration errors.
func (c ControllerManager) Validate() error {
	if c.Kubeconfig == "" {
		return errors.New("controller-manager: a kubeconfig is required")
	}
	return nil
}

// Flags renders the kube-controller-manager flags.
func (c ControllerManager) Flags() []string {
	controllers := c.Controllers
	if controllers == nil {
		controllers = Controllers
	}
	flags := []string{
		"--kubeconfig=" + c.Kubeconfig,
		// One control plane per tenant, one process: nobody to elect.
		"--leader-elect=false",
		// No serving: health is the API server's, metrics come later.
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.PKI.ServiceAccountKey,
		// Published in every namespace's kube-root-ca.crt: both cluster CAs
		// during a CA rotation's transition.
		"--root-ca-file=" + c.PKI.CABundle,
		"--cluster-signing-cert-file=" + c.PKI.CACert,
		"--cluster-signing-key-file=" + c.PKI.CAKey,
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--controllers=" + strings.Join(controllers, ","),
		// knestd must stop within seconds of SIGTERM.
		"--controller-shutdown-timeout=2s",
		// With per-controller credentials every controller starts by
		// creating its ServiceAccount and requesting a token; at the default
		// 20 QPS that queue alone took ~3 s of every start. The API server is
		// in the same process and serves nobody else yet.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	}
	return append(flags, c.ExtraFlags...)
}

// RunControllerManager runs kube-controller-manager until ctx ends.
func RunControllerManager(ctx context.Context, c ControllerManager) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("controller-manager options: %w", err)
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range s.Flags(all, disabled, aliases).FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(c.Flags()); err != nil {
		return fmt.Errorf("controller-manager flags: %w", err)
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("controller-manager feature gates: %w", err)
	}
	// The controller-manager watches every API generically, deprecated ones
	// included; their warnings are noise here.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	cfg, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("controller-manager config: %w", err)
	}
	return kcmapp.Run(ctx, cfg.Complete())
}
