package knestd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	kversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/etcd"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/snapshot"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Paths of the snapshot endpoint on the tenant API server. They are
// non-resource URLs behind the API server's authentication and
// authorization: RBAC grants them by path and verb (get: take and download
// a snapshot; post: restore one in place), which the tenant's
// cluster-admin and the operator's admin identity have and nobody else
// unless a cluster-admin grants it.
const (
	SnapshotPath       = "/knest/snapshot"
	RestoreStatusPath  = "/knest/snapshot/restore"
	restoreStagingName = "restore-staging"
	restoreReadyName   = "restore-ready"
	restoreRecordName  = "restore.json"
	lastRestoreName    = "last-restore.json"
	etcdBeforeRestore  = "etcd.before-restore"
)

// errRestart is how the snapshot step asks Run to re-execute knestd onto a
// restored data directory: one control plane per process.
var errRestart = errors.New("restarting onto restored data")

// errRestartCA asks Run to re-execute knestd after a CA rotation changed
// the CA files the components read when they start.
var errRestartCA = errors.New("restarting onto the rotated cluster CA")

// RestoreRecord describes a restore: written with the staged data, and
// kept as last-restore.json once applied.
type RestoreRecord struct {
	ID         string `json:"restoreID"`
	SnapshotID string `json:"snapshotID"`
	Tenant     string `json:"tenant"`
	// Revision is the etcd revision of the snapshot; the restored etcd
	// continues from a higher one (see etcd.Restore).
	Revision int64 `json:"revision"`
	// SourceSHA256 is the digest of the sealed file, for --restore-from.
	SourceSHA256 string `json:"sourceSHA256,omitempty"`
	// CloneOf is the tenant a clone's snapshot was taken of: the data
	// came from there, the PKI and service-account key stayed this
	// tenant's own.
	CloneOf string    `json:"cloneOf,omitempty"`
	Applied time.Time `json:"applied,omitzero"`
}

// snapshots serves the snapshot endpoint.
type snapshots struct {
	o    options.Options
	key  []byte
	inst *controlplane.Instance
	// host is the host client when knestd syncs (a clone reads its
	// source's key from there).
	host kubernetes.Interface
	// serving is set once the control plane is ready.
	serving bool
	// mu allows one snapshot or restore at a time.
	mu      sync.Mutex
	restart chan error
}

func (s *snapshots) handlers() map[string]http.Handler {
	return map[string]http.Handler{
		SnapshotPath:      http.HandlerFunc(s.serveSnapshot),
		RestoreStatusPath: http.HandlerFunc(s.serveRestoreStatus),
	}
}

func (s *snapshots) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	// The filter chain authenticated and authorized the caller; a request
	// without a user never got here, but a handler does not rely on that.
	u, ok := request.UserFrom(r.Context())
	if !ok || u.GetName() == "" {
		http.Error(w, "snapshot: no authenticated user", http.StatusUnauthorized)
		return
	}
	if !s.mu.TryLock() {
		http.Error(w, "snapshot: another snapshot or restore is in progress", http.StatusConflict)
		return
	}
	defer s.mu.Unlock()
	if !s.serving {
		http.Error(w, "snapshot: the control plane is not ready yet", http.StatusServiceUnavailable)
		return
	}
	logger := klog.FromContext(r.Context()).WithValues("user", u.GetName())
	switch r.Method {
	case http.MethodGet:
		s.create(logger, w, r)
	case http.MethodPost:
		s.restoreInPlace(logger, w, r)
	default:
		http.Error(w, "snapshot: GET takes a snapshot, POST restores one", http.StatusMethodNotAllowed)
	}
}

