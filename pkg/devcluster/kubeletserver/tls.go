package kubeletserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/knest-dev/knest/pkg/pki"
)

// servingValidity is how long the in-memory serving certificate is valid; it
// is issued afresh at every start.
const servingValidity = 365 * 24 * time.Hour

// tlsConfig returns the server's TLS configuration: a serving certificate for
// loopback issued by the CA, and only clients whose certificate the CA signed
// for the common name of clientCertFile.
func tlsConfig(caCertFile, caKeyFile, clientCertFile string, now time.Time) (*tls.Config, error) {
	ca, err := tls.LoadX509KeyPair(caCertFile, caKeyFile)
	if err != nil {
		return nil, fmt.Errorf("failed to load the internal CA: %w", err)
	}
	if ca.Leaf == nil {
		if ca.Leaf, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
			return nil, fmt.Errorf("failed to parse the internal CA: %w", err)
		}
	}
	serving, err := issueServing(ca, now)
	if err != nil {
		return nil, err
	}
	client, err := pki.ReadCert(clientCertFile)
	if err != nil {
		return nil, err
	}
	allowed := client.Subject.CommonName
	if allowed == "" {
		return nil, fmt.Errorf("%s has no common name", clientCertFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Exec, attach and port-forward upgrade the connection, which
		// HTTP/2 cannot do.
		NextProtos: []string{"http/1.1"},
		// The CA signs the admin's and the controllers' certificates too;
		// only the API server talks to a kubelet.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("a client certificate is required")
			}
			if cn := cs.PeerCertificates[0].Subject.CommonName; cn != allowed {
				return fmt.Errorf("client %q is not the API server's kubelet client", cn)
			}
			return nil
		},
	}, nil
}

// issueServing issues the serving certificate for 127.0.0.1, the address the
// nodes advertise and the API server dials.
func issueServing(ca tls.Certificate, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to generate the serving key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	notAfter := now.Add(servingValidity)
	if notAfter.After(ca.Leaf.NotAfter) {
		notAfter = ca.Leaf.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: "knest-devcluster-kubelet"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, key.Public(), ca.PrivateKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to issue the serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
