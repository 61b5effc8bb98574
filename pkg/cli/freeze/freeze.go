// Package freeze is `knest freeze` and `knest unfreeze`: set a tenant's
// chart value frozen and wait until its control plane runs again.
package freeze

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/create"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options are the flags of `knest freeze` and `knest unfreeze`.
type Options struct {
	Host      cli.HostFlags
	Namespace string
	Timeout   time.Duration
	Wait      bool
}

// NewCommand returns `knest freeze`.
func NewCommand(streams cli.Streams) *cobra.Command {
	return command(streams, true, "freeze NAME [-n NAMESPACE]",
		"Freeze a tenant: its API read-only for its users, its host pods stopped, its data kept",
		`Upgrades the tenant's release with the chart value frozen=true (its other
values are kept), which restarts knestd with --frozen: every write of a
tenant user (cluster-admin included: creates, updates, deletes) is refused
with the reason, reads work; the host pods of its pods are deleted while the
tenant pods stay (not Failed, so their controllers do not replace them; the
condition knest.dev/Frozen, reason TenantFrozen, says why); its data stays.
For non-payment, incidents and migrations. 'knest unfreeze' undoes it.`,
		"  knest freeze team-a")
}

// NewUnfreezeCommand returns `knest unfreeze`.
func NewUnfreezeCommand(streams cli.Streams) *cobra.Command {
	return command(streams, false, "unfreeze NAME [-n NAMESPACE]",
		"Unfreeze a tenant: its API writable again, host pods made again for its pods",
		`Upgrades the tenant's release with the chart value frozen=false (its other
values are kept), which restarts knestd without --frozen: tenant users can
write again, and the tenant pods the freeze stopped get host pods again (the
one case in which knest makes a pod's host pod again: a pod whose host pod
the host removed otherwise fails, for its controller to replace it).`,
		"  knest unfreeze team-a")
}

func command(streams cli.Streams, frozen bool, use, short, long, example string) *cobra.Command {
	o := Options{Timeout: 5 * time.Minute, Wait: true}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cli.CompleteTenants(&o.Host, &o.Namespace),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), streams, args[0], frozen, o)
		},
	}
	f := cmd.Flags()
	o.Host.AddFlags(f)
	cli.AddNamespaceFlag(f, &o.Namespace)
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the tenant's control plane to be ready again")
	f.BoolVar(&o.Wait, "wait", o.Wait, "wait until the tenant's control plane is ready again")
	return cmd
}

// Run sets tenant name's frozen value.
func Run(ctx context.Context, streams cli.Streams, name string, frozen bool, o Options) error {
	ctx, stop := cli.SignalContext(ctx)
	defer stop()
	start := time.Now()
	progress := func(msg string) {
		fmt.Fprintf(streams.ErrOut, "[%4s] %s\n", time.Since(start).Round(time.Second), msg)
	}
	if err := tenant.ValidateName(name); err != nil {
		return err
	}
	hostConfig, err := o.Host.Config()
	if err != nil {
		return err
	}
	ns := cli.TenantNamespace(name, o.Namespace)
	releases, err := install.New(hostConfig, ns, nil)
	if err != nil {
		return err
	}
	rel, err := releases.Get(name)
	if errors.Is(err, install.ErrNotFound) {
		return fmt.Errorf("no tenant %s in namespace %s ('knest list' shows the tenants)", name, ns)
	}
	if err != nil {
		return err
	}
	state := map[bool]string{true: "frozen", false: "not frozen"}
	if was, _ := rel.Values["frozen"].(bool); was == frozen {
		fmt.Fprintf(streams.Out, "Tenant %s is %s already.\n", name, state[frozen])
		return nil
	}
	if enabled, _ := rel.Values["knestd"].(map[string]any)["enabled"].(bool); !enabled {
		return fmt.Errorf("tenant %s runs its knestd outside the chart (knestd.enabled=false): restart that knestd with or without --frozen", name)
	}
	values, err := create.ReuseValues(map[string]any{"frozen": frozen}, rel.UserValues)
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("Setting frozen=%v on tenant %s in host namespace %s (its other values are kept)", frozen, name, ns))
	if _, err := releases.Upgrade(ctx, name, values, install.Options{Timeout: o.Timeout, Progress: progress}); err != nil {
		return err
	}
	if o.Wait {
		host, err := kubernetes.NewForConfig(hostConfig)
		if err != nil {
			return err
		}
		waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		if err := tenant.WaitReady(waitCtx, host, ns, progress); err != nil {
			return err
		}
	}
	if frozen {
		fmt.Fprintf(streams.Out, "Tenant %s is frozen: its API is read-only for its users and its pods have no host pods; 'knest unfreeze %s -n %s' undoes it.\n", name, name, ns)
	} else {
		fmt.Fprintf(streams.Out, "Tenant %s is unfrozen: its API is writable and its pods get host pods again.\n", name)
	}
	return nil
}
