// Package host is `knest-dev host`: the devcluster in the foreground. `knest
// dev up` runs it as a child process; it is hidden from help.
package host

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devcluster"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
)

// NewCommand returns `knest-dev host`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var cfg = devcluster.DefaultConfig("", 2)
	var nodes, sandboxed int
	var poolsFile string
	cmd := &cobra.Command{
		Use:     "host --dir DIR",
		Short:   "Run the devcluster host in the foreground",
		Hidden:  true,
		Example: `  knest-dev host --dir /tmp/host --nodes 3`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Pools = pools.Defaults(nodes, sandboxed)
			if poolsFile != "" {
				var err error
				if cfg.Pools, err = pools.Load(poolsFile); err != nil {
					return err
				}
			}
			return run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "dir", "", "data directory of the host cluster (required)")
	cmd.Flags().IntVar(&cfg.Port, "port", 0, "API server port (0 picks a free one)")
	cmd.Flags().StringVar(&cfg.ServiceCIDR, "service-cidr", cfg.ServiceCIDR, "host service CIDR")
	cmd.Flags().StringVar(&cfg.PodCIDR, "pod-cidr", cfg.PodCIDR, "host pod CIDR")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of general nodes")
	cmd.Flags().IntVar(&sandboxed, "sandboxed-nodes", 1, "number of nodes in the sandboxed pool")
	cmd.Flags().StringVar(&poolsFile, "pools", "", "YAML file of node pools (replaces --nodes and --sandboxed-nodes)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func run(ctx context.Context, cfg devcluster.Config) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("devcluster"))
	// The scheduler and KWOK run on their own context, cancelled before the
	// control plane stops, so they never see the API server disappear.
	compCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopComponents()
	cluster, err := devcluster.Start(compCtx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		stopComponents()
		cluster.Stop("signal")
		return nil
	case err := <-cluster.Failed():
		stopComponents()
		cluster.Stop("component failed")
		return fmt.Errorf("host cluster failed: %w", err)
	}
}
