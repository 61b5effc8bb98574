package identity

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/knest-dev/knest/pkg/pki"
)

// fixedUser stands for the API server's authenticators: it authenticates
// every request as one user.
type fixedUser struct {
	user user.Info
	err  error
}

func (f fixedUser) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	if f.err != nil || f.user == nil {
		return nil, false, f.err
	}
	return &authenticator.Response{User: f.user}, true, nil
}

func TestAuthenticatorTakesReservedIdentitiesOnlyFromTheInternalCA(t *testing.T) {
	t.Parallel()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "acme", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	internalCA, err := pki.ReadCert(files.InternalCACert)
	if err != nil {
		t.Fatal(err)
	}
	internalCAs := x509.NewCertPool()
	internalCAs.AddCert(internalCA)
	certFile := func(path string) *x509.Certificate {
		cert, err := pki.ReadCert(path)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	// What the tenant's CSR signer, which is the cluster CA, issues.
	tenantSigned := func(subject pkix.Name) *x509.Certificate {
		pair, err := pki.Issue(files.CACert, files.CAKey, pki.Leaf{Subject: subject}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf
	}
	internalSigned := func(subject pkix.Name) *x509.Certificate {
		pair, err := pki.Issue(files.InternalCACert, files.InternalCAKey, pki.Leaf{Subject: subject}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf
	}
	knestd := &user.DefaultInfo{Name: pki.InternalUser, Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}

	tests := []struct {
		name      string
		user      user.Info
		cert      *x509.Certificate // the request's client certificate, if any
		wantError string            // empty: authenticated as user
	}{
		{name: "knestd's own certificate authenticates knestd", user: knestd, cert: certFile(files.InternalCert)},
		{name: "the tenant's admin certificate authenticates the admin",
			user: &user.DefaultInfo{Name: "knest-admin", Groups: []string{"system:masters"}}, cert: certFile(files.AdminCert)},
		{name: "a tenant-signed certificate with an ordinary name authenticates",
			user: &user.DefaultInfo{Name: "alice", Groups: []string{"system:masters"}}, cert: tenantSigned(pkix.Name{CommonName: "alice", Organization: []string{"system:masters"}})},
		{name: "a tenant-signed certificate for knestd's name is refused",
			user: knestd, cert: tenantSigned(pkix.Name{CommonName: pki.InternalUser, Organization: []string{"system:masters"}}),
			wantError: `identity "system:knest:knestd" is reserved for knestd`},
		{name: "a tenant-signed certificate for the API server's name is refused",
			user: &user.DefaultInfo{Name: pki.APIServerUser, Groups: []string{"system:masters"}}, cert: tenantSigned(pkix.Name{CommonName: pki.APIServerUser}),
			wantError: `"system:apiserver" is reserved`},
		{name: "a tenant-signed certificate for a reserved group is refused",
			user: &user.DefaultInfo{Name: "mallory", Groups: []string{"system:knest:syncers"}}, cert: tenantSigned(pkix.Name{CommonName: "mallory", Organization: []string{"system:knest:syncers"}}),
			wantError: `"system:knest:syncers" is reserved`},
		{name: "knestd's name without a client certificate (a token, say) is refused",
			user: knestd, wantError: "reserved for knestd"},
		{name: "system:apiserver past the loopback token authenticator is refused",
			user: &user.DefaultInfo{Name: pki.APIServerUser}, wantError: "reserved for the API server's loopback client"},
		{name: "even an internal certificate for system:apiserver is refused",
			user: &user.DefaultInfo{Name: pki.APIServerUser, Groups: []string{"system:masters"}}, cert: internalSigned(pkix.Name{CommonName: pki.APIServerUser, Organization: []string{"system:masters"}}),
			wantError: "reserved for the API server's loopback client"},
		{name: "knestd's name while presenting another internal certificate is refused",
			user: knestd, cert: certFile(files.ControllerManagerCert), wantError: "reserved for knestd"},
		{name: "a reserved group the internal certificate does not carry is refused",
			user: &user.DefaultInfo{Name: pki.InternalUser, Groups: []string{"system:knest:extra"}}, cert: certFile(files.InternalCert), wantError: "reserved for knestd"},
		{name: "a reserved group the internal certificate carries authenticates",
			user: &user.DefaultInfo{Name: "component", Groups: []string{"system:knest:components"}}, cert: internalSigned(pkix.Name{CommonName: "component", Organization: []string{"system:knest:components"}})},
		{name: "a reserved name under a certificate that is not a client's is refused",
			user: &user.DefaultInfo{Name: "system:knest:kubelet"}, cert: func() *x509.Certificate {
				pair, err := pki.Issue(files.InternalCACert, files.InternalCAKey, pki.Leaf{Subject: pkix.Name{CommonName: "system:knest:kubelet"}, Server: true}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				return pair.Leaf
			}(), wantError: "reserved for knestd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1/api", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cert != nil {
				req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
			}
			resp, ok, err := NewAuthenticator(fixedUser{user: tc.user}, internalCAs).AuthenticateRequest(req)
			if tc.wantError == "" {
				if err != nil || !ok || resp.User.GetName() != tc.user.GetName() {
					t.Fatalf("got ok=%v err=%v, want authenticated as %q", ok, err, tc.user.GetName())
				}
				return
			}
			if ok || resp != nil || err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("got ok=%v resp=%v err=%v, want refused with %q", ok, resp, err, tc.wantError)
			}
		})
	}
}

func TestAuthenticatorPassesFailuresThrough(t *testing.T) {
	t.Parallel()
	failure := errors.New("bad token")
	req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1/api", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, delegate := range []fixedUser{{err: failure}, {}} {
		resp, ok, err := NewAuthenticator(delegate, x509.NewCertPool()).AuthenticateRequest(req)
		if ok || resp != nil || !errors.Is(err, delegate.err) {
			t.Errorf("delegate %+v: got ok=%v resp=%v err=%v, want its own failure", delegate, ok, resp, err)
		}
	}
}
