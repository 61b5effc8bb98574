package install

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/charts"
)

// ChartName is the name of the knest chart; List only shows its releases.
const ChartName = "knest"

// DefaultTimeout bounds Helm's own waits when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Minute

// ErrNotFound means the namespace holds no release of that name.
var ErrNotFound = errors.New("release not found")

// Client installs the knest chart into one host namespace.
type Client struct {
	cfg       *action.Configuration
	namespace string
	chart     *chart.Chart
}

// New returns a client for a host namespace; "" makes a client whose List
// covers every namespace. debug, when set, receives Helm's debug lines.
func New(host *rest.Config, namespace string, debug func(format string, args ...any)) (*Client, error) {
	chrt, err := charts.Knest()
	if err != nil {
		return nil, fmt.Errorf("failed to load the knest chart: %w", err)
	}
	if debug == nil {
		debug = func(string, ...any) {}
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(newRESTClientGetter(host, namespace), namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("failed to set up Helm for the host cluster: %w", err)
	}
	return &Client{cfg: cfg, namespace: namespace, chart: chrt}, nil
}

// Chart is the chart the client installs.
func (c *Client) Chart() *chart.Chart { return c.chart }

// Options shape an install or an upgrade.
type Options struct {
	// Timeout bounds Helm's own waits; 0 means DefaultTimeout. Waiting
	// for the tenant to be ready is pkg/tenant's.
	Timeout time.Duration
	// Adopt lets the release take over objects of the same names that
	// exist already (dev environments made before the chart managed them).
	Adopt bool
	// Progress gets a line per step; nil means none.
	Progress func(string)
}

func (o Options) timeout() time.Duration {
	if o.Timeout == 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Install installs the chart as release name with vals over its defaults.
func (c *Client) Install(ctx context.Context, name string, vals map[string]any, o Options) (*Release, error) {
	if err := ValidateValues(c.chart, vals); err != nil {
		return nil, err
	}
	act := action.NewInstall(c.cfg)
	act.ReleaseName, act.Namespace = name, c.namespace
	act.Timeout, act.TakeOwnership = o.timeout(), o.Adopt
	o.progress("Installing chart %s %s as release %s in namespace %s", c.chart.Name(), c.chart.Metadata.Version, name, c.namespace)
	rel, err := act.RunWithContext(ctx, c.chart, vals)
	if err != nil {
		return nil, fmt.Errorf("failed to install release %s in namespace %s of host cluster: %w", name, c.namespace, err)
	}
	r, err := newRelease(rel)
	if err == nil {
		o.progress("Installed %s", strings.Join(r.Resources(), ", "))
	}
	return r, err
}

// Upgrade upgrades release name to the chart with vals (replacing the
// values it was installed with) over its defaults.
func (c *Client) Upgrade(ctx context.Context, name string, vals map[string]any, o Options) (*Release, error) {
	if err := ValidateValues(c.chart, vals); err != nil {
		return nil, err
	}
	act := action.NewUpgrade(c.cfg)
	act.Namespace = c.namespace
	act.Timeout, act.TakeOwnership = o.timeout(), o.Adopt
	act.ResetValues = true
	// Every revision is a Secret in the namespace: keep a few.
	act.MaxHistory = 5
	o.progress("Upgrading release %s in namespace %s to chart %s %s", name, c.namespace, c.chart.Name(), c.chart.Metadata.Version)
	rel, err := act.RunWithContext(ctx, name, c.chart, vals)
	if err != nil {
		return nil, fmt.Errorf("failed to upgrade release %s in namespace %s of host cluster: %w", name, c.namespace, err)
	}
	return newRelease(rel)
}

// InstallOrUpgrade installs release name, or upgrades it if it exists.
func (c *Client) InstallOrUpgrade(ctx context.Context, name string, vals map[string]any, o Options) (*Release, error) {
	if _, err := c.Get(name); errors.Is(err, ErrNotFound) {
		return c.Install(ctx, name, vals, o)
	} else if err != nil {
		return nil, err
	}
	return c.Upgrade(ctx, name, vals, o)
}

// Uninstall removes release name and waits until its objects are gone,
// dependents (the StatefulSet's pod, a Service's EndpointSlices) first.
// What the release did not create stays: see pkg/tenant's Remover.
func (c *Client) Uninstall(name string, timeout time.Duration) error {
	act := action.NewUninstall(c.cfg)
	act.Wait, act.Timeout = true, timeout
	act.DeletionPropagation = "foreground"
	if _, err := act.Run(name); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return fmt.Errorf("release %s in namespace %s: %w", name, c.namespace, ErrNotFound)
		}
		return fmt.Errorf("failed to uninstall release %s in namespace %s of host cluster: %w", name, c.namespace, err)
	}
	return nil
}

