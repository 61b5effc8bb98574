package kubelet

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/knest-dev/knest/pkg/pki"
)

// servingCommonName is the subject of the serving certificate.
const servingCommonName = "knest-kubelet"

// serverTLS returns the server's TLS configuration: a serving certificate
// from the internal CA for addresses, and only clients whose certificate the
// CA signed for the key of clientCertFile.
func serverTLS(caCertFile, caKeyFile, clientCertFile string, addresses []net.IP, now func() time.Time) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caCertFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the internal CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no certificate", caCertFile)
	}
	client, err := pki.ReadCert(clientCertFile)
	if err != nil {
		return nil, err
	}
	allowed, ok := client.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, fmt.Errorf("%s holds an unsupported public key", clientCertFile)
	}
	serving := &servingCert{caCertFile: caCertFile, caKeyFile: caKeyFile, addresses: addresses, now: now}
	// Issued now, so that a broken CA fails the start.
	if _, err := serving.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: serving.get,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
		// Exec, attach and port-forward upgrade the connection, which
		// HTTP/2 cannot do.
		NextProtos: []string{"http/1.1"},
		// The key, not the name: a certificate of the same name is had from
		// a CSR signer a cluster admin drives, and the CA signs other
		// components' certificates too.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("a client certificate is required")
			}
			if !allowed.Equal(cs.PeerCertificates[0].PublicKey) {
				return fmt.Errorf("client %q is not the API server's kubelet client", cs.PeerCertificates[0].Subject.CommonName)
			}
			return nil
		},
	}, nil
}

// servingCert issues the serving certificate in memory, and again when it
// comes close to expiry, so a knestd that runs for longer than a
// certificate lasts keeps serving.
type servingCert struct {
	caCertFile, caKeyFile string
	addresses             []net.IP
	now                   func() time.Time

	mu   sync.Mutex
	cert *tls.Certificate
}

func (s *servingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Add(pki.RenewBefore).Before(s.cert.Leaf.NotAfter) {
		return s.cert, nil
	}
	cert, err := pki.Issue(s.caCertFile, s.caKeyFile, pki.Leaf{
		Subject: pkix.Name{CommonName: servingCommonName}, Server: true, IPs: s.addresses,
	}, now)
	if err != nil {
		return nil, fmt.Errorf("failed to issue the kubelet serving certificate: %w", err)
	}
	s.cert = &cert
	return s.cert, nil
}
