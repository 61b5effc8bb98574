package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// UpstreamsFromResolvConf returns the resolvers ("host:port") of a
// resolv.conf file, in its order.
func UpstreamsFromResolvConf(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read resolvers from %s: %w", path, err)
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("no nameserver in %s", path)
	}
	out := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	return out, nil
}

// forwarder sends queries to upstream resolvers.
type forwarder struct {
	upstreams []string
	// timeout bounds one exchange with one upstream over one transport.
	timeout time.Duration
}

// exchange asks each upstream in turn until one answers, whatever its
// answer's code: an upstream that says NXDOMAIN or SERVFAIL has answered.
func (f forwarder) exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	var errs []error
	for _, up := range f.upstreams {
		resp, err := f.exchangeOne(ctx, req, up)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", up, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("failed to forward %s to any upstream resolver: %w", req.Question[0].Name, errors.Join(errs...))
}

// exchangeOne asks one upstream over UDP, and again over TCP when the UDP
// answer was truncated.
func (f forwarder) exchangeOne(ctx context.Context, req *dns.Msg, upstream string) (*dns.Msg, error) {
	// A fresh ID per upstream query: the client's ID is the client's
	// business, and a guessable one would ease spoofing our upstream
	// answers.
	m := req.Copy()
	m.Id = dns.Id()
	c := &dns.Client{Net: "udp", Timeout: f.timeout}
	resp, _, err := c.ExchangeContext(ctx, m, upstream)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, upstream)
	}
	if err != nil {
		return nil, err
	}
	// Some servers leave the question out of an error answer.
	if len(resp.Question) > 0 && (!strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) ||
		resp.Question[0].Qtype != m.Question[0].Qtype) {
		return nil, errors.New("answer is for another question")
	}
	resp.Id = req.Id
	return resp, nil
}
