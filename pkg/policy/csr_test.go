package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func csrPEM(t *testing.T, subject pkix.Name) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCheckCSR(t *testing.T) {
	t.Parallel()
	path := field.NewPath("spec", "request")
	tests := []struct {
		name    string
		request []byte
		want    []string // the refusals' details
	}{
		{name: "an ordinary user with system:masters is the tenant's business",
			request: csrPEM(t, pkix.Name{CommonName: "alice", Organization: []string{"system:masters"}})},
		{name: "a node's name is the tenant's business",
			request: csrPEM(t, pkix.Name{CommonName: "system:node:worker-1", Organization: []string{"system:nodes"}})},
		{name: "knestd's own user is refused",
			request: csrPEM(t, pkix.Name{CommonName: "system:knest:knestd"}),
			want:    []string{`the requested common name "system:knest:knestd" is a user reserved for knestd and the API server: no signer of this cluster may issue it`}},
		{name: "any user under the reserved prefix is refused",
			request: csrPEM(t, pkix.Name{CommonName: "system:knest:syncer"}),
			want:    []string{`the requested common name "system:knest:syncer" is a user reserved for knestd and the API server: no signer of this cluster may issue it`}},
		{name: "the API server's loopback user is refused",
			request: csrPEM(t, pkix.Name{CommonName: "system:apiserver"}),
			want:    []string{`the requested common name "system:apiserver" is a user reserved for knestd and the API server: no signer of this cluster may issue it`}},
		{name: "a reserved group among ordinary ones is refused",
			request: csrPEM(t, pkix.Name{CommonName: "mallory", Organization: []string{"dev", "system:knest:anything"}}),
			want:    []string{`the requested organization "system:knest:anything" is a group reserved for knestd: no signer of this cluster may issue it`}},
		{name: "a reserved user and group are both named",
			request: csrPEM(t, pkix.Name{CommonName: "system:knest:knestd", Organization: []string{"system:knest:x"}}),
			want: []string{
				`the requested common name "system:knest:knestd" is a user reserved for knestd and the API server: no signer of this cluster may issue it`,
				`the requested organization "system:knest:x" is a group reserved for knestd: no signer of this cluster may issue it`,
			}},
		{name: "a request that is not PEM is left to the API server's validation", request: []byte("not a request")},
		{name: "a PEM block of another type is left to the API server's validation",
			request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})},
		{name: "a request that does not parse is left to the API server's validation",
			request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, err := range CheckCSR(tc.request, path) {
				if err.Type != field.ErrorTypeForbidden || err.Field != "spec.request" {
					t.Errorf("refusal %v: want Forbidden at spec.request", err)
				}
				got = append(got, err.Detail)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
		})
	}
}
