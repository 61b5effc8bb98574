package pki

import (
	"bytes"
	"testing"
	"time"
)

func TestAShortValidityIsRenewedInItsLastThirdWithTheSameKeysAndCA(t *testing.T) {
	t.Parallel()
	c := testConfig(t, func(c *Config) { c.LeafValidity = 3 * time.Minute })
	f, err := Ensure(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, c.Dir)
	serving := readCert(t, f.ServingCert)
	if got := serving.NotAfter.Sub(t0); got != 3*time.Minute {
		t.Fatalf("serving certificate valid for %s, want 3m", got)
	}
	// Before the last third: nothing changes.
	if _, err := Ensure(c, t0.Add(time.Minute+59*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, c.Dir); !mapsEqual(got, first) {
		t.Error("a certificate was renewed before the last third of its validity")
	}
	// In the last third: every leaf is renewed, keys and CAs stay.
	if _, err := Ensure(c, t0.Add(2*time.Minute+time.Second)); err != nil {
		t.Fatal(err)
	}
	now := snapshot(t, c.Dir)
	for _, leaf := range []string{"apiserver", "admin", "internal", "controller-manager", "apiserver-kubelet-client", "front-proxy-client"} {
		if now[leaf+".crt"] == first[leaf+".crt"] {
			t.Errorf("%s.crt was not renewed", leaf)
		}
		if now[leaf+".key"] != first[leaf+".key"] {
			t.Errorf("%s.key changed on renewal, want the same key", leaf)
		}
	}
	for _, kept := range []string{"ca.crt", "ca.key", "internal-ca.crt", "front-proxy-ca.crt", "sa.key"} {
		if now[kept] != first[kept] {
			t.Errorf("%s changed on a leaf renewal", kept)
		}
	}
	if err := readCert(t, f.ServingCert).CheckSignatureFrom(readCert(t, f.CACert)); err != nil {
		t.Errorf("the renewed serving certificate is not signed by the same CA: %v", err)
	}
}

func TestRotateLeavesReissuesCurrentCertificates(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	if _, err := Ensure(c, t0); err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, c.Dir)
	c.RotateLeaves = true
	if _, err := Ensure(c, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	now := snapshot(t, c.Dir)
	if now["admin.crt"] == first["admin.crt"] || now["apiserver.crt"] == first["apiserver.crt"] {
		t.Error("RotateLeaves left current leaf certificates alone")
	}
	if now["ca.crt"] != first["ca.crt"] || now["admin.key"] != first["admin.key"] {
		t.Error("RotateLeaves changed a CA or a key")
	}
	list, err := Certificates(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for _, ci := range list {
		names.WriteString(ci.File + " ")
		if ci.File == "client-ca.crt" {
			t.Error("Certificates lists the client CA bundle")
		}
		if ci.File == "admin.crt" && !ci.NotAfter.Equal(t0.Add(time.Hour).Add(LeafValidity).Truncate(time.Second)) {
			t.Errorf("admin.crt expires %s, want a year after the rotation", ci.NotAfter)
		}
	}
	if len(list) != 9 {
		t.Errorf("Certificates listed %d (%s), want the 3 CAs and 6 leaves", len(list), names.String())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
