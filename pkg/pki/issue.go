package pki

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Leaf describes a certificate Issue signs.
type Leaf struct {
	Subject pkix.Name
	// Server makes a serving certificate; otherwise it is a client's.
	Server   bool
	DNSNames []string
	IPs      []net.IP
}

// Issue signs a new certificate and key with the CA in caCertFile and
// caKeyFile and returns them in memory, valid for LeafValidity (or until the
// CA expires). It is for certificates that are cheap to make again at every
// start and that no other process reads, so they never reach the disk.
func Issue(caCertFile, caKeyFile string, leaf Leaf, now time.Time) (tls.Certificate, error) {
	caCert, caKey, err := loadPair(caCertFile, caKeyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if caCert == nil || caKey == nil {
		return tls.Certificate{}, fmt.Errorf("CA %s and its key %s are required", caCertFile, caKeyFile)
	}
	if !caCert.IsCA {
		return tls.Certificate{}, fmt.Errorf("%s is not a CA certificate", caCertFile)
	}
	if now.After(caCert.NotAfter) {
		return tls.Certificate{}, errors.New("the CA has expired")
	}
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	usage := x509.ExtKeyUsageClientAuth
	if leaf.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	notAfter := now.Add(LeafValidity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               leaf.Subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		DNSNames:              leaf.DNSNames,
		IPAddresses:           leaf.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to issue a certificate for %s: %w", leaf.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, nil
}

// ReadCert reads a PEM certificate file.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is not a PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return cert, nil
}
