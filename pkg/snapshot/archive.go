package snapshot

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the version of the archive's layout this package writes
// and the newest it reads.
const FormatVersion = 1

// Names of the archive's entries. PKI files go under PKIDir.
const (
	ManifestName      = "manifest.json"
	EtcdName          = "etcd.db"
	EncryptionKeyName = "encryption.key"
	ValuesName        = "values.json"
	PKIDir            = "pki"
)

// Manifest says what a snapshot holds. It is the archive's first entry and,
// like the rest, sealed: readable only with the snapshot key.
type Manifest struct {
	Format            int       `json:"format"`
	ID                string    `json:"id"`
	Tenant            string    `json:"tenant"`
	Created           time.Time `json:"created"`
	KubernetesVersion string    `json:"kubernetesVersion"`
	KnestVersion      string    `json:"knestVersion"`
	// EtcdRevision is the revision of the etcd snapshot: the point in the
	// tenant's history the snapshot is consistent at.
	EtcdRevision int64 `json:"etcdRevision"`
	EtcdBytes    int64 `json:"etcdBytes"`
}

// File is one file to put into an archive.
type File struct {
	// Name is the entry name: one of the names above, or PKIDir/<base>.
	Name string
	// Path is where the file is read from.
	Path string
}

// WriteArchive writes the manifest and files as a tar stream to w.
func WriteArchive(w io.Writer, m Manifest, files []File) error {
	tw := tar.NewWriter(w)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(data)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	for _, f := range files {
		if !validName(f.Name) {
			return fmt.Errorf("snapshot: %q is not an entry name a snapshot may hold", f.Name)
		}
		if err := addFile(tw, f, m.Created); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, f File, mtime time.Time) error {
	file, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o600, Size: info.Size(), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, file); err != nil {
		return fmt.Errorf("snapshot: failed to add %s: %w", f.Name, err)
	}
	return nil
}

var pkiName = regexp.MustCompile(`^` + PKIDir + `/[a-z0-9][a-z0-9.-]*$`)

// validName is the allowlist of entry names: an archive is authenticated
// before it is read, but an entry still never names a path outside the
// directory it is extracted to.
func validName(name string) bool {
	switch name {
	case ManifestName, EtcdName, EncryptionKeyName, ValuesName:
		return true
	}
	return pkiName.MatchString(name) && !strings.Contains(name, "..")
}

// Extract reads a snapshot archive from r into dir (which must exist and be
// empty) and returns its manifest. r is an opened sealed stream: Extract
// reads it to its end, so a nil error means the whole file authenticated.
// On error dir holds a partial extraction the caller removes.
func Extract(r io.Reader, dir string) (Manifest, error) {
	var m Manifest
	tr := tar.NewReader(r)
	first := true
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("snapshot: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !validName(h.Name) || seen[h.Name] {
			return m, fmt.Errorf("snapshot: unexpected entry %q", h.Name)
		}
		seen[h.Name] = true
		if first {
			if h.Name != ManifestName || h.Size > 1<<20 {
				return m, errors.New("snapshot: the archive does not start with its manifest")
			}
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return m, fmt.Errorf("snapshot: the manifest does not parse: %w", err)
			}
			if m.Format > FormatVersion {
				return m, fmt.Errorf("snapshot: format %d is newer than this knestd reads (%d)", m.Format, FormatVersion)
			}
			first = false
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return m, err
		}
		if err := writeEntry(dst, tr); err != nil {
			return m, err
		}
	}
	// The tar stream can end before the sealed stream does: read to the
	// end so that the last chunk and the end of the file are verified.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return m, fmt.Errorf("snapshot: %w", err)
	}
	if first {
		return m, errors.New("snapshot: the archive is empty")
	}
	if !seen[EtcdName] {
		return m, errors.New("snapshot: the archive holds no etcd snapshot")
	}
	return m, nil
}

func writeEntry(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: failed to extract %s: %w", path.Base(dst), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
