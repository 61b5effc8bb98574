package knestd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	miekgdns "github.com/miekg/dns"
	"k8s.io/apiserver/pkg/server/healthz"

	"github.com/knest-dev/knest/internal/readyzcheck"
	"github.com/knest-dev/knest/pkg/syncer"
)

// Names of knestd's checks in the API server's /readyz: the chart's
// readiness probe and `knest dev` wait on /readyz, so a tenant is ready
// only once the parts its pods need work too.
const (
	ReadyzSyncer = readyzcheck.Syncer
	ReadyzDNS    = readyzcheck.DNS
)

// readiness holds what the checks look at, filled in by the steps that
// start the syncer and the DNS server, after the API server serves.
type readiness struct {
	syncer atomic.Pointer[syncer.Syncer]
	// dnsAddr is the DNS server's UDP address, host:port, once it listens.
	dnsAddr atomic.Pointer[string]
	// dnsName is a name in the tenant's cluster zone, which the DNS server
	// answers from its cache of the tenant's Services:
	// kubernetes.default.svc.<cluster domain>.
	dnsName string
}

// checks are the readyz checks of what this knestd runs: none without the
// syncer, the DNS server's only when it is on.
func (r *readiness) checks(syncing, dnsOn bool) []healthz.HealthChecker {
	var checks []healthz.HealthChecker
	if syncing {
		checks = append(checks, healthz.NamedCheck(ReadyzSyncer, r.checkSyncer))
	}
	if syncing && dnsOn {
		checks = append(checks, healthz.NamedCheck(ReadyzDNS, r.checkDNS))
	}
	return checks
}

func (r *readiness) checkSyncer(req *http.Request) error {
	s := r.syncer.Load()
	if s == nil {
		return errors.New("the syncer has not started")
	}
	return s.Ready(req.Context())
}

// checkDNS asks the DNS server for a name of the tenant's cluster zone, as
// a pod would. Its sockets are bound from the start, but it reads them only
// once its cache of the tenant's Services has synced: until then the
// query times out.
func (r *readiness) checkDNS(req *http.Request) error {
	addr := r.dnsAddr.Load()
	if addr == nil {
		return errors.New("the DNS server has not started")
	}
	return queryDNS(req.Context(), *addr, r.dnsName)
}

// queryDNS sends one A query for name to addr and wants an answer from
// the zone: the record or NXDOMAIN (whether the Service exists is the
// tenant's business), not a failure.
func queryDNS(ctx context.Context, addr, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m := new(miekgdns.Msg)
	m.SetQuestion(miekgdns.Fqdn(name), miekgdns.TypeA)
	c := &miekgdns.Client{Net: "udp"}
	in, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return fmt.Errorf("the DNS server does not answer: %w", err)
	}
	if in.Rcode != miekgdns.RcodeSuccess && in.Rcode != miekgdns.RcodeNameError {
		return fmt.Errorf("the DNS server answers %s for %s", miekgdns.RcodeToString[in.Rcode], name)
	}
	return nil
}

// dialable turns a listening address into one to dial: an unspecified
// host (0.0.0.0, ::) is reached on loopback.
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
