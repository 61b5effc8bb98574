package snapshot

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationCARotation rotates a running tenant's cluster CA with
// knest certs rotate --ca: during the transition the admin kubeconfig from
// before and the new one both work, every namespace's kube-root-ca.crt
// carries both CAs, and a knestd killed in the transition comes back in it;
// after --ca --finish the old kubeconfig is refused (its server no longer
// verifies, and its client certificate is refused by the API server even
// when the client skips the server check), while a kubeconfig taken during
// the transition keeps working.
func TestIntegrationCARotation(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	args := []string{"--name=carot", "--secure-port=" + strconv.Itoa(framework.FreePort(t))}
	k := framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	ctx := t.Context()

	oldKubeconfig := filepath.Join(t.TempDir(), "old.kubeconfig")
	copyFile(t, k.AdminKubeconfig(), oldKubeconfig)
	oldCfg := framework.AdminConfig(t, oldKubeconfig)
	oldCA := certsIn(t, oldCfg.CAData)
	if len(oldCA) != 1 {
		t.Fatalf("the admin kubeconfig carries %d CAs before any rotation, want 1", len(oldCA))
	}
	mustWork(t, oldCfg, "the admin kubeconfig before the rotation")

	start := time.Now()
	out, err := framework.Run(t, 5*time.Minute, framework.KnestPath(), "certs", "rotate", "--tenant-kubeconfig", k.AdminKubeconfig(), "--ca")
	if err != nil {
		t.Fatalf("knest certs rotate --ca: %v\n%s", err, out)
	}
	t.Logf("knest certs rotate --ca took %s (restart included):\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{"CA rotation started", "ca-previous.crt (CA)", "ca.crt (CA)"} {
		if !strings.Contains(out, want) {
			t.Errorf("knest certs rotate --ca does not show %q", want)
		}
	}
	if k.Exited() {
		t.Fatal("knestd exited instead of re-executing itself")
	}
	midCfg := framework.AdminConfig(t, k.AdminKubeconfig())
	midCA := certsIn(t, midCfg.CAData)
	if len(midCA) != 2 || !containsCert(midCA, oldCA[0]) {
		t.Fatalf("the admin kubeconfig during the transition carries %d CAs (old one among them: %v), want the new and the old", len(midCA), containsCert(midCA, oldCA[0]))
	}
	newCA := midCA[0]
	if newCA.Equal(oldCA[0]) {
		newCA = midCA[1]
	}
	if err := clientCert(t, midCfg).CheckSignatureFrom(newCA); err != nil {
		t.Errorf("the admin certificate of the transition is not signed by the new CA: %v", err)
	}
	checkTransition := func(when string) {
		t.Helper()
		mustWork(t, oldCfg, "the admin kubeconfig from before the rotation, "+when)
		mustWork(t, midCfg, "the admin kubeconfig of the transition, "+when)
		// The controller-manager publishes both CAs in every namespace.
		waitRootCA(t, ctx, midCfg, "default", []*x509.Certificate{oldCA[0], newCA}, when)
	}
	checkTransition("during the transition")

	// Killed in the transition, knestd starts in it again.
	k.Kill()
	k = framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	checkTransition("after a kill and a restart in the transition")

	start = time.Now()
	out, err = framework.Run(t, 5*time.Minute, framework.KnestPath(), "certs", "rotate", "--tenant-kubeconfig", k.AdminKubeconfig(), "--ca", "--finish")
	if err != nil {
		t.Fatalf("knest certs rotate --ca --finish: %v\n%s", err, out)
	}
	t.Logf("knest certs rotate --ca --finish took %s (restart included):\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "CA rotation finished") || strings.Contains(out, "ca-previous.crt") {
		t.Errorf("knest certs rotate --ca --finish: want the rotation finished and no ca-previous.crt listed:\n%s", out)
	}
	mustWork(t, midCfg, "the admin kubeconfig of the transition, after it")
	newCfg := framework.AdminConfig(t, k.AdminKubeconfig())
	if got := certsIn(t, newCfg.CAData); len(got) != 1 || !got[0].Equal(newCA) {
		t.Errorf("the admin kubeconfig after the rotation carries %d CAs, want only the new one", len(got))
	}
	mustWork(t, newCfg, "the admin kubeconfig after the rotation")
	waitRootCA(t, ctx, newCfg, "default", []*x509.Certificate{newCA}, "after the rotation")

	// The old kubeconfig: the server's certificate no longer verifies ...
	_, err = framework.Client(t, oldCfg).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("the old admin kubeconfig after the rotation: %v, want the server's certificate refused as of an unknown authority", err)
	}
	// ... and its client certificate is refused even by a client that
	// skips that check.
	insecure := rest.CopyConfig(oldCfg)
	insecure.CAData, insecure.Insecure = nil, true
	_, err = framework.Client(t, insecure).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("the old admin certificate after the rotation: %v, want 401 Unauthorized", err)
	}
}

func mustWork(t *testing.T, cfg *rest.Config, what string) {
	t.Helper()
	// A client whose connection broke with the restart retries once.
	var err error
	for range 3 {
		if _, err = framework.Client(t, cfg).CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("%s does not work: %v", what, err)
}

// waitRootCA waits until the namespace's kube-root-ca.crt holds exactly
// the given CAs.
func waitRootCA(t *testing.T, ctx context.Context, cfg *rest.Config, ns string, want []*x509.Certificate, when string) {
	t.Helper()
	client := framework.Client(t, cfg)
	var got []*x509.Certificate
	err := wait.PollUntilContextTimeout(ctx, time.Second, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = certsIn(t, []byte(cm.Data["ca.crt"]))
		if len(got) != len(want) {
			return false, nil
		}
		for _, w := range want {
			if !containsCert(got, w) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("%s: kube-root-ca.crt in %s holds %d CAs, want %d (%v)", when, ns, len(got), len(want), err)
	}
}

func certsIn(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if l.Equal(c) {
			return true
		}
	}
	return false
}

func clientCert(t *testing.T, cfg *rest.Config) *x509.Certificate {
	t.Helper()
	certs := certsIn(t, cfg.CertData)
	if len(certs) == 0 {
		t.Fatal("the kubeconfig has no client certificate")
	}
	return certs[0]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
