package identity

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/knest-dev/knest/pkg/pki"
)

// NewAuthenticator returns delegate with reserved identities refused unless
// the request's client certificate chains to internalCAs, knestd's own CA,
// and is where the identity came from.
func NewAuthenticator(delegate authenticator.Request, internalCAs *x509.CertPool) authenticator.Request {
	return &reservedIdentityGuard{delegate: delegate, internalCAs: internalCAs, now: time.Now}
}

type reservedIdentityGuard struct {
	delegate    authenticator.Request
	internalCAs *x509.CertPool
	now         func() time.Time
}

// AuthenticateRequest authenticates with delegate, then refuses a reserved
// identity that does not come from a certificate of the internal CA.
// Certificates of the cluster CA stay valid for every other name: the
// tenant's admin has one, and the tenant's CSR signer issues them.
func (g *reservedIdentityGuard) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	resp, ok, err := g.delegate.AuthenticateRequest(req)
	if !ok || resp == nil || resp.User == nil {
		return resp, ok, err
	}
	claimed := reservedNames(resp.User)
	if len(claimed) == 0 {
		return resp, ok, err
	}
	if resp.User.GetName() == pki.APIServerUser {
		// Only the loopback token authenticator, which sits in front of
		// this guard, may say system:apiserver; knestd issues no
		// certificate for it.
		return nil, false, fmt.Errorf("identity %q is reserved for the API server's loopback client", pki.APIServerUser)
	}
	if g.fromInternalCertificate(req, resp.User, claimed) {
		return resp, ok, err
	}
	return nil, false, fmt.Errorf("identity %q is reserved for knestd: only knestd's own client certificates may authenticate as it", claimed[0])
}

// reservedNames returns the reserved user and group names of u.
func reservedNames(u user.Info) []string {
	var out []string
	if pki.ReservedUser(u.GetName()) {
		out = append(out, u.GetName())
	}
	for _, g := range u.GetGroups() {
		if pki.ReservedGroup(g) {
			out = append(out, g)
		}
	}
	return out
}

// fromInternalCertificate reports whether req's client certificate chains
// to the internal CA and names u and every reserved name it claims, so
// that the identity is the certificate's (and not, say, a token's sent
// alongside it).
func (g *reservedIdentityGuard) fromInternalCertificate(req *http.Request, u user.Info, claimed []string) bool {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return false
	}
	leaf := req.TLS.PeerCertificates[0]
	if leaf.Subject.CommonName != u.GetName() {
		return false
	}
	for _, name := range claimed {
		if name != u.GetName() && !slices.Contains(leaf.Subject.Organization, name) {
			return false
		}
	}
	intermediates := x509.NewCertPool()
	for _, c := range req.TLS.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: g.internalCAs, Intermediates: intermediates,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: g.now(),
	})
	return err == nil
}
