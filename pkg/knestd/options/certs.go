package options

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// MinCertValidity is the shortest --cert-validity: renewal runs at a third of
// it, and a renewal must have time to reach every client.
const MinCertValidity = time.Minute

func (o *Options) addCertFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.CertValidity, "cert-validity", o.CertValidity, "Validity of the leaf certificates knestd issues (serving, admin, its own clients); they are renewed while knestd runs, 30 days (or a third of a shorter validity) before they expire. 0 means 365 days; short values are for tests.")
}

func (o Options) validateCerts() []error {
	if o.CertValidity != 0 && o.CertValidity < MinCertValidity {
		return []error{fmt.Errorf("--cert-validity %s is shorter than %s", o.CertValidity, MinCertValidity)}
	}
	return nil
}
