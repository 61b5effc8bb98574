// Package app is the knest command line's entry point.
package app

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/certs"
	"github.com/knest-dev/knest/pkg/cli/connect"
	"github.com/knest-dev/knest/pkg/cli/create"
	"github.com/knest-dev/knest/pkg/cli/delete"
	"github.com/knest-dev/knest/pkg/cli/dev"
	"github.com/knest-dev/knest/pkg/cli/disconnect"
	"github.com/knest-dev/knest/pkg/cli/freeze"
	"github.com/knest-dev/knest/pkg/cli/kubeconfig"
	"github.com/knest-dev/knest/pkg/cli/list"
	"github.com/knest-dev/knest/pkg/cli/sleep"
	"github.com/knest-dev/knest/pkg/cli/snapshot"
	"github.com/knest-dev/knest/pkg/cli/version"
)

// NewCommand returns the root `knest` command.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "knest",
		Short: "Virtual Kubernetes clusters for tenants, each in one namespace of a host cluster",
		Example: `  knest create team-a          # on the host of your current kubeconfig context
  knest connect team-a
  knest list
  knest delete team-a

  # Shell completion, tenant names included (bash; also zsh, fish, powershell)
  source <(knest completion bash)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.AddCommand(create.NewCommand(streams), connect.NewCommand(streams), list.NewCommand(streams),
		delete.NewCommand(streams), kubeconfig.NewCommand(streams), dev.NewCommand(streams), version.NewCommand(streams))
	cmd.AddCommand(snapshot.NewCommand(streams))
	cmd.AddCommand(certs.NewCommand(streams))
	cmd.AddCommand(disconnect.NewCommand(streams))
	cmd.AddCommand(freeze.NewCommand(streams), freeze.NewUnfreezeCommand(streams))
	cmd.AddCommand(sleep.NewCommand(streams))
	// cobra's `completion` command, made now to give each shell an example.
	cmd.InitDefaultCompletionCmd()
	for _, c := range cmd.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = "  knest completion bash > /etc/bash_completion.d/knest"
		for _, shell := range c.Commands() {
			shell.Example = fmt.Sprintf("  source <(knest completion %s)   # tenant names complete too: knest connect <TAB>", shell.Name())
			if shell.Name() == "powershell" {
				shell.Example = "  knest completion powershell | Out-String | Invoke-Expression"
			}
		}
	}
	return cmd
}

// Run runs knest with args.
func Run(ctx context.Context, args []string) error {
	cmd := NewCommand(cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}
