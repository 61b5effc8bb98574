// Package version is `knest version`: the CLI's version and commit, the
// chart it installs and the Kubernetes version of the tenants it creates.
package version

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/version"
)

// Info is what `knest version -o json|yaml` prints.
type Info struct {
	// Client is the knest CLI: version, commit, Go and platform; its
	// kubernetes field is the Kubernetes version knest was built with.
	Client version.Info `json:"client"`
	// Chart is the chart embedded in the CLI, which `knest create`
	// installs.
	Chart Chart `json:"chart"`
	// Kubernetes is the tenants' Kubernetes version: the version of the
	// control plane in the knestd the chart runs, e.g. v1.37.2.
	Kubernetes string `json:"kubernetes"`
}

// Chart names the embedded chart.
type Chart struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

// KubernetesVersionAnnotation, on the chart (Chart.yaml), names the
// tenants' Kubernetes version; the chart's appVersion is knest's.
const KubernetesVersionAnnotation = "knest.dev/kubernetes-version"

// Get returns the running CLI's Info.
func Get() (Info, error) {
	chrt, err := charts.Knest()
	if err != nil {
		return Info{}, err
	}
	m := chrt.Metadata
	return Info{Client: version.Get(), Chart: Chart{Name: m.Name, Version: m.Version, AppVersion: m.AppVersion},
		Kubernetes: m.Annotations[KubernetesVersionAnnotation]}, nil
}

// NewCommand returns `knest version`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o json|yaml]",
		Short: "Print the versions of knest, its chart and the tenants' Kubernetes",
		Example: `  knest version
  knest version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckOutput(output, "json", "yaml"); err != nil {
				return err
			}
			info, err := Get()
			if err != nil {
				return err
			}
			if output != "" {
				return cli.PrintObject(streams.Out, output, info)
			}
			c := info.Client
			fmt.Fprintf(streams.Out, "knest %s (commit %s, %s %s)\n", c.Version, c.Commit, c.Go, c.Platform)
			fmt.Fprintf(streams.Out, "chart %s %s\n", info.Chart.Name, info.Chart.Version)
			fmt.Fprintf(streams.Out, "tenant Kubernetes %s\n", info.Kubernetes)
			return nil
		},
	}
	cli.AddOutputFlag(cmd.Flags(), &output, "json", "yaml")
	return cmd
}
