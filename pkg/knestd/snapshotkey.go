package knestd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/snapshot"
	"github.com/knest-dev/knest/pkg/tenant"
)

// resolveSnapshotKey reads the snapshot key from --snapshot-key-secret
// (creating the Secret at the first start) into a private file in the
// temporary directory (the pod's memory volume), which o then names as
// --snapshot-key-file, before anything needs the key (--restore-from
// opens a snapshot before the control plane starts). A data dir that kept
// its key in <data-dir>/snapshot.key (a tenant from before the chart kept
// it in a Secret) hands that key to the new Secret, so its snapshots keep
// opening. The returned function removes the file.
func resolveSnapshotKey(ctx context.Context, o options.Options) (options.Options, func(), error) {
	if o.SnapshotKeySecret == "" {
		return o, func() {}, nil
	}
	cfg, err := hostRESTConfig(o)
	if err != nil {
		return o, func() {}, err
	}
	host, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return o, func() {}, err
	}
	inDataDir := filepath.Join(o.DataDir, "snapshot.key")
	key, err := tenant.EnsureSnapshotKey(ctx, host, o.HostNamespace, o.SnapshotKeySecret, o.Name, func() ([]byte, error) {
		if _, err := os.Stat(inDataDir); err == nil {
			klog.FromContext(ctx).Info("Moving the snapshot key into its host Secret", "file", inDataDir, "secret", klog.KRef(o.HostNamespace, o.SnapshotKeySecret))
			return snapshot.LoadKey(inDataDir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		key := make([]byte, snapshot.KeySize)
		_, err := rand.Read(key)
		return key, err
	})
	if err != nil {
		return o, func() {}, err
	}
	dir, err := os.MkdirTemp("", "knestd-snapshot-key-")
	if err != nil {
		return o, func() {}, fmt.Errorf("failed to create a directory for the snapshot key: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	o.SnapshotKeyFile = filepath.Join(dir, "snapshot.key")
	if err := atomicfile.Write(o.SnapshotKeyFile, tenant.EncodeKey(key), 0o600); err != nil {
		cleanup()
		return o, func() {}, err
	}
	return o, cleanup, nil
}
