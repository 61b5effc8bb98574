// Package list is `knest list`: the tenants of a host cluster, with their
// namespace, isolation and state.
package list

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options are the flags of `knest list`.
type Options struct {
	Host cli.HostFlags
	// Namespace limits the list to one host namespace; "" means all.
	Namespace string
}

// NewCommand returns `knest list`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "list [-n NAMESPACE]",
		Short: "List the tenants of the host cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), streams, o)
		},
	}
	o.Host.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "only this host namespace (default: all)")
	return cmd
}

// Run lists the tenants.
func Run(ctx context.Context, streams cli.Streams, o Options) error {
	hostConfig, err := o.Host.Config()
	if err != nil {
		return err
	}
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	releases, err := install.New(hostConfig, o.Namespace, nil)
	if err != nil {
		return err
	}
	rels, err := releases.List()
	if err != nil {
		return err
	}
	if len(rels) == 0 {
		fmt.Fprintln(streams.ErrOut, "No tenants. Create one with 'knest create NAME'.")
		return nil
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tNAMESPACE\tISOLATION\tRELEASE\tSTATE\tAGE")
	for _, r := range rels {
		state := "knestd runs outside the host (knest dev)"
		if r.KnestdEnabled() {
			s, ready, err := tenant.State(ctx, host, r.Namespace)
			switch {
			case err != nil:
				state = "unknown: " + err.Error()
			case ready:
				state = "ready"
			default:
				state = s
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Namespace, r.Isolation(), r.Status, state, age(r.Updated))
	}
	return w.Flush()
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(time.Since(t))
}
