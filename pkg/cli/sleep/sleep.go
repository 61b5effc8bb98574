// Package sleep is `knest sleep`: puts a tenant to sleep now, through its
// admin kubeconfig (knestd's /knest/sleep endpoint, behind the tenant API
// server's authentication and RBAC). The tenant's next request wakes it.
package sleep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
)

// sleepPath is pkg/knestd.SleepPath (not imported: the CLI stays light).
const sleepPath = "/knest/sleep"

// NewCommand returns `knest sleep`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var kubeconfig string
	var tf connect.TenantFlags
	cmd := &cobra.Command{
		Use:   "sleep [TENANT] | sleep --tenant-kubeconfig FILE",
		Short: "Put a tenant to sleep now; its next API request wakes it",
		Example: `  knest sleep demo
  knest sleep --tenant-kubeconfig demo.kubeconfig`,
		Long: `Stops the tenant's host pods and its control plane (knestd), keeping its data;
knest-supervisor keeps the tenant's API address open, and the next request
wakes it (the request waits until the control plane is ready). A tenant whose
knestd runs with --sleep-after also sleeps by itself when idle. Needs a knestd
run by knest-supervisor.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && kubeconfig != "":
				return errors.New("name the tenant or give --tenant-kubeconfig, not both")
			case len(args) == 1:
				cfg, stop, err := connect.Reach(cmd.Context(), tf, args[0])
				if err != nil {
					return err
				}
				defer stop()
				return Run(cmd.Context(), streams, cfg)
			case kubeconfig == "":
				return errors.New("name the tenant (knest sleep NAME) or give its admin kubeconfig (--tenant-kubeconfig FILE)")
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--tenant-kubeconfig %s: %w", kubeconfig, err)
			}
			return Run(cmd.Context(), streams, cfg)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant, instead of naming the tenant on the host.")
	tf.AddFlags(cmd.Flags())
	cmd.ValidArgsFunction = cli.CompleteTenants(&tf.Host, &tf.Namespace)
	return cmd
}

// Run asks the tenant's knestd to sleep and prints its answer.
func Run(ctx context.Context, streams cli.Streams, cfg *rest.Config) error {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.Host, "/")+sleepPath, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the tenant's knestd: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("sleep: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(streams.Out, strings.TrimSpace(string(body)))
	return nil
}
