package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/tenant"
)

// HostFlags choose the host cluster as kubectl does, with cli-runtime's
// ConfigFlags: --kubeconfig and --context over $KUBECONFIG and
// ~/.kube/config, and kubectl's other connection flags (--cluster, --user,
// --token, --as, --as-group, --as-uid, --certificate-authority,
// --client-certificate, --client-key, --insecure-skip-tls-verify,
// --tls-server-name, --request-timeout, ...). Two of kubectl's are left
// out: -n/--namespace, which in knest names the tenant's host namespace
// (AddNamespaceFlag, default knest-NAME rather than the context's
// namespace), and -s/--server, which `knest connect` has for the tenant's
// address. Kubeconfig and Context may also be set directly (tests, other
// commands).
type HostFlags struct {
	Kubeconfig string
	Context    string
	// flags are the ConfigFlags AddFlags registered; nil when the struct
	// was filled in directly.
	flags *genericclioptions.ConfigFlags
}

// AddFlags registers --kubeconfig, --context and kubectl's other host
// connection flags.
func (f *HostFlags) AddFlags(fs *pflag.FlagSet) {
	cf := genericclioptions.NewConfigFlags(false)
	cf.KubeConfig, cf.Context = &f.Kubeconfig, &f.Context
	cf.Namespace, cf.APIServer = nil, nil
	// knest reads no discovery cache; kubectl's --cache-dir would do nothing.
	cf.CacheDir = nil
	cf.AddFlags(fs)
	fs.Lookup("kubeconfig").Usage = "kubeconfig of the host cluster (default: $KUBECONFIG, then ~/.kube/config)"
	fs.Lookup("context").Usage = "context of the host cluster in the kubeconfig (default: its current context)"
	f.flags = cf
}

// configFlags are the ConfigFlags the host comes from: the registered
// ones, or ones made from Kubeconfig and Context.
func (f HostFlags) configFlags() *genericclioptions.ConfigFlags {
	if f.flags != nil {
		return f.flags
	}
	cf := genericclioptions.NewConfigFlags(false)
	cf.KubeConfig, cf.Context = &f.Kubeconfig, &f.Context
	cf.Namespace, cf.APIServer, cf.CacheDir = nil, nil, nil
	return cf
}

// PathOptions are the kubeconfig files the host comes from, where `knest
// connect` adds its contexts.
func (f HostFlags) PathOptions() *clientcmd.PathOptions {
	po := clientcmd.NewDefaultPathOptions()
	po.LoadingRules.ExplicitPath = f.Kubeconfig
	return po
}

// Config returns the host cluster's client configuration, or an error that
// says how to name one.
func (f HostFlags) Config() (*rest.Config, error) {
	loader := f.configFlags().ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("host cluster: %w (choose one with --kubeconfig and --context)", err)
	}
	// kubectl falls back to localhost:8080 when no kubeconfig names a
	// cluster; knest says what to do instead (in a pod, the pod's
	// ServiceAccount is a host, as for kubectl).
	if len(raw.Clusters) == 0 {
		if _, err := rest.InClusterConfig(); err != nil {
			return nil, errors.New("no host cluster: no kubeconfig found in $KUBECONFIG or ~/.kube/config; pass --kubeconfig FILE (and --context NAME), or start a local host with 'knest dev up --dir DIR' and use DIR/host.kubeconfig")
		}
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("host cluster: %w (choose one with --kubeconfig and --context)", err)
	}
	// Waiting and cleaning up list many kinds at once.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// TenantNamespace is the host namespace of a tenant: the -n flag, or the
// default knest-<name>.
func TenantNamespace(name, flag string) string {
	if flag != "" {
		return flag
	}
	return tenant.DefaultNamespace(name)
}

// AddNamespaceFlag registers -n/--namespace for a tenant's host namespace.
func AddNamespaceFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVarP(p, "namespace", "n", "", "host namespace of the tenant (default: knest-NAME)")
}

// SignalContext ends on SIGINT or SIGTERM, for commands that wait.
func SignalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// ContextName is the name of the host's context in the kubeconfig: --context,
// or the kubeconfig's current context; "" when the kubeconfig names none.
func (f HostFlags) ContextName() string {
	if f.Context != "" {
		return f.Context
	}
	cfg, err := f.PathOptions().GetStartingConfig()
	if err != nil {
		return ""
	}
	return cfg.CurrentContext
}

// TenantContextName is the kubeconfig context `knest connect` adds for tenant
// name by default: knest-NAME@HOST-CONTEXT, so that tenants of the same name
// on two hosts of one kubeconfig do not take each other's context; knest-NAME
// when the host has no context name.
func (f HostFlags) TenantContextName(name string) string {
	if host := f.ContextName(); host != "" {
		return LegacyTenantContextName(name) + "@" + host
	}
	return LegacyTenantContextName(name)
}

// LegacyTenantContextName is the context name `knest connect` used before
// names carried the host's context; delete and disconnect remove it too.
func LegacyTenantContextName(name string) string {
	return "knest-" + name
}
