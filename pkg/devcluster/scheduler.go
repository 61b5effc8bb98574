package devcluster

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// runScheduler runs the upstream kube-scheduler until ctx ends.
func runScheduler(ctx context.Context, kubeconfig string) error {
	o := schedoptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range o.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	// Setup replaces the component config with defaults and then applies
	// only flags marked as changed, so these go through the flag set.
	if err := fs.Parse([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		// Scheduling thousands of pods in a benchmark must not be limited
		// by the client, which talks to an API server in the same process.
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	}); err != nil {
		return fmt.Errorf("scheduler flags: %w", err)
	}
	cc, sched, err := schedapp.Setup(ctx, o)
	if err != nil {
		return fmt.Errorf("scheduler setup: %w", err)
	}
	return schedapp.Run(ctx, cc, sched)
}
