package policy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/knest-dev/knest/pkg/pki"
)

// CheckCSR refuses a CertificateSigningRequest (its spec.request, at path)
// whose subject names a reserved identity: a common name that is a reserved
// user or an organization that is a reserved group. The tenant's signers
// use the cluster CA, and the tenant API server authenticates certificates
// of that CA, so such a certificate would claim knestd's identity; the API
// server refuses it anyway (pkg/identity), and this says so at the request
// instead of at its first use. A request that does not parse is left to the
// API server's own validation, which refuses it with its reason.
func CheckCSR(request []byte, path *field.Path) field.ErrorList {
	block, _ := pem.Decode(request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil
	}
	var errs field.ErrorList
	if cn := csr.Subject.CommonName; pki.ReservedUser(cn) {
		errs = append(errs, field.Forbidden(path, fmt.Sprintf("the requested common name %q is a user reserved for knestd and the API server: no signer of this cluster may issue it", cn)))
	}
	for _, o := range csr.Subject.Organization {
		if pki.ReservedGroup(o) {
			errs = append(errs, field.Forbidden(path, fmt.Sprintf("the requested organization %q is a group reserved for knestd: no signer of this cluster may issue it", o)))
		}
	}
	return errs
}
