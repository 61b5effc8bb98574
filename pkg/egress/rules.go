package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// Reasons of a refusal: the value of the refusals metric's reason label.
const (
	// ReasonMalformed: not a CONNECT to host:port.
	ReasonMalformed = "malformed"
	// ReasonUnresolved: the name resolved to nothing, or failed to.
	ReasonUnresolved = "unresolved"
	// ReasonNotAllowed: an address the target resolved to is not allowed.
	ReasonNotAllowed = "not-allowed"
	// ReasonLookupFailed: the tenant's addresses could not be read; the
	// check fails closed.
	ReasonLookupFailed = "lookup-failed"
)

// TenantAddresses tells which host addresses are the tenant's: the IPs of
// its running host pods and the ClusterIPs of its host Services, as
// knestd's host informers see them. Never what the tenant wrote (pod
// status, Nodes, Endpoints): those are the tenant's to set.
// Implementations must be safe for concurrent use.
type TenantAddresses interface {
	// TenantAddress names what of the tenant's owns ip ("pod ns/name",
	// "service ns/name"), or returns "" when nothing does.
	TenantAddress(ctx context.Context, ip netip.Addr) (owner string, err error)
}

// Resolver resolves names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Refusal is why a target may not be dialled. Its message goes to the
// tenant (in the API server's error), so it names the target and the rule,
// and nothing of the host beyond the address the tenant asked for.
type Refusal struct {
	// Target is the host:port as asked.
	Target string
	// Reason is one of the Reason constants.
	Reason string
	// Message says why, for a person.
	Message string
}

func (r *Refusal) Error() string {
	if r.Target == "" {
		return "knest refused a connection of the tenant API server: " + r.Message
	}
	return fmt.Sprintf("knest refused the tenant API server's connection to %s: %s", r.Target, r.Message)
}

// Rules decide which targets the tenant API server may dial: knestd's own
// kubelet listener (its exact address and port), the operator's networks,
// and, once knestd's host caches have synced, the tenant's host pods and
// Services. Safe for concurrent use.
//
// The kubelet address and the tenant's addresses are set once knestd has
// them: both come from components that start after the API server, which
// must already have its dialer (the egress selector is read at start).
type Rules struct {
	// Tenant names the tenant in refusals.
	Tenant string
	// CIDRs are the operator's networks (policy apiServerEgressCIDRs).
	CIDRs []netip.Prefix

	kubelet atomic.Pointer[netip.AddrPort]
	tenant  atomic.Pointer[tenantAddresses]
}

// tenantAddresses boxes the interface for atomic.Pointer.
type tenantAddresses struct{ TenantAddresses }

// SetKubelet sets knestd's kubelet listener as the API server dials it:
// the virtual Nodes' InternalIP and the kubelet port.
func (r *Rules) SetKubelet(a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	r.kubelet.Store(&a)
}

// SetTenantAddresses sets the tenant's host addresses. Until it is called,
// only the kubelet listener and the operator's networks are allowed: before
// knestd's host caches have synced, nothing says which addresses are the
// tenant's.
func (r *Rules) SetTenantAddresses(t TenantAddresses) {
	r.tenant.Store(&tenantAddresses{t})
}

// Check decides a target, host:port as in a CONNECT request. It returns the
// addresses to dial, in the resolver's order, every one of them allowed, or
// a *Refusal. A name is resolved here, once: every address it resolves to
// must be allowed (a name mixing allowed and other addresses is refused
// whole, since which one a later lookup would return is not ours to
// choose), and the caller dials the returned addresses, never the name.
func (r *Rules) Check(ctx context.Context, resolver Resolver, target string) ([]netip.AddrPort, error) {
	refuse := func(reason, format string, args ...any) error {
		return &Refusal{Target: target, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	host, portText, err := net.SplitHostPort(target)
	if err != nil {
		return nil, refuse(ReasonMalformed, "not a host:port")
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, refuse(ReasonMalformed, "port %q is not a port number", portText)
	}
	if strings.Contains(host, "%") {
		return nil, refuse(ReasonMalformed, "IPv6 zones are not supported")
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if host == "" {
			return nil, refuse(ReasonMalformed, "no host")
		}
		ips, err = resolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return nil, refuse(ReasonUnresolved, "%s does not resolve", host)
		}
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		why, err := r.refusal(ctx, ap)
		if err != nil {
			return nil, refuse(ReasonLookupFailed, "%v", err)
		}
		if why != "" {
			if ap.Addr().String() != host {
				why = fmt.Sprintf("%s resolves to %s, which %s", host, ap.Addr(), why)
			} else {
				why = fmt.Sprintf("%s %s", ap.Addr(), why)
			}
			return nil, refuse(ReasonNotAllowed, "%s", why)
		}
		out = append(out, ap)
	}
	return out, nil
}

// refusal says why ap may not be dialled, completing "<address> ...", or
// returns "" when it may.
func (r *Rules) refusal(ctx context.Context, ap netip.AddrPort) (string, error) {
	ip := ap.Addr()
	kubelet := r.kubelet.Load()
	if kubelet != nil && *kubelet == ap {
		return "", nil
	}
	// The unspecified address means this host to a dialer, and multicast
	// is no one's service: no rule below may allow them.
	if ip.IsUnspecified() || ip.IsMulticast() {
		return "is not an address a tenant may reach", nil
	}
	for _, c := range r.CIDRs {
		if c.Contains(ip) {
			return "", nil
		}
	}
	if kubelet != nil && kubelet.Addr() == ip {
		return fmt.Sprintf("is knestd's kubelet API address, whose port is %d, not %d", kubelet.Port(), ap.Port()), nil
	}
	t := r.tenant.Load()
	if t == nil {
		return "is not knestd's kubelet API nor in the operator's apiServerEgressCIDRs, and knestd has not yet synced the tenant's host pods and Services", nil
	}
	owner, err := t.TenantAddress(ctx, ip)
	if err != nil {
		return "", fmt.Errorf("failed to look up %s among tenant %s's host pods and Services: %w", ip, r.Tenant, err)
	}
	if owner != "" {
		return "", nil
	}
	return fmt.Sprintf("is not a running pod or a Service of tenant %s on the host, knestd's kubelet API, nor in the operator's apiServerEgressCIDRs", r.Tenant), nil
}

// ParseCIDRs parses networks in CIDR notation, as the policy file holds
// them.
func ParseCIDRs(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
