// Package disconnect is `knest disconnect`: it removes from your kubeconfig
// the context `knest connect` added for a tenant, leaving the tenant alone.
package disconnect

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
)

// Options are the flags of `knest disconnect`.
type Options struct {
	Host        cli.HostFlags
	Namespace   string
	ContextName string
}

// NewCommand returns `knest disconnect`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "disconnect NAME [-n NAMESPACE] [--context-name NAME]",
		Short: "Remove the kubeconfig context 'knest connect' added for a tenant",
		Long: `Removes from the kubeconfig the host comes from the context, cluster and
user 'knest connect NAME' added (knest-NAME@HOST-CONTEXT, or the older
knest-NAME, or --context-name). Only a context that points at this tenant is
removed; the tenant and the rest of the kubeconfig stay. No host access is
needed.`,
		Example: `  knest disconnect team-a
  knest disconnect team-a --context-name team-a`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cli.CompleteTenants(&o.Host, &o.Namespace),
		RunE: func(_ *cobra.Command, args []string) error {
			return Run(streams, args[0], o)
		},
	}
	o.Host.AddFlags(cmd.Flags())
	cli.AddNamespaceFlag(cmd.Flags(), &o.Namespace)
	cmd.Flags().StringVar(&o.ContextName, "context-name", "", "the context to remove (default: knest-NAME@HOST-CONTEXT and knest-NAME)")
	return cmd
}

// Run removes tenant name's contexts.
func Run(streams cli.Streams, name string, o Options) error {
	removed, err := connect.Disconnect(o.Host, name, cli.TenantNamespace(name, o.Namespace), o.ContextName)
	if err != nil {
		return err
	}
	file := o.Host.PathOptions().GetDefaultFilename()
	if len(removed) == 0 {
		return fmt.Errorf("no context of tenant %s in %s (name it with --context-name if 'knest connect' was given one)", name, file)
	}
	for _, c := range removed {
		fmt.Fprintf(streams.Out, "Removed context %s from %s\n", c, file)
	}
	return nil
}
