// Package snapshot is `knest snapshot`: take a tenant's sealed snapshot
// from its knestd and store it (a file or directory, an OCI registry), list
// stored snapshots, or restore one in place. The tenant is reached by name
// through the host (its published admin kubeconfig) or through an admin
// kubeconfig; the endpoint is knestd's, behind the tenant API server's
// authentication and RBAC.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
)

// Paths of knestd's snapshot endpoint (pkg/knestd.SnapshotPath; not
// imported, to keep the control plane out of the CLI).
const (
	snapshotPath      = "/knest/snapshot"
	restoreStatusPath = "/knest/snapshot/restore"
)

// StoreEnv names the default place for snapshots: a directory
// (file://DIR or a path) or an OCI repository (oci://REGISTRY/REPOSITORY).
// Without it, the current directory.
const StoreEnv = "KNEST_SNAPSHOTS"

// NewCommand returns `knest snapshot`.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take, list or restore a tenant's sealed snapshots",
		Example: `  knest snapshot create demo --to oci://registry.example.com/backups/demo
  knest snapshot list demo --in oci://registry.example.com/backups/demo
  knest snapshot restore demo --from oci://registry.example.com/backups/demo:20261206-150405-0123456789abcdef
  knest snapshot create --tenant-kubeconfig demo.kubeconfig --to file://demo.snap`,
		Long: `A snapshot holds the tenant's etcd data (taken from the running knestd with
etcd's snapshot API), its PKI, service-account and encryption keys and a
manifest, sealed with the tenant's snapshot key, which stays with knestd: the
file can be kept and restored, not read or altered.

A tenant is reached by name through the host (the admin kubeconfig its knestd
published there, at the address 'knest connect' would use), or through an
admin kubeconfig (--tenant-kubeconfig), wherever the tenant runs.

Snapshots go to and come from a file or directory (file://PATH or a path) or
an OCI registry (oci://REGISTRY/REPOSITORY[:TAG], credentials from
'docker login' or 'oras login'), or an S3-compatible store (s3://BUCKET/KEY or
s3://BUCKET/PREFIX/, credentials and region from the usual AWS environment
variables, --s3-endpoint or $AWS_ENDPOINT_URL_S3 for a store other
than AWS). $` + StoreEnv + ` sets the default place.`,
	}
	cmd.AddCommand(newCreate(streams), newRestore(streams), newList(streams))
	return cmd
}

// Options are the flags the subcommands share.
type Options struct {
	TenantKubeconfig string
	// Tenant finds a tenant named on the command line through the host.
	Tenant connect.TenantFlags
	// Location is the --to, --from or --in URL.
	Location string
	OCI      ociOptions
	// Timeout bounds waiting for a restored knestd.
	Timeout time.Duration
}

func (o *Options) addFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.TenantKubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant, instead of naming the tenant on the host.")
	o.Tenant.AddFlags(f)
	o.addStoreFlags(c)
	c.ValidArgsFunction = cli.CompleteTenants(&o.Tenant.Host, &o.Tenant.Namespace)
}

func (o *Options) addStoreFlags(c *cobra.Command) {
	c.Flags().BoolVar(&o.OCI.PlainHTTP, "plain-http", false, "Talk plain HTTP to an oci:// registry (a local or in-cluster registry).")
	c.Flags().StringVar(&o.OCI.RegistryConfig, "registry-config", "", "Registry credentials file (default: Docker's config, where 'docker login' and 'oras login' write).")
	c.Flags().StringVar(&o.OCI.S3Endpoint, "s3-endpoint", "", "URL of an S3-compatible store for s3:// (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS); credentials from $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY/$AWS_SESSION_TOKEN, region from $AWS_REGION.")
}

// defaultStore is $KNEST_SNAPSHOTS, else the current directory.
func defaultStore() string {
	if s := os.Getenv(StoreEnv); s != "" {
		return s
	}
	return "." + string(filepath.Separator)
}

