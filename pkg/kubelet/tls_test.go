package kubelet

import (
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/knest-dev/knest/pkg/pki"
)

func TestServingCertificateNamesTheNodeAddressAndIsRenewed(t *testing.T) {
	t.Parallel()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "acme", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := &servingCert{caCertFile: files.InternalCACert, caKeyFile: files.InternalCAKey, addresses: []net.IP{net.ParseIP("10.1.2.3")}, now: func() time.Time { return now }}
	first, err := s.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The API server checks it against the internal CA
	// (--kubelet-certificate-authority); a kubelet-serving certificate from
	// the cluster's signer must not pass, so neither may this one there.
	for _, tc := range []struct {
		ca       string
		verifies bool
	}{{files.InternalCACert, true}, {files.CACert, false}} {
		roots := x509.NewCertPool()
		caPEM, err := os.ReadFile(tc.ca)
		if err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(caPEM)
		_, err = first.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.1.2.3", CurrentTime: now})
		if (err == nil) != tc.verifies {
			t.Errorf("serving certificate verified under %s: %v, want verified=%v", tc.ca, err, tc.verifies)
		}
	}
	if again, _ := s.get(nil); again != first {
		t.Error("a fresh certificate was issued again")
	}
	now = first.Leaf.NotAfter.Add(-pki.RenewBefore + time.Minute)
	renewed, err := s.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Errorf("close to expiry: not renewed (NotAfter %s, was %s)", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
}
