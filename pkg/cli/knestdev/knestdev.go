// Package knestdev is the knest-dev binary's command line: the local dev
// environment behind `knest dev`. It links the devcluster (kube-apiserver,
// controller-manager, scheduler, KWOK and a simulated kubelet that runs
// exec's commands on this machine), which is why it is a binary of its own:
// the knest CLI stays small and portable, and knestd never links it.
package knestdev

import (
	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/knestdev/down"
	"github.com/knest-dev/knest/pkg/cli/knestdev/host"
	"github.com/knest-dev/knest/pkg/cli/knestdev/up"
)

// NewCommand returns the root `knest-dev` command.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "knest-dev",
		Short: "The local host cluster (devcluster) and tenants that 'knest dev' runs; Linux only",
		Example: `  # Usually run through the knest CLI, which forwards its flags:
  knest dev up --dir _output/dev
  # The same, directly:
  knest-dev up --dir _output/dev`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.AddCommand(up.NewCommand(streams), down.NewCommand(streams), host.NewCommand(streams))
	cmd.CompletionOptions.DisableDefaultCmd = true
	return cmd
}
