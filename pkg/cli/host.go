package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/tenant"
)

// HostFlags choose the host cluster the way kubectl does: --kubeconfig and
// --context over $KUBECONFIG and ~/.kube/config.
type HostFlags struct {
	Kubeconfig string
	Context    string
}

// AddFlags registers --kubeconfig and --context.
func (f *HostFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, "kubeconfig of the host cluster (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.Context, "context", f.Context, "context of the host cluster in the kubeconfig (default: its current context)")
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
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.Kubeconfig
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.Context})
	cfg, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no host cluster: no kubeconfig found in $KUBECONFIG or ~/.kube/config; pass --kubeconfig FILE (and --context NAME), or start a local host with 'knest dev up --dir DIR' and use DIR/host.kubeconfig")
	}
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
