// Package app is the knest command line's entry point.
package app

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
	"github.com/knest-dev/knest/pkg/cli/create"
	"github.com/knest-dev/knest/pkg/cli/delete"
	"github.com/knest-dev/knest/pkg/cli/dev"
	"github.com/knest-dev/knest/pkg/cli/kubeconfig"
	"github.com/knest-dev/knest/pkg/cli/list"
	"github.com/knest-dev/knest/pkg/cli/version"
)

// NewCommand returns the root `knest` command.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "knest",
		Short:         "Virtual Kubernetes clusters for tenants, each in one namespace of a host cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.AddCommand(create.NewCommand(streams), connect.NewCommand(streams), list.NewCommand(streams),
		delete.NewCommand(streams), kubeconfig.NewCommand(streams), dev.NewCommand(streams), version.NewCommand(streams))
	return cmd
}

// Run runs knest with args.
func Run(ctx context.Context, args []string) error {
	cmd := NewCommand(cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}
