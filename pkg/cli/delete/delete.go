// Package delete is `knest delete`: remove a tenant from its host
// namespace, leaving nothing of it behind.
package delete

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options are the flags of `knest delete`.
type Options struct {
	Host          cli.HostFlags
	Namespace     string
	Timeout       time.Duration
	KeepNamespace bool
	// ContextName is the context `knest connect` added (default
	// knest-NAME), removed from the host's kubeconfig with the tenant.
	ContextName string
}

// NewCommand returns `knest delete`.
func NewCommand(streams cli.Streams) *cobra.Command {
	o := Options{Timeout: 5 * time.Minute}
	cmd := &cobra.Command{
		Use:   "delete NAME [-n NAMESPACE]",
		Short: "Delete a tenant and everything it left in its host namespace",
		Long: `Uninstalls the tenant's release (which stops knestd), then deletes every
object of the namespace labelled as the tenant's: synced pods, Secrets,
ConfigMaps, Services, claims, ..., the control plane's data volume,
encryption key and published kubeconfig, and the Events about objects that
are gone. A namespace 'knest create' made is deleted too, unless
--keep-namespace; one that existed before is kept, without its knest labels.
The context 'knest connect' added to the kubeconfig is removed last.`,
		Example: `  knest delete team-a
  knest delete team-b -n shared-ns --keep-namespace`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cli.CompleteTenants(&o.Host, &o.Namespace),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), streams, args[0], o)
		},
	}
	f := cmd.Flags()
	o.Host.AddFlags(f)
	cli.AddNamespaceFlag(f, &o.Namespace)
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the tenant's objects to be gone")
	f.BoolVar(&o.KeepNamespace, "keep-namespace", false, "keep a namespace that 'knest create' made (emptied)")
	f.StringVar(&o.ContextName, "context-name", "", "the context 'knest connect' added, to remove (default: knest-NAME@HOST-CONTEXT, and knest-NAME as older versions named it)")
	return cmd
}

// Run deletes tenant name.
func Run(ctx context.Context, streams cli.Streams, name string, o Options) error {
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
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	// Listing every resource type touches deprecated ones (v1 Endpoints):
	// their warnings say nothing to someone deleting a tenant.
	quiet := rest.CopyConfig(hostConfig)
	quiet.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(quiet)
	if err != nil {
		return err
	}
	ns := cli.TenantNamespace(name, o.Namespace)
	releases, err := install.New(hostConfig, ns, nil)
	if err != nil {
		return err
	}
	_, err = releases.Get(name)
	installed := err == nil
	if err != nil && !errors.Is(err, install.ErrNotFound) {
		return err
	}
	namespace, err := host.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no tenant %s: namespace %s does not exist ('knest list' shows the tenants and their namespaces)", name, ns)
	}
	if err != nil {
		return fmt.Errorf("failed to read namespace %s in host cluster: %w", ns, err)
	}
	if !installed && namespace.Labels[tenant.LabelNamespaceTenant] != name {
		return fmt.Errorf("no tenant %s in namespace %s ('knest list' shows the tenants and their namespaces)", name, ns)
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if installed {
		progress(fmt.Sprintf("Uninstalling release %s from namespace %s (knestd stops first)", name, ns))
		if err := releases.Uninstall(name, o.Timeout); err != nil && !errors.Is(err, install.ErrNotFound) {
			return err
		}
	} else {
		progress("No release " + name + " left: removing what remains of the tenant")
	}
	remover := tenant.Remover{Client: host, Dynamic: dyn, Discovery: host.Discovery(), Progress: progress}
	if err := remover.Remove(ctx, ns, name); err != nil {
		return err
	}

	if namespace.Labels[tenant.LabelCreatedBy] == "knest" && !o.KeepNamespace {
		progress("Deleting namespace " + ns + ", which knest created")
		if err := deleteNamespace(ctx, host, ns); err != nil {
			return err
		}
	} else {
		if err := tenant.ReleaseNamespace(ctx, host, ns); err != nil {
			return err
		}
		left, err := tenant.Leftovers(ctx, dyn, host.Discovery(), ns)
		if err != nil {
			return fmt.Errorf("failed to check namespace %s is empty: %w", ns, err)
		}
		if len(left) > 0 {
			progress(fmt.Sprintf("Namespace %s keeps objects that are not the tenant's: %s", ns, strings.Join(left, ", ")))
		}
	}
	removed, err := connect.Disconnect(o.Host, name, ns, o.ContextName)
	if err != nil {
		return fmt.Errorf("tenant %s is deleted, but its context was not removed from your kubeconfig: %w", name, err)
	}
	for _, c := range removed {
		progress("Removed context " + c + " from " + o.Host.PathOptions().GetDefaultFilename())
	}
	fmt.Fprintf(streams.Out, "Deleted tenant %s (%s).\n", name, time.Since(start).Round(time.Second))
	return nil
}

func deleteNamespace(ctx context.Context, host kubernetes.Interface, ns string) error {
	err := host.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete namespace %s in host cluster: %w", ns, err)
	}
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := host.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s is not gone: %w", ns, err)
	}
	return nil
}