func newCreate(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "create [TENANT] [--to URL] | create --tenant-kubeconfig FILE [--to URL]",
		Short: "Take a snapshot of a running tenant",
		Example: `  # Sealed with the tenant's snapshot key, which never leaves knestd
  knest snapshot create demo                                   # ./demo-<id>.knest
  knest snapshot create demo --to oci://registry.example.com/backups/demo
  knest snapshot create --tenant-kubeconfig demo.kubeconfig --to file:///backups/demo-$(date +%F).snap`,
		Long: `Takes a snapshot from the tenant's running knestd and stores it: at --to when
it names a file or an OCI tag, as TENANT-ID.knest in a directory, under the tag
ID in an OCI repository. Without --to, in $` + StoreEnv + ` or the current
directory. Progress shows on stderr for large snapshots.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Create(cmd.Context(), streams, argName(args), o)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.Location, "to", "", "Where the snapshot goes: file://PATH, a path, a directory, oci://REGISTRY/REPOSITORY[:TAG], s3://BUCKET/KEY or s3://BUCKET/PREFIX/ (default: $"+StoreEnv+", else the current directory).")
	return cmd
}

func newRestore(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "restore [TENANT] --from URL | restore --tenant-kubeconfig FILE --from URL",
		Short: "Restore a snapshot onto its running tenant, in place",
		Example: `  # Verified whole before anything changes; knestd restarts onto it
  knest snapshot restore demo --from oci://registry.example.com/backups/demo:20261206-150405-0123456789abcdef
  knest snapshot restore --tenant-kubeconfig demo.kubeconfig --from file:///backups/demo-2026-12-06.snap`,
		Long: `Uploads the snapshot to the tenant's knestd, which verifies the whole file
(its seal, its tenant, its versions) before it changes anything, then restarts
itself onto the restored data. The command waits until the restored control
plane serves.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Restore(cmd.Context(), streams, argName(args), o)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.Location, "from", "", "The snapshot: file://PATH, a path, oci://REGISTRY/REPOSITORY:TAG or s3://BUCKET/KEY (required).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long to wait for the restored control plane.")
	return cmd
}

func newList(streams cli.Streams) *cobra.Command {
	var o Options
	var output string
	cmd := &cobra.Command{
		Use:   "list [TENANT] [--in URL]",
		Short: "List the snapshots in a directory or an OCI repository",
		Example: `  knest snapshot list                       # in $` + StoreEnv + ` or the current directory
  knest snapshot list demo --in /backups
  knest snapshot list --in oci://registry.example.com/backups/demo -o json`,
		Long: `Lists the snapshots (of TENANT, if named) in a directory (TENANT-ID.knest files
and their .json descriptions) or an OCI repository (its tags that are knest
snapshots), newest first. The descriptions are not authenticated; knestd
checks the sealed file itself when it restores one.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return List(cmd.Context(), streams, argName(args), o, output)
		},
	}
	o.addStoreFlags(cmd)
	cmd.Flags().StringVar(&o.Location, "in", "", "Directory (file://DIR or a path), oci://REGISTRY/REPOSITORY or s3://BUCKET/PREFIX/ (default: $"+StoreEnv+", else the current directory).")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json, or a table when empty.")
	return cmd
}

func argName(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}

type endpoint struct {
	base   string
	client *http.Client
}

// reach connects to the tenant: by name through the host, or through
// --tenant-kubeconfig. stop ends a port-forward.
func (o Options) reach(ctx context.Context, name string) (endpoint, func(), error) {
	var cfg *rest.Config
	stop := func() {}
	switch {
	case name != "" && o.TenantKubeconfig != "":
		return endpoint{}, nil, errors.New("name the tenant or give --tenant-kubeconfig, not both")
	case name != "":
		var err error
		if cfg, stop, err = connect.Reach(ctx, o.Tenant, name); err != nil {
			return endpoint{}, nil, err
		}
	case o.TenantKubeconfig != "":
		var err error
		if cfg, err = clientcmd.BuildConfigFromFlags("", o.TenantKubeconfig); err != nil {
			return endpoint{}, nil, fmt.Errorf("--tenant-kubeconfig %s: %w", o.TenantKubeconfig, err)
		}
	default:
		return endpoint{}, nil, errors.New("name the tenant (knest snapshot create NAME) or give its admin kubeconfig (--tenant-kubeconfig FILE)")
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		stop()
		return endpoint{}, nil, err
	}
	return endpoint{base: strings.TrimSuffix(cfg.Host, "/"), client: client}, stop, nil
}

// Create takes a new snapshot and stores it (see writeSnapshot). Nothing
// is stored unless the whole snapshot arrived.
func Create(ctx context.Context, streams cli.Streams, name string, o Options) error {
	to := o.Location
	if to == "" {
		to = defaultStore()
	}
	loc, err := parseLocation("--to", to)
	if err != nil {
		return err
	}
	ep, stop, err := o.reach(ctx, name)
	if err != nil {
		return err
	}
	defer stop()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+snapshotPath, nil)
	if err != nil {
		return err
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the tenant's knestd: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError("snapshot", resp)
	}
	info := Info{
		Tenant: resp.Header.Get("X-Knest-Snapshot-Tenant"), ID: resp.Header.Get("X-Knest-Snapshot-Id"),
		Revision: revisionString(resp.Header.Get("X-Knest-Snapshot-Revision")), Created: start.UTC().Truncate(time.Second),
	}
	if info.Tenant == "" {
		info.Tenant = name
	}
	if info.Tenant == "" {
		info.Tenant = "tenant"
	}
	if info.ID == "" {
		info.ID = start.UTC().Format("20060102-150405")
	}
	info, err = writeSnapshot(ctx, loc, o.OCI, resp.Body, info, streams.ErrOut)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Snapshot %s of %s (etcd revision %s) written to %s: %d bytes in %s\n",
		info.ID, info.Tenant, info.Revision, info.Location, info.Size, time.Since(start).Round(time.Millisecond))
	return nil
}

// List prints the snapshots in --in.
func List(ctx context.Context, streams cli.Streams, name string, o Options, output string) error {
	in := o.Location
	if in == "" {
		in = defaultStore()
	}
	loc, err := parseLocation("--in", in)
	if err != nil {
		return err
	}
	infos, err := listSnapshots(ctx, loc, o.OCI, name)
	if err != nil {
		return err
	}
	switch output {
	case "json":
		if infos == nil {
			infos = []Info{}
		}
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	case "":
	default:
		return fmt.Errorf("--output %q: json, or empty for a table", output)
	}
	if len(infos) == 0 {
		fmt.Fprintf(streams.ErrOut, "No snapshots in %s\n", loc)
		return nil
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TENANT\tCREATED\tREVISION\tSIZE\tLOCATION")
	for _, i := range infos {
		created := "-"
		if !i.Created.IsZero() {
			created = i.Created.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", i.Tenant, created, dash(i.Revision), size(i.Size), i.Location)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}

// restoreStatus is what knestd answers about restores.
type restoreStatus struct {
	ID         string `json:"restoreID"`
	SnapshotID string `json:"snapshotID"`
	Revision   int64  `json:"revision"`
}

// Restore uploads the --from snapshot and waits until the tenant's knestd
// runs on it.
func Restore(ctx context.Context, streams cli.Streams, name string, o Options) error {
	loc, err := parseLocation("--from", o.Location)
	if err != nil {
		return err
	}
	ep, stop, err := o.reach(ctx, name)
	if err != nil {
		return err
	}
	defer stop()
	src, err := openSnapshot(ctx, loc, o.OCI)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.info != nil && name != "" && src.info.Tenant != "" && src.info.Tenant != name {
		fmt.Fprintf(streams.ErrOut, "Warning: %s describes itself as a snapshot of %s; knestd checks it\n", loc, src.info.Tenant)
	}
	return upload(ctx, streams, ep, src, "", o.Timeout)
}

// upload sends a snapshot to knestd's restore endpoint (with query, for a
// clone) and waits until the restored knestd serves.
func upload(ctx context.Context, streams cli.Streams, ep endpoint, src source, query string, timeout time.Duration) error {
	start := time.Now()
	p := newProgress(streams.ErrOut, "Uploaded")
	u := ep.base + snapshotPath
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, io.TeeReader(src, p))
	if err != nil {
		return err
	}
	req.ContentLength = src.size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := ep.client.Do(req)
	p.done()
	if err != nil {
		return fmt.Errorf("the upload to the tenant's knestd broke off, the tenant is unchanged: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return responseError("restore", resp)
	}
	var st restoreStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("restore: knestd's answer does not parse: %w", err)
	}
	fmt.Fprintf(streams.ErrOut, "Snapshot %s verified; knestd restarts onto it (restore %s)\n", st.SnapshotID, st.ID)
	if err := waitRestored(ctx, ep, st.ID, timeout); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Restored snapshot %s (etcd revision %d) in %s\n", st.SnapshotID, st.Revision, time.Since(start).Round(time.Millisecond))
	return nil
}

// waitRestored polls knestd until it reports the restore applied and its
// API server is ready. Connection errors are expected while it restarts.
func waitRestored(ctx context.Context, ep endpoint, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		st, err := getStatus(ctx, ep)
		if err == nil && st.ID == id {
			if err = getOK(ctx, ep, "/readyz"); err == nil {
				return nil
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the restored knestd did not come back within %s (last: %v)", timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func getStatus(ctx context.Context, ep endpoint) (restoreStatus, error) {
	var st restoreStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+restoreStatusPath, nil)
	if err != nil {
		return st, err
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, responseError("restore status", resp)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func getOK(ctx context.Context, ep endpoint, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(path, resp)
	}
	return nil
}

func responseError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	var status struct{ Message string }
	if json.Unmarshal(body, &status) == nil && status.Message != "" {
		msg = status.Message
	}
	return fmt.Errorf("%s: %s: %s", what, resp.Status, msg)
}

// progress reports bytes moved on stderr every two seconds, for large
// snapshots.
type progress struct {
	w     io.Writer
	verb  string
	n     int64
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, verb string) *progress {
	return &progress{w: w, verb: verb, last: time.Now()}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.shown = true
		fmt.Fprintf(p.w, "%s %.1f MiB\n", p.verb, float64(p.n)/(1<<20))
	}
	return len(b), nil
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintf(p.w, "%s %.1f MiB, done\n", p.verb, float64(p.n)/(1<<20))
	}
}
