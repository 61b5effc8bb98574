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
	// Output is "", json or yaml.
	Output string
}

// Tenant is one entry of `knest list -o json|yaml`.
type Tenant struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Isolation    string `json:"isolation"`
	Release      string `json:"release"`
	Revision     int    `json:"revision"`
	ChartVersion string `json:"chartVersion"`
	State        string `json:"state"`
	Ready        bool   `json:"ready"`
	Updated      string `json:"updated,omitempty"`
}

// NewCommand returns `knest list`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "list [-n NAMESPACE]",
		Short: "List the tenants of the host cluster",
		Example: `  knest list
  knest list -n knest-team-a -o json
  knest list --context prod -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), streams, o)
		},
	}
	o.Host.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "only this host namespace (default: all)")
	cli.AddOutputFlag(cmd.Flags(), &o.Output, "json", "yaml")
	return cmd
}

// Run lists the tenants.
func Run(ctx context.Context, streams cli.Streams, o Options) error {
	if err := cli.CheckOutput(o.Output, "json", "yaml"); err != nil {
		return err
	}
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
	tenants := []Tenant{}
	for _, r := range rels {
		t := Tenant{Name: r.Name, Namespace: r.Namespace, Isolation: r.Isolation(), Release: r.Status,
			Revision: r.Revision, ChartVersion: r.ChartVersion, State: "knestd runs outside the host (knest dev)"}
		if !r.Updated.IsZero() {
			t.Updated = r.Updated.UTC().Format(time.RFC3339)
		}
		if r.KnestdEnabled() {
			s, ready, err := tenant.State(ctx, host, r.Namespace)
			switch {
			case err != nil:
				t.State = "unknown: " + err.Error()
			case ready:
				t.State, t.Ready = "ready", true
			default:
				t.State = s
			}
		}
		tenants = append(tenants, t)
	}
	if o.Output != "" {
		return cli.PrintObject(streams.Out, o.Output, tenants)
	}
	if len(rels) == 0 {
		fmt.Fprintln(streams.ErrOut, "No tenants. Create one with 'knest create NAME'.")
		return nil
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tNAMESPACE\tISOLATION\tRELEASE\tSTATE\tAGE")
	for i, t := range tenants {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Namespace, t.Isolation, t.Release, t.State, age(rels[i].Updated))
	}
	return w.Flush()
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(time.Since(t))
}
