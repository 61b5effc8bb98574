package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testConfig(t *testing.T, tweaks ...func(*Config)) Config {
	t.Helper()
	c := Config{
		Dir:         filepath.Join(t.TempDir(), "pki"),
		ClusterName: "demo",
		ServiceIP:   net.ParseIP("10.96.0.1"),
	}
	for _, tweak := range tweaks {
		tweak(&c)
	}
	return c
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

func TestEnsureCreatesEverythingWithPrivateKeys(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	f, err := Ensure(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{f.CAKey, f.InternalCAKey, f.ServingKey, f.FrontProxyCAKey, f.FrontProxyClientKey, f.AdminKey, f.InternalKey, f.ControllerManagerKey, f.KubeletClientKey, f.ServiceAccountKey} {
		st, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, st.Mode().Perm())
		}
	}
	ca := readCert(t, f.CACert)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	serving := readCert(t, f.ServingCert)
	for _, host := range []string{"127.0.0.1", "10.96.0.1", "localhost", "kubernetes.default.svc.cluster.local"} {
		if _, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: t0}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", host, err)
		}
	}
	admin := readCert(t, f.AdminCert)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: t0}); err != nil {
		t.Errorf("admin certificate does not verify as a client certificate: %v", err)
	}
	if diff := cmp.Diff([]string{"system:masters"}, admin.Subject.Organization); diff != "" {
		t.Errorf("admin groups (-want +got):\n%s", diff)
	}
	fp := readCert(t, f.FrontProxyClientCert)
	if err := fp.CheckSignatureFrom(ca); err == nil {
		t.Errorf("front-proxy client certificate must not be signed by the cluster CA")
	}
}

func TestEnsureSignsKnestdsOwnIdentitiesWithTheInternalCAOnly(t *testing.T) {
	t.Parallel()
	f, err := Ensure(testConfig(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	cluster, internal := x509.NewCertPool(), x509.NewCertPool()
	cluster.AddCert(readCert(t, f.CACert))
	internal.AddCert(readCert(t, f.InternalCACert))
	verifies := func(cert *x509.Certificate, roots *x509.CertPool) bool {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: t0})
		return err == nil
	}
	tests := []struct {
		name         string
		cert         string
		wantInternal bool
	}{
		{name: "knestd's own clients are the internal CA's", cert: f.InternalCert, wantInternal: true},
		{name: "the controller-manager is the internal CA's", cert: f.ControllerManagerCert, wantInternal: true},
		{name: "the API server's kubelet client is the internal CA's", cert: f.KubeletClientCert, wantInternal: true},
		{name: "the tenant's admin stays the cluster CA's", cert: f.AdminCert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert := readCert(t, tc.cert)
			if got := verifies(cert, internal); got != tc.wantInternal {
				t.Errorf("verifies under the internal CA = %v, want %v", got, tc.wantInternal)
			}
			if got := verifies(cert, cluster); got == tc.wantInternal {
				t.Errorf("verifies under the cluster CA (the tenant's signer) = %v, want %v", got, !tc.wantInternal)
			}
		})
	}

	data, err := os.ReadFile(f.ClientCABundle)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, cert.Subject.CommonName)
	}
	if diff := cmp.Diff([]string{"demo-ca", "demo-internal-ca"}, subjects); diff != "" {
		t.Errorf("client CA bundle (-want +got):\n%s", diff)
	}
}