// create streams a sealed snapshot to the client. A failure after the
// first byte aborts the response, so the client sees a broken download,
// never a short file that looks complete (and restore refuses a short file
// anyway: its last chunk is missing).
func (s *snapshots) create(logger klog.Logger, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tmp, err := os.MkdirTemp(s.o.DataDir, "snapshot-tmp-")
	if err != nil {
		http.Error(w, "snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.RemoveAll(tmp)
	m, files, err := s.collect(r.Context(), tmp)
	if err != nil {
		logger.Error(err, "Snapshot failed")
		http.Error(w, "snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Knest-Snapshot-Id", m.ID)
	w.Header().Set("X-Knest-Snapshot-Tenant", m.Tenant)
	w.Header().Set("X-Knest-Snapshot-Revision", strconv.FormatInt(m.EtcdRevision, 10))
	w.Header().Set("X-Knest-Snapshot-Etcd-Bytes", strconv.FormatInt(m.EtcdBytes, 10))
	w.WriteHeader(http.StatusOK)
	sealed, err := snapshot.Seal(w, s.key)
	if err == nil {
		if err = snapshot.WriteArchive(sealed, m, files); err == nil {
			err = sealed.Close()
		}
	}
	if err != nil {
		logger.Error(err, "Snapshot failed while streaming")
		panic(http.ErrAbortHandler)
	}
	logger.Info("Snapshot taken", "id", m.ID, "revision", m.EtcdRevision, "etcdBytes", m.EtcdBytes, "took", time.Since(start).Round(time.Millisecond).String())
}

// collect takes the etcd snapshot into tmp and lists what the archive holds.
func (s *snapshots) collect(ctx context.Context, tmp string) (snapshot.Manifest, []snapshot.File, error) {
	db := filepath.Join(tmp, snapshot.EtcdName)
	rev, err := etcd.Save(ctx, s.inst.EtcdURL, db)
	if err != nil {
		return snapshot.Manifest{}, nil, err
	}
	info, err := os.Stat(db)
	if err != nil {
		return snapshot.Manifest{}, nil, err
	}
	files := []snapshot.File{{Name: snapshot.EtcdName, Path: db}}
	entries, err := os.ReadDir(s.inst.Layout.PKI)
	if err != nil {
		return snapshot.Manifest{}, nil, err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, snapshot.File{Name: snapshot.PKIDir + "/" + e.Name(), Path: filepath.Join(s.inst.Layout.PKI, e.Name())})
		}
	}
	keyFile := filepath.Join(tmp, snapshot.EncryptionKeyName)
	if err := atomicfile.Write(keyFile, encodeKey(s.inst.EncryptionKey), 0o600); err != nil {
		return snapshot.Manifest{}, nil, err
	}
	values, err := json.MarshalIndent(s.o, "", "  ")
	if err != nil {
		return snapshot.Manifest{}, nil, err
	}
	valuesFile := filepath.Join(tmp, snapshot.ValuesName)
	if err := atomicfile.Write(valuesFile, values, 0o600); err != nil {
		return snapshot.Manifest{}, nil, err
	}
	files = append(files, snapshot.File{Name: snapshot.EncryptionKeyName, Path: keyFile}, snapshot.File{Name: snapshot.ValuesName, Path: valuesFile})
	m := snapshot.Manifest{
		Format: snapshot.FormatVersion, ID: newID(), Tenant: s.o.Name, Created: time.Now().UTC().Truncate(time.Second),
		KubernetesVersion: kversion.Get().GitVersion, KnestVersion: knestVersion(),
		EtcdRevision: rev, EtcdBytes: info.Size(),
	}
	return m, files, nil
}

// restoreInPlace verifies and stages the uploaded snapshot, answers, and
// has knestd re-execute itself onto it. Nothing of the running tenant
// changes unless the whole file authenticated and checked out.
func (s *snapshots) restoreInPlace(logger klog.Logger, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	current, err := etcd.Revision(r.Context(), s.inst.EtcdURL)
	if err != nil {
		http.Error(w, "restore: "+err.Error(), http.StatusInternalServerError)
		return
	}
	key, clone := s.key, false
	if name := r.URL.Query().Get("cloneKeySecret"); name != "" {
		if key, err = s.cloneKey(r.Context(), name); err != nil {
			logger.Info("Clone refused", "reason", err.Error())
			http.Error(w, "clone refused, the tenant is unchanged: "+err.Error(), http.StatusBadRequest)
			return
		}
		clone = true
	}
	rec, err := stage(r.Body, key, s.o, current, s.inst.EncryptionKey, clone)
	if err != nil {
		logger.Info("Restore refused", "reason", err.Error())
		http.Error(w, "restore refused, the tenant is unchanged: "+err.Error(), http.StatusBadRequest)
		return
	}
	// No other snapshot or restore until the restart.
	s.serving = false
	logger.Info("Restore staged, restarting onto it", "restoreID", rec.ID, "snapshotID", rec.SnapshotID,
		"revision", rec.Revision, "took", time.Since(start).Round(time.Millisecond).String())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(rec)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Restart once this response is out: stopping the API server waits
	// for requests in flight, this one included.
	go func() {
		time.Sleep(200 * time.Millisecond)
		s.restart <- errRestart
	}()
}

func (s *snapshots) serveRestoreStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	// Not before knestd is ready: a client waiting for a restore waits
	// for the whole control plane, not only its API server.
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	if !serving {
		http.Error(w, "the control plane is not ready yet", http.StatusServiceUnavailable)
		return
	}
	data, err := os.ReadFile(filepath.Join(s.o.DataDir, lastRestoreName))
	if errors.Is(err, fs.ErrNotExist) {
		data = []byte("{}")
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// cloneKey reads the snapshot key of a clone's source tenant from host
// Secret tenant.CloneKeySecretName, which only the operator can have put
// in this tenant's host namespace (`knest create --from-snapshot` does).
// No other name is accepted: the endpoint must not read other Secrets.
func (s *snapshots) cloneKey(ctx context.Context, name string) ([]byte, error) {
	if name != tenant.CloneKeySecretName {
		return nil, fmt.Errorf("a clone's key is read from host Secret %s only", tenant.CloneKeySecretName)
	}
	if s.host == nil {
		return nil, errors.New("this knestd has no host namespace to read a clone's key from")
	}
	key, err := tenant.SnapshotKey(ctx, s.host, s.o.HostNamespace, name)
	if err != nil {
		return nil, err
	}
	return key, nil
}

// stage opens, verifies and unpacks a sealed snapshot into the data
// directory's staging area, restores its etcd data there, and moves the
// result to restore-ready, where the next start applies it. The running
// tenant's data is not touched. runningKey, if set, is the secrets key the
// restored data must have been encrypted with.
//
// A clone's snapshot (clone) comes from another tenant: its data is
// restored, its PKI and service-account key are not (this tenant keeps its
// own, so the source's credentials never work here).
func stage(sealed io.Reader, key []byte, o options.Options, minRevision int64, runningKey []byte, clone bool) (RestoreRecord, error) {
	staging := filepath.Join(o.DataDir, restoreStagingName)
	if err := os.RemoveAll(staging); err != nil {
		return RestoreRecord{}, err
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return RestoreRecord{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
		}
	}()
	digest := sha256.New()
	opened, err := snapshot.Open(io.TeeReader(sealed, digest), key)
	if err != nil {
		return RestoreRecord{}, err
	}
	m, err := snapshot.Extract(opened, staging)
	if err != nil {
		return RestoreRecord{}, err
	}
	if err := checkManifest(m, o.Name, clone); err != nil {
		return RestoreRecord{}, err
	}
	if clone {
		// The snapshot's PKI stays out of the staged data.
		if err := os.RemoveAll(filepath.Join(staging, snapshot.PKIDir)); err != nil {
			return RestoreRecord{}, err
		}
	}
	snapKey, err := encryption.LoadKey(filepath.Join(staging, snapshot.EncryptionKeyName))
	if err != nil {
		return RestoreRecord{}, fmt.Errorf("the snapshot's secrets key: %w", err)
	}
	if runningKey != nil && !bytes.Equal(snapKey, runningKey) {
		return RestoreRecord{}, errors.New("the snapshot's Secrets are encrypted with another key than this knestd's: restore it with that key configured (--encryption-key-file or --encryption-key-secret)")
	}
	db := filepath.Join(staging, snapshot.EtcdName)
	if err := etcd.Restore(etcd.Options{Dir: filepath.Join(staging, "etcd"), Name: o.Name}, db, minRevision); err != nil {
		return RestoreRecord{}, err
	}
	if err := os.Remove(db); err != nil {
		return RestoreRecord{}, err
	}
	rec := RestoreRecord{ID: newID(), SnapshotID: m.ID, Tenant: o.Name, Revision: m.EtcdRevision, SourceSHA256: hex.EncodeToString(digest.Sum(nil))}
	if clone {
		rec.CloneOf = m.Tenant
	}
	data, _ := json.Marshal(rec)
	if err := atomicfile.Write(filepath.Join(staging, restoreRecordName), data, 0o600); err != nil {
		return RestoreRecord{}, err
	}
	ready := filepath.Join(o.DataDir, restoreReadyName)
	if err := os.RemoveAll(ready); err != nil {
		return RestoreRecord{}, err
	}
	if err := os.Rename(staging, ready); err != nil {
		return RestoreRecord{}, err
	}
	ok = true
	return rec, nil
}

// checkManifest refuses what this knestd must not restore.
func checkManifest(m snapshot.Manifest, tenant string, clone bool) error {
	if m.Tenant != tenant && !clone {
		return fmt.Errorf("the snapshot is of tenant %q, this knestd serves %q: a snapshot restores onto its own tenant", m.Tenant, tenant)
	}
	running := kversion.Get().GitVersion
	if newer, err := versionNewer(m.KubernetesVersion, running); err != nil {
		return fmt.Errorf("the snapshot's Kubernetes version: %w", err)
	} else if newer {
		return fmt.Errorf("the snapshot is of Kubernetes %s, newer than this knestd's %s: restore it with a knestd at least as new", m.KubernetesVersion, running)
	}
	if newer, err := versionNewer(m.KnestVersion, knestVersion()); err == nil && newer {
		return fmt.Errorf("the snapshot was taken by knest %s, newer than this knestd's %s", m.KnestVersion, knestVersion())
	}
	return nil
}

// versionNewer says whether a is a newer release (major.minor.patch) than b.
func versionNewer(a, b string) (bool, error) {
	va, err := version.ParseGeneric(a)
	if err != nil {
		return false, err
	}
	vb, err := version.ParseGeneric(b)
	if err != nil {
		return false, err
	}
	return vb.LessThan(va), nil
}

// knestVersion is the knest module's version from the build; "(devel)" in
// a build from a checkout.
func knestVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// applyPendingRestore moves staged restore data into place before the
// control plane starts. Each move is checked before it is made, so a
// knestd killed in the middle finishes the job at its next start.
func applyPendingRestore(ctx context.Context, o options.Options) (bool, error) {
	ready := filepath.Join(o.DataDir, restoreReadyName)
	data, err := os.ReadFile(filepath.Join(ready, restoreRecordName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	var rec RestoreRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return false, fmt.Errorf("restore: %s: %w", restoreRecordName, err)
	}
	return true, moveRestored(ctx, o, ready, rec)
}

func moveRestored(ctx context.Context, o options.Options, ready string, rec RestoreRecord) error {
	layout := controlplane.LayoutOf(o.DataDir)
	before := filepath.Join(o.DataDir, etcdBeforeRestore)
	if _, err := os.Stat(filepath.Join(ready, "etcd")); err == nil {
		if err := os.RemoveAll(before); err != nil {
			return err
		}
		if _, err := os.Stat(layout.Etcd); err == nil {
			if err := os.Rename(layout.Etcd, before); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
		if err := os.Rename(filepath.Join(ready, "etcd"), layout.Etcd); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.MkdirAll(layout.PKI, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(ready, snapshot.PKIDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(ready, snapshot.PKIDir, e.Name()))
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(e.Name()) == ".key" {
			mode = 0o600
		}
		if err := atomicfile.Write(filepath.Join(layout.PKI, e.Name()), b, mode); err != nil {
			return err
		}
	}
	// With the key in the data directory (no --encryption-key-file or
	// --encryption-key-secret), the snapshot's key is the one to use. A
	// key kept elsewhere was compared before staging (in place) or is the
	// operator's to match (--restore-from).
	if o.EncryptionKeyFile == "" {
		if key, err := os.ReadFile(filepath.Join(ready, snapshot.EncryptionKeyName)); err == nil {
			if err := atomicfile.Write(layout.EncryptionKey, key, 0o600); err != nil {
				return err
			}
		}
	}
	rec.Applied = time.Now().UTC()
	data, _ := json.Marshal(rec)
	if err := atomicfile.Write(filepath.Join(o.DataDir, lastRestoreName), data, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(ready); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Restored the tenant's data from a snapshot", "restoreID", rec.ID, "snapshotID", rec.SnapshotID, "revision", rec.Revision)
	return nil
}

// restoreFrom starts a fresh data directory from a snapshot file
// (--restore-from). Starting again with the same file after it was restored
// is a no-op; a data directory holding anything else is refused.
func restoreFrom(ctx context.Context, o options.Options) error {
	key, err := snapshot.LoadKey(o.SnapshotKeyPath())
	if err != nil {
		return fmt.Errorf("--restore-from needs the tenant's snapshot key (--snapshot-key-file): %w", err)
	}
	layout := controlplane.LayoutOf(o.DataDir)
	if entries, _ := os.ReadDir(layout.Etcd); len(entries) > 0 {
		sum, err := fileSHA256(o.RestoreFrom)
		if err != nil {
			return fmt.Errorf("--restore-from: %w", err)
		}
		var last RestoreRecord
		if data, err := os.ReadFile(filepath.Join(o.DataDir, lastRestoreName)); err == nil {
			_ = json.Unmarshal(data, &last)
		}
		if last.SourceSHA256 == sum {
			klog.FromContext(ctx).Info("The data dir was restored from this snapshot already", "restoreFrom", o.RestoreFrom, "restoreID", last.ID)
			return nil
		}
		return fmt.Errorf("--restore-from: data dir %s already holds a tenant: --restore-from starts a fresh data dir (restore a running tenant in place with knest snapshot restore)", o.DataDir)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	f, err := os.Open(o.RestoreFrom)
	if err != nil {
		return fmt.Errorf("--restore-from: %w", err)
	}
	defer f.Close()
	var runningKey []byte
	if o.EncryptionKeyFile != "" {
		if runningKey, err = encryption.LoadKey(o.EncryptionKeyFile); err != nil {
			return err
		}
	}
	if _, err := stage(f, key, o, 0, runningKey, false); err != nil {
		return fmt.Errorf("--restore-from %s refused: %w", o.RestoreFrom, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeReplacedData deletes the etcd data a restore replaced, once the
// restored control plane is up.
func removeReplacedData(ctx context.Context, dataDir string) error {
	before := filepath.Join(dataDir, etcdBeforeRestore)
	if _, err := os.Stat(before); err != nil {
		return nil
	}
	klog.FromContext(ctx).Info("Removing the etcd data a restore replaced", "dir", before)
	return os.RemoveAll(before)
}

// reexec replaces the process with a new knestd on the same arguments and
// environment: same PID, so a supervisor (kubelet, systemd) sees no exit.
func reexec() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	klog.Flush()
	return syscall.Exec(exe, os.Args, os.Environ())
}

func encodeKey(key []byte) []byte { return tenant.EncodeKey(key) }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}