// Get returns release name, or an error wrapping ErrNotFound.
func (c *Client) Get(name string) (*Release, error) {
	rel, err := action.NewGet(c.cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("release %s in namespace %s: %w", name, c.namespace, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read release %s in namespace %s of host cluster: %w", name, c.namespace, err)
	}
	return newRelease(rel)
}

// List returns the knest releases of the client's namespace (of every
// namespace for a client made with ""), in every state, by namespace and
// name.
func (c *Client) List() ([]*Release, error) {
	act := action.NewList(c.cfg)
	act.AllNamespaces = c.namespace == ""
	act.All = true
	act.SetStateMask()
	rels, err := act.Run()
	if err != nil {
		return nil, fmt.Errorf("failed to list releases in host cluster: %w", err)
	}
	var out []*Release
	for _, rel := range rels {
		if rel.Chart == nil || rel.Chart.Metadata == nil || rel.Chart.Metadata.Name != ChartName {
			continue
		}
		r, err := newRelease(rel)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Release is an installed knest chart.
type Release struct {
	Name, Namespace string
	// Status is Helm's: deployed, failed, pending-install, ...
	Status       string
	Revision     int
	ChartVersion string
	Updated      time.Time
	// Values are the chart's defaults with the release's values over them.
	Values chartutil.Values
	// UserValues are only the values the release was installed or last
	// upgraded with, without the chart's defaults.
	UserValues map[string]any
	// Manifest is what Helm applied.
	Manifest string
}

func newRelease(rel *release.Release) (*Release, error) {
	r := &Release{Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Manifest: rel.Manifest,
		UserValues: rel.Config}
	if rel.Info != nil {
		r.Status = rel.Info.Status.String()
		r.Updated = rel.Info.LastDeployed.Time
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		r.ChartVersion = rel.Chart.Metadata.Version
		vals, err := chartutil.CoalesceValues(rel.Chart, rel.Config)
		if err != nil {
			return nil, fmt.Errorf("release %s/%s: %w", rel.Namespace, rel.Name, err)
		}
		r.Values = vals
	}
	return r, nil
}

// Tenant is the tenant's name: the value "tenant", or the release name.
func (r *Release) Tenant() string {
	if t, _ := r.Values["tenant"].(string); t != "" {
		return t
	}
	return r.Name
}

// Isolation is the release's isolation profile.
func (r *Release) Isolation() string {
	s, _ := r.Values["isolation"].(string)
	return s
}

// KnestdEnabled reports whether the release runs knestd (off in dev
// environments, where knestd is a local process).
func (r *Release) KnestdEnabled() bool {
	v, err := r.Values.PathValue("knestd.enabled")
	b, _ := v.(bool)
	return err == nil && b
}

// Resources lists the release's objects as Kind/name, in the manifest's
// order, which is Helm's install order.
func (r *Release) Resources() []string {
	manifests := releaseutil.SplitManifests(r.Manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var out []string
	for _, k := range keys {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(manifests[k]), &head); err == nil && head.Kind != "" {
			out = append(out, head.Kind+"/"+head.Metadata.Name)
		}
	}
	return out
}
