// Package dev is `knest dev`: a local host cluster (the devcluster) with
// tenant control planes, no Docker needed.
package dev

import (
	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/dev/down"
	"github.com/knest-dev/knest/pkg/cli/dev/host"
	"github.com/knest-dev/knest/pkg/cli/dev/up"
)

// NewCommand returns `knest dev`.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local host cluster and tenants, with no Docker",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(up.NewCommand(streams), down.NewCommand(streams), host.NewCommand(streams))
	return cmd
}
