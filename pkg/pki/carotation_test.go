package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"
)

// pool is the CAs in a PEM bundle file, and how many.
func pool(t *testing.T, path string) (*x509.CertPool, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, n := x509.NewCertPool(), 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return p, n
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		p.AddCert(c)
		n++
	}
}

func verifies(t *testing.T, certPath string, roots *x509.CertPool, usage x509.ExtKeyUsage) bool {
	t.Helper()
	c := readCert(t, certPath)
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: c.NotBefore.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{usage}})
	return err == nil
}

func TestACARotationTrustsBothCAsDuringItsTransitionAndOnlyTheNewOneAfter(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	f, err := Ensure(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	oldRoots, _ := pool(t, f.CACert)

	r, err := BeginCARotation(c, t0.Add(time.Minute), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != CATransition || !r.Until.Equal(t0.Add(time.Minute+24*time.Hour)) {
		t.Errorf("rotation state %s until %s, want a transition of 24h", r.Phase, r.Until)
	}
	during := snapshot(t, c.Dir)
	if during["ca.crt"] == before["ca.crt"] || during["ca.key"] == before["ca.key"] {
		t.Fatal("ca.crt/ca.key did not change to a new CA")
	}
	if during["ca-previous.crt"] != before["ca.crt"] || during["ca-previous.key"] != before["ca.key"] {
		t.Error("the previous CA is not kept as ca-previous.crt/.key")
	}
	newRoots, _ := pool(t, f.CACert)
	bundle, n := pool(t, f.CABundle)
	if n != 2 {
		t.Errorf("ca-bundle.crt holds %d CAs during the transition, want 2", n)
	}
	if _, n := pool(t, f.ClientCABundle); n != 3 {
		t.Errorf("client-ca.crt holds %d CAs during the transition, want 3 (both cluster CAs and the internal CA)", n)
	}
	// Clients from before (old CA only) still verify the server; the
	// admin is re-issued under the new CA with its key.
	if !verifies(t, f.ServingCert, oldRoots, x509.ExtKeyUsageServerAuth) || !verifies(t, f.ServingCert, bundle, x509.ExtKeyUsageServerAuth) {
		t.Error("during the transition the serving certificate must verify with the old CA and with the bundle")
	}
	if !verifies(t, f.AdminCert, newRoots, x509.ExtKeyUsageClientAuth) {
		t.Error("the admin certificate was not re-issued under the new CA")
	}
	if during["admin.key"] != before["admin.key"] {
		t.Error("the admin key changed")
	}
	for _, kept := range []string{"internal-ca.crt", "front-proxy-ca.crt", "sa.key", "internal.crt"} {
		if during[kept] != before[kept] {
			t.Errorf("%s changed in a cluster CA rotation", kept)
		}
	}
	if _, err := BeginCARotation(c, t0.Add(2*time.Minute), 0); err == nil || !strings.Contains(err.Error(), "finish it first") {
		t.Errorf("a second rotation during the transition: %v, want refused", err)
	}
	// Ensure (every start, every renewal) keeps the transition's files.
	if _, err := Ensure(c, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, c.Dir); !mapsEqual(got, during) {
		t.Error("Ensure during the transition changed files")
	}

	if due, err := FinishCARotationIfDue(c, t0.Add(time.Hour)); err != nil || due {
		t.Fatalf("FinishCARotationIfDue before Until: %v %v, want nothing done", due, err)
	}
	if due, err := FinishCARotationIfDue(c, t0.Add(25*time.Hour)); err != nil || !due {
		t.Fatalf("FinishCARotationIfDue after Until: %v %v, want finished", due, err)
	}
	after := snapshot(t, c.Dir)
	for _, gone := range []string{"ca-previous.crt", "ca-previous.key"} {
		if _, ok := after[gone]; ok {
			t.Errorf("%s is still there after the rotation finished", gone)
		}
	}
	if after["ca.crt"] != during["ca.crt"] {
		t.Error("finishing changed the current CA")
	}
	if _, n := pool(t, f.CABundle); n != 1 {
		t.Errorf("ca-bundle.crt holds %d CAs after the rotation, want 1", n)
	}
	if verifies(t, f.ServingCert, oldRoots, x509.ExtKeyUsageServerAuth) || !verifies(t, f.ServingCert, newRoots, x509.ExtKeyUsageServerAuth) {
		t.Error("after the rotation the serving certificate must be under the new CA only")
	}
	if strings.Contains(after["ca-rotation.json"], before["ca.key"][60:100]) {
		t.Error("the finished rotation state still holds the old CA's key")
	}
	if _, err := FinishCARotation(c, t0.Add(26*time.Hour)); err == nil {
		t.Error("finishing a finished rotation: no error")
	}
	// A later rotation starts from the new CA.
	if _, err := BeginCARotation(c, t0.Add(27*time.Hour), 0); err != nil {
		t.Fatalf("a second rotation after the first finished: %v", err)
	}
	if got := snapshot(t, c.Dir); got["ca-previous.crt"] != after["ca.crt"] {
		t.Error("the second rotation does not keep the first's new CA as the previous one")
	}
}

// A knestd killed between the state write and the files it derives (or
// halfway through them) finds the rotation's files consistent at its next
// start: the state file is the commit point.
func TestACARotationInterruptedAfterItsStateWasWrittenResumesOnTheNextEnsure(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	f, err := Ensure(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BeginCARotation(c, t0, 0); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, c.Dir)
	// As if the process died after writing the state and the new ca.key,
	// before ca.crt and everything after it: put the old files back.
	for name, content := range map[string]string{"ca.crt": want["ca-previous.crt"], "client-ca.crt": "", "ca-bundle.crt": ""} {
		if err := os.WriteFile(c.Dir+"/"+name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ca-previous.crt", "ca-previous.key"} {
		if err := os.Remove(c.Dir + "/" + name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Ensure(c, t0.Add(time.Minute)); err != nil {
		t.Fatalf("Ensure after an interrupted rotation: %v", err)
	}
	got := snapshot(t, c.Dir)
	for _, name := range []string{"ca.crt", "ca.key", "ca-previous.crt", "ca-previous.key", "ca-bundle.crt", "client-ca.crt", "admin.crt", "apiserver.crt"} {
		if got[name] != want[name] {
			t.Errorf("%s differs from an uninterrupted rotation", name)
		}
	}
	_ = f
}

func TestACorruptCARotationStateIsAnErrorNotANewCA(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	if _, err := Ensure(c, t0); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	if err := os.WriteFile(FilesIn(c.Dir).CARotationState, []byte(`{"phase":"transition"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(c, t0); err == nil || !strings.Contains(err.Error(), "ca-rotation.json") {
		t.Errorf("Ensure with a torn rotation state: %v, want an error naming the file", err)
	}
	got := snapshot(t, c.Dir)
	delete(got, "ca-rotation.json")
	if !mapsEqual(got, before) {
		t.Error("a torn rotation state changed files")
	}
}
