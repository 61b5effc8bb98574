package snapshot

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func seal(t *testing.T, key, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := Seal(&out, key)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross chunk boundaries.
	for p := plain; len(p) > 0; {
		n := min(len(p), 300_001)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func open(key, sealed []byte) ([]byte, error) {
	r, err := Open(bytes.NewReader(sealed), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestSealedDataOpensWithItsKeyWhateverItsSize(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		plain := make([]byte, size)
		rand.Read(plain)
		sealed := seal(t, key, plain)
		got, err := open(key, sealed)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("size %d: opened data differs from what was sealed", size)
		}
		if bytes.Contains(sealed, plain[:min(size, 64)]) && size >= 64 {
			t.Errorf("size %d: the sealed file holds the plaintext", size)
		}
	}
}

func TestOpenRefusesWhatItCannotAuthenticate(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	plain := make([]byte, 2*ChunkSize+100)
	rand.Read(plain)
	sealed := seal(t, key, plain)
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
	second := headerSize + 5 + ChunkSize + 16
	tests := []struct {
		name string
		key  []byte
		file []byte
		want error
	}{
		{"another tenant's key", testKey(t), sealed, ErrWrongKey},
		{"a file that is not a snapshot", key, []byte("apiVersion: v1\nkind: List\nitems: []\n and then some more bytes"), ErrNotSnapshot},
		{"an empty file", key, nil, ErrNotSnapshot},
		{"a flipped byte in the first chunk", key, flip(headerSize + 100), ErrCorrupt},
		{"a flipped byte in the header's nonce", key, flip(headerSize - 1), ErrCorrupt},
		{"a flipped final flag", key, flip(second + ChunkSize + 16), ErrCorrupt},
		{"truncated inside a chunk", key, sealed[:headerSize+1000], ErrTruncated},
		{"truncated at a chunk boundary", key, sealed[:second], ErrTruncated},
		{"the last chunk dropped", key, sealed[:2*second-headerSize], ErrTruncated},
		{"data after the last chunk", key, append(bytes.Clone(sealed), 0), ErrCorrupt},
		{"the first two chunks swapped", key, swapChunks(sealed), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := open(tt.key, tt.file)
			if !errors.Is(err, tt.want) {
				t.Errorf("open = %v, want %v", err, tt.want)
			}
		})
	}
}

func swapChunks(sealed []byte) []byte {
	n := 5 + ChunkSize + 16
	out := bytes.Clone(sealed[:headerSize])
	out = append(out, sealed[headerSize+n:headerSize+2*n]...)
	out = append(out, sealed[headerSize:headerSize+n]...)
	return append(out, sealed[headerSize+2*n:]...)
}

func TestEnsureKeyCreatesAPrivateKeyOnceAndKeepsIt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "snapshot.key")
	first, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
	again, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("EnsureKey replaced an existing key")
	}
}

func TestAnArchiveExtractsToTheFilesAndManifestItWasWrittenFrom(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := Manifest{Format: FormatVersion, ID: "id", Tenant: "a", Created: time.Unix(1700000000, 0).UTC(), KubernetesVersion: "v1.37.2", EtcdRevision: 42}
	files := []File{{EtcdName, write("db", "etcd")}, {PKIDir + "/ca.crt", write("ca", "cert")}, {EncryptionKeyName, write("k", "key")}}
	key := testKey(t)
	var sealed bytes.Buffer
	w, _ := Seal(&sealed, key)
	if err := WriteArchive(w, m, files); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := Open(&sealed, key)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	got, err := Extract(r, dst)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{"etcd.db": "etcd", "pki/ca.crt": "cert", "encryption.key": "key"} {
		data, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(data) != want {
			t.Errorf("%s = %q, %v; want %q", name, data, err, want)
		}
	}
}

func TestWriteArchiveRefusesNamesOutsideTheLayout(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o600)
	for _, name := range []string{"../etc/passwd", "pki/../../x", "/abs", "pki/sub/dir", "other"} {
		if err := WriteArchive(io.Discard, Manifest{}, []File{{name, p}}); err == nil {
			t.Errorf("WriteArchive accepted entry %q", name)
		}
	}
}
