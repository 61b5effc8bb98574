// Package create is `knest create`: install a tenant's chart into a host
// namespace with the Helm SDK and wait, showing each step, until its
// control plane is ready.
package create

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mitchellh/copystructure"
	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options are the flags of `knest create`.
type Options struct {
	Host      cli.HostFlags
	Namespace string
	// Isolation, when set, overrides the values' isolation.
	Isolation policy.Profile
	// Values are -f/--values and the --set flags, as Helm has them.
	Values  values.Options
	Timeout time.Duration
	Upgrade bool
	// ResetValues drops the values an upgraded tenant was installed with;
	// without it they are kept under the new ones (Helm's
	// --reset-then-reuse-values).
	ResetValues bool
	Wait        bool
	// Hostnames, when set, are the values' exposure.hostnames.
	Hostnames []string
	// DryRun prints the namespace and the chart's manifests instead of
	// installing them; no host is contacted.
	DryRun bool
	// Output is "", json or yaml.
	Output string
	// SkipPreflight installs without checking that the host has the
	// RuntimeClass and storage the tenant needs.
	SkipPreflight bool
	// Clone starts the tenant from another tenant's snapshot (clone.go).
	Clone CloneOptions
}

// NewCommand returns `knest create`.
func NewCommand(streams cli.Streams) *cobra.Command {
	o := Options{Timeout: 5 * time.Minute, Wait: true}
	cmd := &cobra.Command{
		Use:   "create NAME [-n NAMESPACE] [--isolation soft|hard] [-f VALUES]...",
		Short: "Create a tenant: its control plane and policies in one host namespace",
		Long: `Installs the knest chart as release NAME into host namespace NAMESPACE
(default knest-NAME), which it creates if needed and labels for Pod Security
(baseline in both profiles: the floor, so the host does not refuse the root
pods hard isolation runs sandboxed), then waits until the tenant's control
plane is ready. A namespace holds one tenant only.

Values come from the chart's defaults, then -f files, then --set-json,
--set, --set-string and --set-file (as Helm applies them), then --isolation.
On --upgrade the values the tenant has are kept under the new ones (Helm's
--reset-then-reuse-values), so a re-run without an earlier --set keeps it;
--reset-values drops them. The host's service CIDR is read from the host
when the values do not set knestd.serviceCIDR.

Before installing, knest checks with your credentials that the host has the
RuntimeClass the profile runs tenant pods with and, for a new tenant, a
StorageClass (or free volume) for knestd's data volume; --skip-preflight
installs anyway. While waiting, an image the host cannot pull ends the wait
at once, naming the image.

--dry-run prints the labelled namespace and the chart's manifests without
contacting the host (for GitOps: set knestd.serviceCIDR to the host's).

--from-snapshot clones a tenant: the new tenant starts, then gets the data of
another tenant's snapshot, under its own name, host namespace, certificates
and service-account key (the source's kubeconfigs and tokens do not work on
the clone). The source's snapshot and encryption keys are read from its host
namespace.`,
		Example: `  # A tenant with the default (hard) isolation in namespace knest-team-a
  knest create team-a

  # Soft isolation, values from a file and a flag
  knest create team-b --isolation soft -f values.yaml --set knestd.image.tag=v0.1.0

  # Change a value later; the earlier ones are kept
  knest create team-b --upgrade --set-string knestd.logLevel=4

  # A clone of team-a's snapshot, side by side with team-a
  knest create team-a-copy --from-snapshot oci://registry.example.com/backups/team-a:20261206-150405-0123456789abcdef

  # Render what would be installed, for GitOps
  knest create team-c --dry-run -o yaml --set knestd.serviceCIDR=10.96.0.0/12 > team-c.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), streams, args[0], o)
		},
	}
	f := cmd.Flags()
	o.Host.AddFlags(f)
	cli.AddNamespaceFlag(f, &o.Namespace)
	f.Var(&o.Isolation, "isolation", "isolation profile: hard (sandboxed RuntimeClass, Pod Security restricted) or soft (baseline, shared kernel); default: the values', else hard")
	f.StringSliceVarP(&o.Values.ValueFiles, "values", "f", nil, "chart values file (repeatable; later files win)")
	f.StringArrayVar(&o.Values.Values, "set", nil, "chart values as key.sub=value[,key2=value2] (repeatable; over -f)")
	f.StringArrayVar(&o.Values.StringValues, "set-string", nil, "chart values as key=value, each value a string (repeatable)")
	f.StringArrayVar(&o.Values.FileValues, "set-file", nil, "chart values as key=path, each value the content of the file at path (repeatable)")
	f.StringArrayVar(&o.Values.JSONValues, "set-json", nil, "chart values as key=JSON (repeatable)")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the tenant to be ready")
	f.BoolVar(&o.Upgrade, "upgrade", false, "upgrade the tenant if it exists (its earlier values are kept under these)")
	f.BoolVar(&o.ResetValues, "reset-values", false, "with --upgrade: drop the tenant's earlier values, keep only these")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the namespace and manifests that would be installed (with -o yaml or json); contact no host")
	cli.AddOutputFlag(f, &o.Output, "json", "yaml")
	f.BoolVar(&o.Wait, "wait", o.Wait, "wait until the tenant is ready")
	f.BoolVar(&o.SkipPreflight, "skip-preflight", false, "install without checking that the host has the RuntimeClass the profile needs and storage for knestd's volume")
	o.Clone.addFlags(f)
	f.StringArrayVar(&o.Hostnames, "hostname", nil, "hostname the tenant's Ingresses may claim, exact or *.domain (repeatable; sets exposure.hostnames; default *.NAME.<exposure.baseDomain>)")
	return cmd
}

// Run creates tenant name.
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
	if err := cli.CheckOutput(o.Output, "json", "yaml"); err != nil {
		return err
	}
	// Everything that needs no host is checked before the host is asked.
	values, err := install.MergeValues(o.Values)
	if err != nil {
		return err
	}
	if o.Isolation != "" {
		values["isolation"] = o.Isolation.String()
	}
	setHostnames(values, o.Hostnames)
	if t, ok := values["tenant"]; ok && t != "" && t != name {
		return fmt.Errorf("the values name tenant %q, but this tenant is %q: leave 'tenant' out of the values", t, name)
	}
	chrt, err := charts.Knest()
	if err != nil {
		return err
	}
	if err := install.ValidateValues(chrt, values); err != nil {
		return err
	}
	profile, knestdEnabled, err := effective(values)
	if err != nil {
		return err
	}
	if o.DryRun {
		return dryRun(ctx, streams, name, cli.TenantNamespace(name, o.Namespace), profile, values, o.Output)
	}
	hostConfig, err := o.Host.Config()
	if err != nil {
		return err
	}
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	ns := cli.TenantNamespace(name, o.Namespace)
	releases, err := install.New(hostConfig, ns, nil)
	if err != nil {
		return err
	}
	exists, err := checkNamespaceFree(releases, name, ns, o.Upgrade)
	if err != nil {
		return err
	}
	if exists && !o.ResetValues {
		rel, err := releases.Get(name)
		if err != nil {
			return err
		}
		if values, err = ReuseValues(values, rel.UserValues); err != nil {
			return err
		}
		if len(rel.UserValues) > 0 {
			progress(fmt.Sprintf("Keeping the values of revision %d under the new ones (--reset-values drops them)", rel.Revision))
		}
		if err := install.ValidateValues(chrt, values); err != nil {
			return err
		}
		if profile, knestdEnabled, err = effective(values); err != nil {
			return err
		}
	}
	if err := o.Clone.check(o, exists, knestdEnabled); err != nil {
		return err
	}
	cloning, err := prepareClone(ctx, host, name, o.Clone, progress)
	if err != nil {
		return err
	}
	if knestdEnabled {
		if err := setServiceCIDR(ctx, host, values, progress); err != nil {
			return err
		}
	}
	setStorageDefault(ctx, host, values, progress)
	if !o.SkipPreflight {
		if err := preflight(ctx, host, values, profile, knestdEnabled, exists, progress); err != nil {
			return err
		}
	}

	verb := "Creating"
	if exists {
		verb = "Upgrading"
	}
	progress(fmt.Sprintf("%s tenant %s in host namespace %s (%s isolation)", verb, name, ns, profile))
	created, err := tenant.EnsureNamespace(ctx, host, ns, name, profile)
	if err != nil {
		return err
	}
	if created {
		progress(fmt.Sprintf("Created namespace %s (Pod Security %s)", ns, profile.PodSecurityLevel()))
	} else {
		progress(fmt.Sprintf("Namespace %s is labelled for the tenant (Pod Security %s)", ns, profile.PodSecurityLevel()))
	}
	if err := cloning.beforeInstall(ctx, ns, name); err != nil {
		return err
	}
	opts := install.Options{Timeout: o.Timeout, Progress: progress}
	if exists {
		_, err = releases.Upgrade(ctx, name, values, opts)
	} else {
		_, err = releases.Install(ctx, name, values, opts)
	}
	if err != nil {
		return err
	}
	if !knestdEnabled {
		progress("knestd is disabled in the values: run it yourself (knest dev does)")
		return printResult(streams, releases, name, o.Output)
	}
	if !o.Wait {
		if o.Output != "" {
			return printResult(streams, releases, name, o.Output)
		}
		fmt.Fprintf(streams.Out, "Tenant %s is starting; 'knest list' shows when it is ready.\n", name)
		return nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := tenant.WaitReady(waitCtx, host, ns, progress); err != nil {
		var nr *tenant.NotReadyError
		switch {
		case errors.As(err, &nr) && ctx.Err() != nil:
			return fmt.Errorf("interrupted while tenant %s was starting (%s); it stays installed: 'knest delete %s -n %s' removes it", name, nr.State, name, ns)
		case errors.As(err, &nr):
			return fmt.Errorf("tenant %s is not ready after %s: %s. See 'kubectl -n %s describe pod %s' and 'kubectl -n %s logs %s'; the tenant stays installed: 'knest create %s -n %s --upgrade' retries with other values, 'knest delete %s -n %s' removes it",
				name, o.Timeout, nr.State, ns, tenant.PodName, ns, tenant.PodName, name, ns, name, ns)
		}
		return imagePullHelp(name, ns, err)
	}
	if err := cloning.afterReady(ctx, streams, o, ns, name, progress); err != nil {
		return err
	}
	if o.Output != "" {
		return printResult(streams, releases, name, o.Output)
	}
	fmt.Fprintf(streams.Out, "Tenant %s is ready (%s). Connect with:\n    knest connect %s -n %s\n",
		name, time.Since(start).Round(time.Second), name, ns)
	return nil
}

// ReuseValues puts the values a tenant has (earlier, without the chart's
// defaults) under the new ones, as Helm's --reset-then-reuse-values does:
// the chart's defaults come from the chart being installed, what the user
// set before stays unless set again (a null value removes it).
func ReuseValues(values, earlier map[string]any) (map[string]any, error) {
	if len(earlier) == 0 {
		return values, nil
	}
	old, err := copystructure.Copy(earlier)
	if err != nil {
		return nil, err
	}
	return chartutil.CoalesceTables(values, old.(map[string]any)), nil
}

// Result is what `knest create -o json|yaml` prints.
type Result struct {
	Name         string         `json:"name"`
	Namespace    string         `json:"namespace"`
	Isolation    string         `json:"isolation"`
	Status       string         `json:"status"`
	Revision     int            `json:"revision"`
	ChartVersion string         `json:"chartVersion"`
	Values       map[string]any `json:"values"`
}

func printResult(streams cli.Streams, releases *install.Client, name, output string) error {
	if output == "" {
		return nil
	}
	r, err := releases.Get(name)
	if err != nil {
		return err
	}
	return cli.PrintObject(streams.Out, output, Result{Name: r.Name, Namespace: r.Namespace, Isolation: r.Isolation(),
		Status: r.Status, Revision: r.Revision, ChartVersion: r.ChartVersion, Values: r.UserValues})
}

// dryRun prints the tenant's namespace, labelled as create labels it, and
// the chart's manifests: YAML documents, or with -o json a v1 List.
func dryRun(ctx context.Context, streams cli.Streams, name, ns string, profile policy.Profile, values map[string]any, output string) error {
	manifest, err := install.Render(ctx, name, ns, values)
	if err != nil {
		return err
	}
	nsObj := tenant.Namespace(ns, name, profile)
	nsObj.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
	nsYAML, err := yaml.Marshal(nsObj)
	if err != nil {
		return err
	}
	if output != "json" {
		_, err = fmt.Fprintf(streams.Out, "---\n%s%s", nsYAML, manifest)
		return err
	}
	var items []any
	for _, doc := range append([]string{string(nsYAML)}, strings.Split(manifest, "\n---")...) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("rendered manifest: %w", err)
		}
		if len(obj) > 0 {
			items = append(items, obj)
		}
	}
	return cli.PrintObject(streams.Out, "json", map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
}

// effective reads the isolation profile and whether knestd runs from the
// values over the chart's defaults.
func effective(values map[string]any) (policy.Profile, bool, error) {
	profile := policy.DefaultProfile
	if s, ok := values["isolation"].(string); ok {
		p, err := policy.ParseProfile(s)
		if err != nil {
			return "", false, err
		}
		profile = p
	}
	enabled := true
	if k, ok := values["knestd"].(map[string]any); ok {
		if e, ok := k["enabled"].(bool); ok {
			enabled = e
		}
	}
	return profile, enabled, nil
}

// checkNamespaceFree refuses a namespace that holds another tenant's
// release, and an existing tenant unless upgrading; it reports whether the
// tenant exists.
func checkNamespaceFree(releases *install.Client, name, ns string, upgrade bool) (bool, error) {
	rels, err := releases.List()
	if err != nil {
		return false, err
	}
	for _, r := range rels {
		if r.Name != name {
			return false, fmt.Errorf("namespace %s holds tenant %s: one tenant per namespace (choose another with -n)", ns, r.Name)
		}
		if !upgrade {
			return false, fmt.Errorf("tenant %s exists in namespace %s (release %s): 'knest create %s -n %s --upgrade' changes it, 'knest delete %s -n %s' removes it",
				name, ns, r.Status, name, ns, name, ns)
		}
		return true, nil
	}
	return false, nil
}

// setServiceCIDR sets knestd.serviceCIDR from the host's default
// ServiceCIDR unless the values set it: tenant Services carry host
// ClusterIPs, so the tenant must accept the host's range.
func setServiceCIDR(ctx context.Context, host kubernetes.Interface, values map[string]any, progress func(string)) error {
	k, _ := values["knestd"].(map[string]any)
	if k == nil {
		k = map[string]any{}
		values["knestd"] = k
	}
	if _, set := k["serviceCIDR"]; set {
		return nil
	}
	sc, err := host.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		progress(fmt.Sprintf("Cannot read the host's service CIDR (%v): assuming the chart's default; set knestd.serviceCIDR if the host uses another", err))
		return nil
	}
	for _, c := range sc.Spec.CIDRs {
		// The tenant API server takes one range; the IPv4 one on a
		// dual-stack host, where Services get an IPv4 ClusterIP first.
		if ip, _, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
			k["serviceCIDR"] = c
			progress("Host service CIDR: " + c)
			return nil
		}
	}
	if len(sc.Spec.CIDRs) > 0 {
		k["serviceCIDR"] = sc.Spec.CIDRs[0]
		progress("Host service CIDR: " + sc.Spec.CIDRs[0])
	}
	return nil
}

// policyValues returns the values' policy map, made if missing.
func policyValues(values map[string]any) map[string]any {
	p, _ := values["policy"].(map[string]any)
	if p == nil {
		p = map[string]any{}
		values["policy"] = p
	}
	return p
}

// defaultStorageClassAnnotation marks the host's default StorageClass.
const defaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// setStorageDefault sets policy.storage.default (and classes) from the
// host's default StorageClass unless the values name a storage policy:
// tenant claims that name no class then get it, and knestd's namespaced
// identity, which cannot read StorageClasses, need not guess.
func setStorageDefault(ctx context.Context, host kubernetes.Interface, values map[string]any, progress func(string)) {
	pol := policyValues(values)
	if _, set := pol["storage"]; set {
		return
	}
	list, err := host.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		progress(fmt.Sprintf("Cannot read the host's StorageClasses (%v): tenant claims get the host's default class; set policy.storage to allow named classes", err))
		return
	}
	for _, sc := range list.Items {
		if sc.Annotations[defaultStorageClassAnnotation] == "true" {
			pol["storage"] = map[string]any{"default": sc.Name, "classes": []any{sc.Name}}
			progress("Tenant claims get the host's default StorageClass " + sc.Name)
			return
		}
	}
	progress("The host has no default StorageClass: tenant claims must name an allowed class (policy.storage.classes)")
}

// setHostnames makes hosts, if any, the values' exposure.hostnames.
func setHostnames(values map[string]any, hosts []string) {
	if len(hosts) == 0 {
		return
	}
	ex, _ := values["exposure"].(map[string]any)
	if ex == nil {
		ex = map[string]any{}
	}
	var list []any
	for _, h := range hosts {
		list = append(list, h)
	}
	ex["hostnames"] = list
	values["exposure"] = ex
}
