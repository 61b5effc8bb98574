// Package kubeconfig is `knest kubeconfig`: the tenant admin kubeconfig as
// knestd published it in its host namespace, for use inside the host
// cluster (its server is the knestd Service's cluster DNS name).
package kubeconfig

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/cli"
)

// Options are the flags of `knest kubeconfig`.
type Options struct {
	Host      cli.HostFlags
	Namespace string
}

// NewCommand returns `knest kubeconfig`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME [-n NAMESPACE]",
		Short: "Print a tenant's admin kubeconfig for use inside the host cluster",
		Long: `Prints the admin kubeconfig the tenant's knestd published in Secret
knestd-kubeconfig of its host namespace. Its server is the knestd Service's
in-cluster name, which resolves inside the host cluster only: from outside,
use 'knest connect NAME' (or 'knest connect NAME --print').`,
		Example: `  # Store it in a host Secret for an in-cluster client
  knest kubeconfig team-a > team-a.kubeconfig`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cli.CompleteTenants(&o.Host, &o.Namespace),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), streams, args[0], o)
		},
	}
	o.Host.AddFlags(cmd.Flags())
	cli.AddNamespaceFlag(cmd.Flags(), &o.Namespace)
	return cmd
}

// Run prints tenant name's kubeconfig.
func Run(ctx context.Context, streams cli.Streams, name string, o Options) error {
	hostConfig, err := o.Host.Config()
	if err != nil {
		return err
	}
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	ns := cli.TenantNamespace(name, o.Namespace)
	data, err := cli.PublishedKubeconfig(ctx, hostConfig, host, name, ns)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(data)
	return err
}
