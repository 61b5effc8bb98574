package options

import (
	"path/filepath"

	"github.com/spf13/pflag"
)

// addSnapshotFlags registers the snapshot and restore flags.
func (o *Options) addSnapshotFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SnapshotKeyFile, "snapshot-key-file", o.SnapshotKeyFile, "File holding the base64 32-byte key that seals this tenant's snapshots (default: <data-dir>/snapshot.key, created at the first start with mode 0600). Keep it from the tenant: whoever holds it can read and forge snapshots.")
	fs.StringVar(&o.RestoreFrom, "restore-from", o.RestoreFrom, "Snapshot file to start a fresh data dir from (sealed with --snapshot-key-file). Refused when the data dir already holds another tenant; starting again from the same snapshot after it was restored is a no-op.")
}

// SnapshotKeyPath is the snapshot key file in use.
func (o Options) SnapshotKeyPath() string {
	if o.SnapshotKeyFile != "" {
		return o.SnapshotKeyFile
	}
	return filepath.Join(o.DataDir, "snapshot.key")
}
