package controlplane

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/util/cert"
)

type countingListener struct{ n int }

func (l *countingListener) Enqueue() { l.n++ }

func writePair(t *testing.T, dir, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPEM, keyPEM
}

// TestServingCertReload: the serving certificate is what its files held when
// it was built until Reload reads them again; a renewed pair is served and
// the API server's TLS configuration told, a torn pair (a key that is not
// the certificate's) is refused and the pair in use kept.
func TestServingCertReload(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, _ := writePair(t, dir, "first.example")
	s, err := NewServingCert(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{}
	s.AddListener(l)
	if got, _ := s.CurrentCertKeyContent(); !bytes.Equal(got, first) {
		t.Fatal("the serving certificate is not the file's")
	}

	second, _ := writePair(t, dir, "second.example")
	if got, _ := s.CurrentCertKeyContent(); !bytes.Equal(got, first) {
		t.Fatal("the files were read again before Reload")
	}
	if err := s.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CurrentCertKeyContent(); !bytes.Equal(got, second) || l.n != 1 {
		t.Fatalf("after Reload: renewed certificate served %v, listener told %d times, want true and 1", bytes.Equal(got, second), l.n)
	}
	if err := s.Reload(t.Context()); err != nil || l.n != 1 {
		t.Fatalf("Reload of unchanged files: err %v, listener told %d times, want nil and 1", err, l.n)
	}

	_, otherKey, err := cert.GenerateSelfSignedCertKey("third.example", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(t.Context()); err == nil {
		t.Fatal("Reload accepted a key that is not the certificate's")
	}
	if got, _ := s.CurrentCertKeyContent(); !bytes.Equal(got, second) || l.n != 1 {
		t.Fatal("a torn pair replaced the one in use")
	}

	if _, err := NewServingCert(filepath.Join(dir, "missing.crt"), key); err == nil {
		t.Fatal("NewServingCert accepted a missing file")
	}
}
