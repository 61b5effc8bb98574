package snapshot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationCertificateRenewal runs knestd with one-minute leaf
// certificates and checks that, past the first certificates' expiry, it
// serves a renewed certificate under the same CA, its controllers (whose
// client certificates expired too) still work, a client that reads its
// certificate files keeps working, and the renewed admin kubeconfig works;
// then knest certs check shows the dates and knest certs rotate renews now.
func TestIntegrationCertificateRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	k := framework.Start(t, dir, "--name=certs", "--secure-port="+strconv.Itoa(framework.FreePort(t)), "--cert-validity=1m")
	k.WaitReady(t, readyTimeout)
	ctx := t.Context()
	cfg := framework.AdminConfig(t, k.AdminKubeconfig())
	first := servingCert(t, cfg)
	firstAdmin := readCert(t, filepath.Join(dir, "pki", "admin.crt"))
	if got := first.NotAfter.Sub(first.NotBefore); got > 2*time.Minute {
		t.Fatalf("serving certificate is valid for %s, want about a minute", got)
	}
	// A client that names its certificate files, as knestd's own do:
	// client-go reloads them when they change.
	byFiles := rest.CopyConfig(cfg)
	byFiles.CertData, byFiles.KeyData = nil, nil
	byFiles.CertFile, byFiles.KeyFile = filepath.Join(dir, "pki", "admin.crt"), filepath.Join(dir, "pki", "admin.key")
	client := framework.Client(t, byFiles)

	// Wait until the first serving certificate has expired.
	time.Sleep(time.Until(first.NotAfter.Add(5 * time.Second)))

	renewed := servingCert(t, cfg)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 || !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("serving certificate not renewed: serial %s until %s, first %s until %s", renewed.SerialNumber, renewed.NotAfter, first.SerialNumber, first.NotAfter)
	}
	if !strings.Contains(k.Output(), "Renewed the leaf certificates") {
		t.Error("knestd did not log a renewal")
	}
	// The controllers' client certificates expired too: a new namespace
	// still gets its default ServiceAccount from the controller-manager.
	// client-go closes its connections when it loads a renewed
	// certificate, so a request racing that sees one connection error, as
	// on any reconnect; clients retry.
	var ns *corev1.Namespace
	var errs []error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		ns, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "after-renewal-"}}, metav1.CreateOptions{})
		if err != nil {
			errs = append(errs, err)
		}
		return err == nil, nil
	})
	if err != nil || len(errs) > 1 {
		t.Fatalf("a client that reads its certificate files failed after the renewal: %v (errors: %v)", err, errs)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Errorf("the controller-manager did not work after its first certificate expired: %v", err)
	}
	admin := readCert(t, filepath.Join(dir, "pki", "admin.crt"))
	if admin.SerialNumber.Cmp(firstAdmin.SerialNumber) == 0 {
		t.Error("the admin certificate was not renewed")
	}
	if !publicKeyEqual(admin, firstAdmin) {
		t.Error("the renewed admin certificate has a new key, want the same")
	}
	// The rewritten admin kubeconfig carries the renewed certificate.
	fresh := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	if _, err := fresh.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the renewed admin kubeconfig does not work: %v", err)
	}

	out, err := framework.Run(t, time.Minute, framework.KnestPath(), "certs", "check", "--tenant-kubeconfig", k.AdminKubeconfig())
	if err != nil {
		t.Fatalf("knest certs check: %v\n%s", err, out)
	}
	for _, want := range []string{"apiserver.crt", "ca.crt (CA)", "admin.crt", "(served to this client)", renewed.NotAfter.UTC().Format(time.RFC3339)[:16]} {
		if !strings.Contains(out, want) {
			t.Errorf("knest certs check does not show %q:\n%s", want, out)
		}
	}
	before := servingCert(t, cfg)
	out, err = framework.Run(t, time.Minute, framework.KnestPath(), "certs", "rotate", "--tenant-kubeconfig", k.AdminKubeconfig())
	if err != nil {
		t.Fatalf("knest certs rotate: %v\n%s", err, out)
	}
	// knestd hands the renewed serving certificate to the API server when
	// it has written it (no file watch): served by the time the command
	// returns, give or take the TLS configuration's rebuild.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		return servingCert(t, cfg).SerialNumber.Cmp(before.SerialNumber) != 0, nil
	})
	if err != nil {
		t.Errorf("knest certs rotate did not change the serving certificate: %v", err)
	}
}

// servingCert is the certificate the API server presents, verified
// against the tenant CA.
func servingCert(t *testing.T, cfg *rest.Config) *x509.Certificate {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cfg.CAData)
	host := strings.TrimPrefix(cfg.Host, "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with the tenant API server: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publicKeyEqual(a, b *x509.Certificate) bool {
	return string(a.RawSubjectPublicKeyInfo) == string(b.RawSubjectPublicKeyInfo)
}