// TestEnsureUpgradesAnEarlierDataDir starts from the PKI an earlier version
// wrote: no internal CA, and knestd's own leaves signed by the cluster CA.
func TestEnsureUpgradesAnEarlierDataDir(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	f, err := Ensure(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	clusterCert, clusterKey, err := loadPair(f.CACert, f.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	cluster := &authority{cert: clusterCert, key: clusterKey}
	for _, l := range []struct {
		cert, key string
		subject   pkix.Name
	}{
		{f.InternalCert, f.InternalKey, pkix.Name{CommonName: InternalUser, Organization: []string{"system:masters"}}},
		{f.ControllerManagerCert, f.ControllerManagerKey, pkix.Name{CommonName: "system:kube-controller-manager"}},
		{f.KubeletClientCert, f.KubeletClientKey, pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}}},
	} {
		if err := ensureLeaf(l.cert, l.key, cluster, leafSpec{Subject: l.subject}, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{f.InternalCACert, f.InternalCAKey, f.ClientCABundle} {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, c.Dir)

	if _, err := Ensure(c, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, c.Dir)
	var changed []string
	for name := range after {
		if after[name] != before[name] {
			changed = append(changed, name)
		}
	}
	want := []string{"apiserver-kubelet-client.crt", "client-ca.crt", "controller-manager.crt", "internal-ca.crt", "internal-ca.key", "internal.crt"}
	if diff := cmp.Diff(want, changed, cmpSorted); diff != "" {
		t.Errorf("changed files (-want +got); the cluster CA, the admin's certificate, every key and the service-account key must stay:\n%s", diff)
	}
	internal := readCert(t, f.InternalCACert)
	for _, leaf := range []string{f.InternalCert, f.ControllerManagerCert, f.KubeletClientCert} {
		if err := readCert(t, leaf).CheckSignatureFrom(internal); err != nil {
			t.Errorf("%s is not re-issued under the internal CA: %v", filepath.Base(leaf), err)
		}
	}
}

func TestEnsureIsStableAcrossRestarts(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	if _, err := Ensure(c, t0); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	if _, err := Ensure(c, t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, c.Dir)); diff != "" {
		t.Errorf("a second Ensure with the same config changed files (-before +after):\n%s", diff)
	}
}

func TestEnsureReissues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		change      func(*Config)
		later       time.Duration
		wantChanged []string
	}{
		{
			name:        "a new extra SAN re-issues only the serving certificate",
			change:      func(c *Config) { c.ExtraSANs = []string{"demo.knest-demo.svc"} },
			wantChanged: []string{"apiserver.crt"},
		},
		{
			name:        "a new extra IP re-issues only the serving certificate",
			change:      func(c *Config) { c.ExtraIPs = []net.IP{net.ParseIP("10.96.12.34")} },
			wantChanged: []string{"apiserver.crt"},
		},
		{
			name:        "a different service CIDR re-issues only the serving certificate",
			change:      func(c *Config) { c.ServiceIP = net.ParseIP("10.100.0.1") },
			wantChanged: []string{"apiserver.crt"},
		},
		{
			name:   "leaves close to expiry are re-issued, CAs are kept",
			change: func(*Config) {},
			later:  LeafValidity - RenewBefore + time.Hour,
			wantChanged: []string{"admin.crt", "apiserver-kubelet-client.crt", "apiserver.crt",
				"controller-manager.crt", "front-proxy-client.crt", "internal.crt"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig(t)
			if _, err := Ensure(c, t0); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, c.Dir)
			tc.change(&c)
			f, err := Ensure(c, t0.Add(tc.later))
			if err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, c.Dir)
			var changed []string
			for name := range after {
				if after[name] != before[name] {
					changed = append(changed, name)
				}
			}
			if diff := cmp.Diff(tc.wantChanged, changed, cmpSorted); diff != "" {
				t.Errorf("changed files (-want +got):\n%s", diff)
			}
			ca := readCert(t, f.CACert)
			serving := readCert(t, f.ServingCert)
			if err := serving.CheckSignatureFrom(ca); err != nil {
				t.Errorf("re-issued serving certificate is not signed by the same CA: %v", err)
			}
			if diff := cmp.Diff(c.ServingDNSNames(), serving.DNSNames); diff != "" {
				t.Errorf("serving DNS names (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestEnsureRefusesDamagedFilesAndLeavesThemAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		damage  func(t *testing.T, f Files)
		wantErr string
	}{
		{
			name: "a corrupt CA certificate",
			damage: func(t *testing.T, f Files) {
				writeFile(t, f.CACert, "not a certificate")
			},
			wantErr: "ca.crt is not a PEM certificate",
		},
		{
			name: "a CA certificate whose key is gone",
			damage: func(t *testing.T, f Files) {
				if err := os.Remove(f.CAKey); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "ca.key is missing",
		},
		{
			name: "a corrupt service-account key",
			damage: func(t *testing.T, f Files) {
				writeFile(t, f.ServiceAccountKey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
			},
			wantErr: "failed to parse",
		},
		{
			name: "a certificate that belongs to another key",
			damage: func(t *testing.T, f Files) {
				data, err := os.ReadFile(f.FrontProxyCAKey)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, f.CAKey, string(data))
			},
			wantErr: "does not match key",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testConfig(t)
			f, err := Ensure(c, t0)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, f)
			before := snapshot(t, c.Dir)
			_, err = Ensure(c, t0)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Ensure error = %v, want one containing %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(before, snapshot(t, c.Dir)); diff != "" {
				t.Errorf("a failed Ensure changed files (-before +after):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tweak   func(*Config)
		wantErr string
	}{
		{name: "a complete config is valid", tweak: func(*Config) {}},
		{name: "a directory is required", tweak: func(c *Config) { c.Dir = "" }, wantErr: "directory is required"},
		{name: "a service IP is required", tweak: func(c *Config) { c.ServiceIP = nil }, wantErr: "service IP is required"},
		{name: "a cluster name is required", tweak: func(c *Config) { c.ClusterName = "" }, wantErr: "cluster name is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := testConfig(t, tc.tweak).Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
