package pki

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// CertInfo describes one certificate file of a PKI directory.
type CertInfo struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	IsCA      bool      `json:"isCA"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	Serial    string    `json:"serial"`
}

// Certificates lists the certificates in a PKI directory, sorted by file
// name; a bundle (client-ca.crt, ca-bundle.crt) is left out, its CAs are
// listed on their own.
func Certificates(dir string) ([]CertInfo, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	slices.Sort(matches)
	var out []CertInfo
	for _, path := range matches {
		if filepath.Base(path) == filepath.Base(FilesIn(dir).CABundle) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s is not a PEM certificate", path)
		}
		if len(strings.TrimSpace(string(rest))) > 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", path, err)
		}
		out = append(out, CertInfo{
			File: filepath.Base(path), Subject: cert.Subject.String(), Issuer: cert.Issuer.CommonName, IsCA: cert.IsCA,
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Serial: cert.SerialNumber.Text(16),
		})
	}
	return out, nil
}
