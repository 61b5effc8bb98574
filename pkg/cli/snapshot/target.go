package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Info describes a snapshot where it is stored: the file's sidecar
// (PATH.json) or the OCI manifest's annotations. It is not authenticated:
// it names and lists snapshots; knestd checks the sealed file itself.
type Info struct {
	Tenant   string    `json:"tenant"`
	ID       string    `json:"id"`
	Revision string    `json:"revision,omitempty"`
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	// Location is where the snapshot is, as --from takes it.
	Location string `json:"location"`
}

// fileSuffix names snapshot files in a directory.
const fileSuffix = ".knest"

// defaultName is the name a snapshot gets in a directory or repository:
// TENANT-ID.knest (ID starts with the time it was taken).
func defaultName(info Info) string { return info.Tenant + "-" + info.ID + fileSuffix }

// location is a parsed --to, --from or --in value.
type location struct {
	// kind is "file" or "oci".
	kind string
	// path is the file or directory (file).
	path string
	// repo is REGISTRY/REPOSITORY and tag the tag or digest, if any (oci).
	repo, tag string
	// bucket and key (s3); a key that is empty or ends in "/" is a prefix.
	bucket, key string
}

// parseLocation parses file://PATH, a plain path, or oci://REGISTRY/REPO[:TAG|@DIGEST].
func parseLocation(flag, s string) (location, error) {
	if s == "" {
		return location{}, fmt.Errorf("%s is required", flag)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return location{kind: "file", path: s}, nil
	}
	switch scheme {
	case "file":
		u, err := url.Parse(s)
		if err != nil {
			return location{}, fmt.Errorf("%s %q: %w", flag, s, err)
		}
		p := u.Path
		if u.Host != "" {
			// file://relative/path
			p = filepath.Join(u.Host, u.Path)
		}
		if strings.HasSuffix(rest, "/") && !strings.HasSuffix(p, "/") {
			p += string(filepath.Separator)
		}
		return location{kind: "file", path: p}, nil
	case "s3":
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return location{}, fmt.Errorf("%s %q: want s3://BUCKET[/KEY or /PREFIX/]", flag, s)
		}
		return location{kind: "s3", bucket: bucket, key: key}, nil
	case "oci":
		repo, tag := splitReference(rest)
		if repo == "" || !strings.Contains(repo, "/") {
			return location{}, fmt.Errorf("%s %q: want oci://REGISTRY/REPOSITORY[:TAG]", flag, s)
		}
		return location{kind: "oci", repo: repo, tag: tag}, nil
	default:
		return location{}, fmt.Errorf("%s %q: unsupported target %s:// (file:// or a path, oci://REGISTRY/REPOSITORY[:TAG], s3://BUCKET/KEY)", flag, s, scheme)
	}
}

// splitReference splits REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST; a colon
// before the last slash is the registry's port.
func splitReference(s string) (repo, tag string) {
	if i := strings.Index(s, "@"); i >= 0 {
		return s[:i], s[i+1:]
	}
	slash := strings.LastIndex(s, "/")
	if i := strings.LastIndex(s, ":"); i > slash {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func (l location) String() string {
	if l.kind == "s3" {
		return "s3://" + l.bucket + "/" + l.key
	}
	if l.kind == "oci" {
		if l.tag == "" {
			return "oci://" + l.repo
		}
		sep := ":"
		if strings.Contains(l.tag, ":") {
			sep = "@"
		}
		return "oci://" + l.repo + sep + l.tag
	}
	return "file://" + l.path
}

// writeSnapshot stores the sealed snapshot from r (described by info,
// whose Size and SHA256 are filled in here) at l: l itself when it names a
// file or a tag, a new entry named after the snapshot when it names a
// directory or a repository. It returns where the snapshot went.
func writeSnapshot(ctx context.Context, l location, o ociOptions, r io.Reader, info Info, progressOut io.Writer) (Info, error) {
	switch l.kind {
	case "oci":
		return pushOCI(ctx, l, o, r, info, progressOut)
	case "s3":
		return putS3(ctx, l, o, r, info, progressOut)
	default:
		return writeFile(l.path, r, info, progressOut)
	}
}

// writeFile writes the snapshot to path (into it, when it is a
// directory) and its Info next to it. The file appears only once complete.
func writeFile(path string, r io.Reader, info Info, progressOut io.Writer) (Info, error) {
	if st, err := os.Stat(path); (err == nil && st.IsDir()) || strings.HasSuffix(path, string(filepath.Separator)) {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return info, err
		}
		path = filepath.Join(path, defaultName(info))
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return info, err
	}
	h := sha256.New()
	p := newProgress(progressOut, "Downloaded")
	n, err := io.Copy(io.MultiWriter(f, h, p), r)
	p.done()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(part)
		return info, fmt.Errorf("the snapshot download broke off, no file written: %w", err)
	}
	if err := os.Rename(part, path); err != nil {
		return info, err
	}
	abs, _ := filepath.Abs(path)
	info.Size, info.SHA256, info.Location = n, hex.EncodeToString(h.Sum(nil)), "file://"+abs
	data, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(path+".json", append(data, '\n'), 0o600); err != nil {
		return info, fmt.Errorf("snapshot written to %s, its description not: %w", path, err)
	}
	return info, nil
}

// source is a stored snapshot opened for reading.
type source struct {
	io.ReadCloser
	size int64
	info *Info
}

// openSnapshot opens the snapshot at l, which must name one snapshot.
func openSnapshot(ctx context.Context, l location, o ociOptions) (source, error) {
	switch l.kind {
	case "oci":
		return pullOCI(ctx, l, o)
	case "s3":
		return getS3(ctx, l, o)
	}
	f, err := os.Open(l.path)
	if err != nil {
		return source{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return source{}, err
	}
	if st.IsDir() {
		f.Close()
		return source{}, fmt.Errorf("--from %s is a directory: name one snapshot ('knest snapshot list --in %s' shows them)", l.path, l.path)
	}
	src := source{ReadCloser: f, size: st.Size()}
	if info, err := readSidecar(l.path); err == nil {
		src.info = &info
	}
	return src, nil
}

func readSidecar(path string) (Info, error) {
	var info Info
	data, err := os.ReadFile(path + ".json")
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(data, &info)
}

// listSnapshots lists the snapshots in l (a directory or a repository),
// of tenant name when it is not "", newest first.
func listSnapshots(ctx context.Context, l location, o ociOptions, name string) ([]Info, error) {
	var all []Info
	var err error
	switch l.kind {
	case "oci":
		all, err = listOCI(ctx, l, o)
	case "s3":
		all, err = listS3(ctx, l, o)
	default:
		all, err = listDir(l.path)
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, i := range all {
		if name == "" || i.Tenant == name {
			out = append(out, i)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Created.After(out[b].Created) })
	return out, nil
}

func listDir(dir string) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), fileSuffix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		abs, _ := filepath.Abs(path)
		info, err := readSidecar(path)
		if err != nil {
			// A snapshot copied without its description: what the file
			// system knows.
			info = Info{Tenant: "?"}
			if st, err := e.Info(); err == nil {
				info.Size, info.Created = st.Size(), st.ModTime().UTC()
			}
		}
		info.Location = "file://" + abs
		out = append(out, info)
	}
	return out, nil
}

// hashingReader hashes what it reads.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	h.h.Write(b[:n])
	h.n += int64(n)
	return n, err
}
