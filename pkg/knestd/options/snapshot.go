package options

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// addSnapshotFlags registers the snapshot and restore flags.
func (o *Options) addSnapshotFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SnapshotKeyFile, "snapshot-key-file", o.SnapshotKeyFile, "File holding the base64 32-byte key that seals this tenant's snapshots (default: <data-dir>/snapshot.key, created at the first start with mode 0600). Keep it from the tenant: whoever holds it can read and forge snapshots.")
	fs.StringVar(&o.SnapshotKeySecret, "snapshot-key-secret", o.SnapshotKeySecret, "Host Secret, in --host-namespace, holding the snapshot key (key \"key\"), instead of --snapshot-key-file: created at the first start (with the key of <data-dir>/snapshot.key when that file exists), read at every start. Keeps the key off the data volume.")
	fs.StringVar(&o.RestoreFrom, "restore-from", o.RestoreFrom, "Snapshot file to start a fresh data dir from (sealed with --snapshot-key-file). Refused when the data dir already holds another tenant; starting again from the same snapshot after it was restored is a no-op.")
}

// validateSnapshot checks the snapshot key flags.
func (o Options) validateSnapshot() []error {
	if o.SnapshotKeySecret == "" {
		return nil
	}
	var errs []error
	if o.SnapshotKeyFile != "" {
		errs = append(errs, errors.New("--snapshot-key-secret and --snapshot-key-file both name the snapshot key: choose one"))
	}
	if o.HostNamespace == "" {
		errs = append(errs, errors.New("--snapshot-key-secret names an object in the host namespace: it needs --host-namespace"))
	}
	if msgs := validation.IsDNS1123Subdomain(o.SnapshotKeySecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--snapshot-key-secret %q is not a valid name: %s", o.SnapshotKeySecret, strings.Join(msgs, "; ")))
	}
	return errs
}

// SnapshotKeyPath is the snapshot key file in use.
func (o Options) SnapshotKeyPath() string {
	if o.SnapshotKeyFile != "" {
		return o.SnapshotKeyFile
	}
	return filepath.Join(o.DataDir, "snapshot.key")
}
