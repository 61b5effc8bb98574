package pki

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/knest-dev/knest/internal/atomicfile"
)

// Phases of a cluster CA rotation.
const (
	// CATransition: a new cluster CA signs, both are trusted.
	CATransition = "transition"
	// CAFinished: the old CA is dropped.
	CAFinished = "finished"
)

// CARotation is the state of the last cluster CA rotation, kept in
// Files.CARotationState. It is the rotation's only commit point: one
// atomic write moves a rotation from one phase to the next, and Ensure
// derives ca.crt/ca.key, the previous CA's files and the bundles from it
// at every call, so a knestd killed anywhere in a rotation starts again in
// the phase last written, with consistent files.
type CARotation struct {
	Phase   string    `json:"phase"`
	Started time.Time `json:"started"`
	// Until ends the transition on its own (FinishCARotationIfDue); zero
	// means only an explicit finish does.
	Until    time.Time `json:"until,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Current is the CA that signs from the rotation's start on.
	Current PEMPair `json:"current"`
	// Previous is the CA still trusted during the transition; gone once
	// finished.
	Previous *PEMPair `json:"previous,omitempty"`
}

// PEMPair is a certificate and its key, PEM-encoded.
type PEMPair struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// InTransition says whether both CAs are trusted.
func (r *CARotation) InTransition() bool { return r != nil && r.Phase == CATransition }

// ReadCARotation reads the rotation state of a PKI directory; no rotation
// ever is (nil, nil).
func ReadCARotation(dir string) (*CARotation, error) {
	path := FilesIn(dir).CARotationState
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var r CARotation
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s does not parse: %w", path, err)
	}
	switch {
	case r.Phase != CATransition && r.Phase != CAFinished:
		return nil, fmt.Errorf("%s: unknown phase %q", path, r.Phase)
	case r.Phase == CATransition && r.Previous == nil:
		return nil, fmt.Errorf("%s: a transition without the previous CA", path)
	}
	return &r, nil
}

func writeCARotation(dir string, r *CARotation) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(FilesIn(dir).CARotationState, append(data, '\n'), 0o600)
}

// BeginCARotation creates a new cluster CA and starts a transition in
// which both CAs are trusted (client CA bundle, kubeconfigs' and pods' CA
// bundle) and the new one signs the client leaves and the CSR signer's
// certificates. The serving certificate stays under the old CA until the
// rotation finishes, so clients that trust only the old CA keep working.
// transition > 0 ends the transition on its own after that long. The
// running components pick the files up at their next start.
func BeginCARotation(c Config, now time.Time, transition time.Duration) (*CARotation, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if _, err := Ensure(c, now); err != nil {
		return nil, err
	}
	old, err := ReadCARotation(c.Dir)
	if err != nil {
		return nil, err
	}
	if old.InTransition() {
		return nil, fmt.Errorf("a CA rotation is in its transition since %s: finish it first", old.Started.UTC().Format(time.RFC3339))
	}
	f := FilesIn(c.Dir)
	prevCert, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, err
	}
	prevKey, err := os.ReadFile(f.CAKey)
	if err != nil {
		return nil, err
	}
	next, err := newCA(fmt.Sprintf("%s-ca-%s", c.ClusterName, now.UTC().Format("20060102-150405")), now)
	if err != nil {
		return nil, err
	}
	r := &CARotation{Phase: CATransition, Started: now.UTC(), Current: next, Previous: &PEMPair{Cert: string(prevCert), Key: string(prevKey)}}
	if transition > 0 {
		r.Until = now.Add(transition).UTC()
	}
	if err := writeCARotation(c.Dir, r); err != nil {
		return nil, err
	}
	if _, err := Ensure(c, now); err != nil {
		return nil, err
	}
	return r, nil
}

// FinishCARotation ends a transition: the old CA is no longer trusted and
// the serving certificate is re-issued under the new one.
func FinishCARotation(c Config, now time.Time) (*CARotation, error) {
	r, err := ReadCARotation(c.Dir)
	if err != nil {
		return nil, err
	}
	if !r.InTransition() {
		return nil, errors.New("no CA rotation is in its transition")
	}
	r.Phase, r.Finished, r.Previous = CAFinished, now.UTC(), nil
	if err := writeCARotation(c.Dir, r); err != nil {
		return nil, err
	}
	if _, err := Ensure(c, now); err != nil {
		return nil, err
	}
	return r, nil
}

// FinishCARotationIfDue finishes a transition whose Until has passed and
// reports whether it did.
func FinishCARotationIfDue(c Config, now time.Time) (bool, error) {
	r, err := ReadCARotation(c.Dir)
	if err != nil || !r.InTransition() || r.Until.IsZero() || now.Before(r.Until) {
		return false, err
	}
	_, err = FinishCARotation(c, now)
	return err == nil, err
}

// applyCARotation writes the files the rotation state says: ca.crt/ca.key
// are the current CA, the previous CA's files exist only during the
// transition. It returns the previous CA during the transition.
func applyCARotation(f Files, r *CARotation) (*authority, error) {
	if r == nil {
		return nil, nil
	}
	if _, err := parsePair(r.Current); err != nil {
		return nil, fmt.Errorf("%s: current CA: %w", f.CARotationState, err)
	}
	if err := writeIfChanged(f.CAKey, []byte(r.Current.Key), 0o600); err != nil {
		return nil, err
	}
	if err := writeIfChanged(f.CACert, []byte(r.Current.Cert), 0o644); err != nil {
		return nil, err
	}
	if !r.InTransition() {
		for _, p := range []string{f.PreviousCACert, f.PreviousCAKey} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return nil, nil
	}
	prev, err := parsePair(*r.Previous)
	if err != nil {
		return nil, fmt.Errorf("%s: previous CA: %w", f.CARotationState, err)
	}
	if err := writeIfChanged(f.PreviousCAKey, []byte(r.Previous.Key), 0o600); err != nil {
		return nil, err
	}
	if err := writeIfChanged(f.PreviousCACert, []byte(r.Previous.Cert), 0o644); err != nil {
		return nil, err
	}
	return prev, nil
}

func parsePair(p PEMPair) (*authority, error) {
	block, _ := pem.Decode([]byte(p.Cert))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("not a CA certificate")
	}
	key, err := parseKey([]byte(p.Key))
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("the certificate does not match its key")
	}
	return &authority{cert: cert, key: key}, nil
}

func newCA(cn string, now time.Time) (PEMPair, error) {
	der, key, err := createCA(cn, now)
	if err != nil {
		return PEMPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEMPair{}, err
	}
	return PEMPair{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}, nil
}
