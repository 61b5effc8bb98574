package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want location
	}{
		{"/backups/a.knest", location{kind: "file", path: "/backups/a.knest"}},
		{"file:///backups/a.knest", location{kind: "file", path: "/backups/a.knest"}},
		{"file://rel/a.knest", location{kind: "file", path: "rel/a.knest"}},
		{"file:///backups/", location{kind: "file", path: "/backups/"}},
		{"oci://reg.example.com:5000/backups/demo", location{kind: "oci", repo: "reg.example.com:5000/backups/demo"}},
		{"oci://reg.example.com:5000/backups/demo:v1", location{kind: "oci", repo: "reg.example.com:5000/backups/demo", tag: "v1"}},
		{"oci://reg/demo@sha256:abc", location{kind: "oci", repo: "reg/demo", tag: "sha256:abc"}},
	} {
		got, err := parseLocation("--to", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseLocation(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "s3:///x", "oci://registry-only", "http://x/y"} {
		if _, err := parseLocation("--to", bad); err == nil {
			t.Errorf("parseLocation(%q) succeeded", bad)
		}
	}
}

func sealedBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, src source) ([]byte, error) {
	t.Helper()
	defer src.Close()
	return io.ReadAll(src)
}

func TestFileTarget(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := sealedBytes(t, 3<<20)
	info := Info{Tenant: "shop", ID: "20261206-150405-aa", Revision: "42", Created: time.Now().UTC().Truncate(time.Second)}

	// A directory: the snapshot is named after its tenant and ID.
	loc, _ := parseLocation("--to", dir)
	got, err := writeSnapshot(ctx, loc, ociOptions{}, bytes.NewReader(data), info, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "shop-20261206-150405-aa.knest")
	if got.Location != "file://"+want || got.Size != int64(len(data)) || len(got.SHA256) != 64 {
		t.Errorf("wrote %+v, want file://%s of %d bytes", got, want, len(data))
	}
	// An explicit file, for another tenant.
	other := info
	other.Tenant, other.ID, other.Created = "blog", "20261206-160000-bb", info.Created.Add(time.Hour)
	if _, err := writeSnapshot(ctx, location{kind: "file", path: filepath.Join(dir, "blog-latest.knest")}, ociOptions{}, bytes.NewReader(data[:100]), other, io.Discard); err != nil {
		t.Fatal(err)
	}

	all, err := listSnapshots(ctx, loc, ociOptions{}, "")
	if err != nil || len(all) != 2 || all[0].Tenant != "blog" || all[1].Tenant != "shop" {
		t.Fatalf("list = %+v, %v; want blog then shop (newest first)", all, err)
	}
	shop, err := listSnapshots(ctx, loc, ociOptions{}, "shop")
	if err != nil || len(shop) != 1 || shop[0].ID != info.ID || shop[0].Revision != "42" {
		t.Fatalf("list shop = %+v, %v", shop, err)
	}

	src, err := openSnapshot(ctx, location{kind: "file", path: want}, ociOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if src.size != int64(len(data)) || src.info == nil || src.info.Tenant != "shop" {
		t.Errorf("opened size %d info %+v", src.size, src.info)
	}
	if b, err := readAll(t, src); err != nil || !bytes.Equal(b, data) {
		t.Errorf("read back %d bytes, %v", len(b), err)
	}
	if _, err := openSnapshot(ctx, loc, ociOptions{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("opening a directory: %v", err)
	}

	// A download that breaks off leaves no file.
	broken := filepath.Join(dir, "broken.knest")
	_, err = writeSnapshot(ctx, location{kind: "file", path: broken}, ociOptions{}, io.MultiReader(bytes.NewReader(data[:10]), errReader{}), info, io.Discard)
	if err == nil {
		t.Fatal("a broken download was stored")
	}
	if _, err := os.Stat(broken); !os.IsNotExist(err) {
		t.Errorf("a broken download left %s (%v)", broken, err)
	}
	if _, err := os.Stat(broken + ".part"); !os.IsNotExist(err) {
		t.Errorf("a broken download left its .part (%v)", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// corrupting serves the registry, flipping a byte of every blob it serves
// while on is true: a registry or a path in between that changes content.
type corrupting struct {
	h  http.Handler
	on bool
}

func (c *corrupting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.on || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
		c.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if len(body) > 0 {
		body[len(body)/2] ^= 0xff
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// TestOCITarget pushes, lists and pulls snapshots through a real registry
// (go-containerregistry's, in process) with oras-go.
func TestOCITarget(t *testing.T) {
	ctx := context.Background()
	reg := &corrupting{h: registry.New(registry.Logger(nopLogger()))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	opts := ociOptions{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
	data := sealedBytes(t, 5<<20)
	created := time.Now().UTC().Truncate(time.Second)
	info := Info{Tenant: "shop", ID: "20261206-150405-aa", Revision: "42", Created: created}

	repo, _ := parseLocation("--to", "oci://"+host+"/backups/shop")
	var progress bytes.Buffer
	got, err := writeSnapshot(ctx, repo, opts, bytes.NewReader(data), info, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if got.Location != "oci://"+host+"/backups/shop:"+info.ID || got.Size != int64(len(data)) {
		t.Errorf("pushed %+v", got)
	}
	second := info
	second.ID, second.Created = "20261206-170000-cc", created.Add(time.Hour)
	tagged, _ := parseLocation("--to", "oci://"+host+"/backups/shop:latest")
	if _, err := writeSnapshot(ctx, tagged, opts, bytes.NewReader(data[:1000]), second, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Another artifact in the same repository is not listed nor restored.
	r, err := opts.repository(repo)
	if err != nil {
		t.Fatal(err)
	}
	other, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, "application/vnd.example.other", oras.PackManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tag(ctx, other, "not-a-snapshot"); err != nil {
		t.Fatal(err)
	}

	list, err := listSnapshots(ctx, repo, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != info.ID || list[1].Revision != "42" || !list[1].Created.Equal(created) {
		t.Fatalf("list = %+v", list)
	}
	if l, err := listSnapshots(ctx, repo, opts, "blog"); err != nil || len(l) != 0 {
		t.Errorf("list blog = %+v, %v", l, err)
	}

	from, _ := parseLocation("--from", got.Location)
	src, err := openSnapshot(ctx, from, opts)
	if err != nil {
		t.Fatal(err)
	}
	if src.size != int64(len(data)) || src.info.Tenant != "shop" {
		t.Errorf("pulled size %d, info %+v", src.size, src.info)
	}
	if b, err := readAll(t, src); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("pulled %d bytes, %v", len(b), err)
	}

	// Refused: a repository without a tag, a tag that is not a snapshot,
	// a tag that does not exist.
	for _, bad := range []struct{ loc, want string }{
		{"oci://" + host + "/backups/shop", "names a repository"},
		{"oci://" + host + "/backups/shop:not-a-snapshot", "not a knest snapshot"},
		{"oci://" + host + "/backups/shop:nope", "not found"},
	} {
		l, _ := parseLocation("--from", bad.loc)
		if _, err := openSnapshot(ctx, l, opts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("open %s: %v, want %q", bad.loc, err, bad.want)
		}
	}

	// Content changed on the way: the read fails at the end, so an upload
	// of it breaks off.
	reg.on = true
	src, err = openSnapshot(ctx, from, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, src); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("reading a corrupted blob: %v", err)
	}
}

// TestOCIManifestIsAnArtifact checks what another tool sees: an OCI 1.1
// artifact of ArtifactType with the sealed file as its one layer.
func TestOCIManifestIsAnArtifact(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	opts := ociOptions{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
	loc, _ := parseLocation("--to", "oci://"+host+"/b/shop:one")
	if _, err := writeSnapshot(ctx, loc, opts, strings.NewReader("sealed"), Info{Tenant: "shop", ID: "x", Created: time.Now()}, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, _ := opts.repository(loc)
	desc, err := r.Resolve(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	data, err := content.FetchAll(ctx, r, desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"artifactType":"` + ArtifactType + `"`, `"mediaType":"` + LayerMediaType + `"`, `"` + ocispec.AnnotationTitle + `":"shop-x.knest"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("manifest lacks %s:\n%s", want, data)
		}
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
