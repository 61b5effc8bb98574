// Package snapshot is `knest snapshot`: take a tenant's sealed snapshot
// from its knestd, or restore one in place, through the tenant's admin
// kubeconfig (the endpoint is knestd's, behind the tenant API server's
// authentication and RBAC).
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/cli"
)

// Paths of knestd's snapshot endpoint (pkg/knestd.SnapshotPath; not
// imported, to keep the control plane out of the CLI).
const (
	snapshotPath      = "/knest/snapshot"
	restoreStatusPath = "/knest/snapshot/restore"
)

// NewCommand returns `knest snapshot`.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take or restore a tenant's sealed snapshot",
		Example: `  knest snapshot create --tenant-kubeconfig demo.kubeconfig --to file://demo.snap
  knest snapshot restore --tenant-kubeconfig demo.kubeconfig --from file://demo.snap`,
		Long: `A snapshot holds the tenant's etcd data (taken from the running knestd with
etcd's snapshot API), its PKI, service-account and encryption keys and a
manifest, sealed with the tenant's snapshot key, which stays with knestd: the
file can be kept and restored, not read or altered.`,
	}
	cmd.AddCommand(newCreate(streams), newRestore(streams))
	return cmd
}

// Options are the flags the subcommands share.
type Options struct {
	TenantKubeconfig string
	// Location is the --to or --from URL.
	Location string
	// Timeout bounds waiting for a restored knestd.
	Timeout time.Duration
}

func newCreate(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "create --tenant-kubeconfig FILE --to file://PATH",
		Short: "Take a snapshot of a running tenant",
		Example: `  # Sealed with the tenant's snapshot key, which never leaves knestd
  knest snapshot create --tenant-kubeconfig demo.kubeconfig --to file:///backups/demo-$(date +%F).snap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Create(cmd.Context(), streams, o)
		},
	}
	cmd.Flags().StringVar(&o.TenantKubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant (required).")
	cmd.Flags().StringVar(&o.Location, "to", "", "Where the snapshot goes: file://PATH or a path (required).")
	return cmd
}

func newRestore(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "restore --tenant-kubeconfig FILE --from file://PATH",
		Short: "Restore a snapshot onto its running tenant, in place",
		Example: `  # Verified whole before anything changes; knestd restarts onto it
  knest snapshot restore --tenant-kubeconfig demo.kubeconfig --from file:///backups/demo-2026-12-06.snap`,
		Long: `Uploads the snapshot to the tenant's knestd, which verifies the whole file
(its seal, its tenant, its versions) before it changes anything, then restarts
itself onto the restored data. The command waits until the restored control
plane serves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Restore(cmd.Context(), streams, o)
		},
	}
	cmd.Flags().StringVar(&o.TenantKubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant (required).")
	cmd.Flags().StringVar(&o.Location, "from", "", "The snapshot: file://PATH or a path (required).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long to wait for the restored control plane.")
	return cmd
}

// filePath turns a --to/--from value into a local path.
func filePath(flag, location string) (string, error) {
	if location == "" {
		return "", fmt.Errorf("%s is required", flag)
	}
	if !strings.Contains(location, "://") {
		return location, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, location, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("%s %q: only file:// targets are supported here", flag, location)
	}
	p := u.Path
	if u.Host != "" {
		// file://relative/path
		p = filepath.Join(u.Host, u.Path)
	}
	return p, nil
}

type endpoint struct {
	base   string
	client *http.Client
}

func connect(kubeconfig string) (endpoint, error) {
	if kubeconfig == "" {
		return endpoint{}, errors.New("--tenant-kubeconfig is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return endpoint{}, fmt.Errorf("--tenant-kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{base: strings.TrimSuffix(cfg.Host, "/"), client: client}, nil
}

// Create downloads a new snapshot to the --to file. The file appears only
// once the download completed.
func Create(ctx context.Context, streams cli.Streams, o Options) error {
	path, err := filePath("--to", o.Location)
	if err != nil {
		return err
	}
	ep, err := connect(o.TenantKubeconfig)
	if err != nil {
		return err
	}
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
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	p := newProgress(streams.ErrOut, "Downloaded")
	_, err = io.Copy(f, io.TeeReader(resp.Body, p))
	p.done()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(part)
		return fmt.Errorf("the snapshot download broke off, no file written: %w", err)
	}
	if err := os.Rename(part, path); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Snapshot %s (etcd revision %s) written to %s: %d bytes in %s\n",
		resp.Header.Get("X-Knest-Snapshot-Id"), resp.Header.Get("X-Knest-Snapshot-Revision"), path, p.n,
		time.Since(start).Round(time.Millisecond))
	return nil
}

// restoreStatus is what knestd answers about restores.
type restoreStatus struct {
	ID         string `json:"restoreID"`
	SnapshotID string `json:"snapshotID"`
	Revision   int64  `json:"revision"`
}

// Restore uploads the --from snapshot and waits until the tenant's knestd
// runs on it.
func Restore(ctx context.Context, streams cli.Streams, o Options) error {
	path, err := filePath("--from", o.Location)
	if err != nil {
		return err
	}
	ep, err := connect(o.TenantKubeconfig)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	start := time.Now()
	p := newProgress(streams.ErrOut, "Uploaded")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+snapshotPath, io.TeeReader(f, p))
	if err != nil {
		return err
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := ep.client.Do(req)
	p.done()
	if err != nil {
		return fmt.Errorf("failed to reach the tenant's knestd: %w", err)
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
	if err := waitRestored(ctx, ep, st.ID, o.Timeout); err != nil {
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
