package dns

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

const (
	// ttl of every answer and of negative answers (through the SOA
	// minimum): short, so that clients see Service changes within seconds
	// and a deleted Service's name does not linger.
	ttl = 5
	// schemaVersion is the Kubernetes DNS specification version answered
	// at dns-version.<zone>.
	schemaVersion = "1.1.0"

	reverseV4Zone = "in-addr.arpa."
	reverseV6Zone = "ip6.arpa."
)

// lookup is what a zone holds at one name.
type lookup struct {
	// exists is false for a name that does not exist (NXDOMAIN). A name
	// exists when it has records or a name below it does.
	exists bool
	// records are all records at the name.
	records []dns.RR
	// extra are the addresses of the targets of SRV records, for the
	// additional section.
	extra []dns.RR
}

// hdr returns a record header for name.
func hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// addrRR returns the A or AAAA record of addr at name.
func addrRR(name string, addr netip.Addr) dns.RR {
	if addr.Is4() {
		return &dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(addr.AsSlice())}
	}
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(addr.AsSlice())}
}

// soa returns the SOA record of a zone this server answers for. Nothing
// transfers these zones, so the serial and timers only matter for negative
// caching: the minimum is the TTL.
func soa(zone, clusterZone string) dns.RR {
	return &dns.SOA{
		Hdr:     hdr(zone, dns.TypeSOA),
		Ns:      "ns.dns." + clusterZone,
		Mbox:    "hostmaster." + clusterZone,
		Serial:  1,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// lookupCluster looks up name in the tenant's cluster zone; rel are its
// labels left of the zone.
func (s *Server) lookupCluster(ctx context.Context, name string, rel []string) (lookup, error) {
	n := len(rel)
	switch {
	case n == 0:
		return lookup{exists: true, records: []dns.RR{soa(s.zone, s.zone)}}, nil
	case n == 1 && rel[0] == "dns-version":
		return lookup{exists: true, records: []dns.RR{&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{schemaVersion}}}}, nil
	case rel[n-1] == "svc":
		return s.lookupServices(ctx, name, rel[:n-1])
	case rel[n-1] == "pod":
		return lookupPod(name, rel[:n-1]), nil
	}
	return lookup{}, nil
}

// lookupServices looks up a name under svc.<zone>; rel are its labels left
// of "svc": <ns>, <svc>.<ns>, <endpoint>.<svc>.<ns>, _<proto>.<svc>.<ns> or
// _<port>._<proto>.<svc>.<ns>.
func (s *Server) lookupServices(ctx context.Context, name string, rel []string) (lookup, error) {
	n := len(rel)
	switch {
	case n == 0:
		return lookup{exists: true}, nil
	case n == 1:
		// A namespace's name exists while it has Services, so that a
		// resolver does not take NXDOMAIN there to mean that no Service
		// of the namespace exists (RFC 8020).
		svcs, err := s.source.Services(ctx, rel[0])
		if err != nil {
			return lookup{}, err
		}
		return lookup{exists: len(svcs) > 0}, nil
	case n > 4:
		return lookup{}, nil
	}
	svc, err := s.source.Service(ctx, rel[n-1], rel[n-2])
	if err != nil || svc == nil {
		return lookup{}, err
	}
	var endpointSlices []discoveryv1.EndpointSlice
	if headless(svc) {
		if endpointSlices, err = s.source.EndpointSlices(ctx, svc.Namespace, svc.Name); err != nil {
			return lookup{}, err
		}
	}
	names := serviceNames(svc, endpointSlices, s.zone)
	l := lookup{exists: exists(names, name), records: names[name]}
	for _, rr := range l.records {
		if srv, ok := rr.(*dns.SRV); ok {
			l.extra = append(l.extra, names[srv.Target]...)
		}
	}
	l.extra = dns.Dedup(l.extra, nil)
	return l, nil
}

// exists reports whether name or a name below it has an entry in names.
func exists(names map[string][]dns.RR, name string) bool {
	if _, ok := names[name]; ok {
		return true
	}
	for n := range names {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

// serviceBase returns <svc>.<ns>.svc.<zone>.
func serviceBase(namespace, name, zone string) string {
	return name + "." + namespace + ".svc." + zone
}

// serviceNames returns the records of every name of a Service, by owner
// name. A name is present, possibly without records, when it exists.
func serviceNames(svc *corev1.Service, endpointSlices []discoveryv1.EndpointSlice, zone string) map[string][]dns.RR {
	base := serviceBase(svc.Namespace, svc.Name, zone)
	names := map[string][]dns.RR{}
	add := func(name string, rr dns.RR) { names[name] = append(names[name], rr) }
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		names[base] = []dns.RR{&dns.CNAME{Hdr: hdr(base, dns.TypeCNAME), Target: dns.CanonicalName(svc.Spec.ExternalName)}}
	case headless(svc):
		// A headless Service without ready endpoints has no name at all,
		// as the specification asks.
		for _, ep := range readyEndpoints(svc, endpointSlices) {
			target := ep.name + "." + base
			add(base, addrRR(base, ep.addr))
			add(target, addrRR(target, ep.addr))
			// The endpoint's ports, not the Service's: clients connect
			// to the pod directly, on the target port.
			for _, p := range ep.ports {
				if p.Name == nil || *p.Name == "" || p.Port == nil {
					continue
				}
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				add(srvName(*p.Name, proto, base), srv(srvName(*p.Name, proto, base), *p.Port, target))
			}
		}
	default:
		names[base] = nil
		for _, a := range clusterAddrs(svc) {
			add(base, addrRR(base, a))
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == "" {
				continue
			}
			add(srvName(p.Name, p.Protocol, base), srv(srvName(p.Name, p.Protocol, base), p.Port, base))
		}
	}
	for n, rrs := range names {
		// One endpoint in two slices (dual-stack, or while a slice is
		// being split) yields the same SRV records twice.
		names[n] = dns.Dedup(rrs, nil)
	}
	return names
}

// srvName returns _<port>._<proto>.<base>.
func srvName(port string, proto corev1.Protocol, base string) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return "_" + strings.ToLower(port) + "._" + strings.ToLower(string(proto)) + "." + base
}

// srv returns an SRV record. All targets of a name have the same priority
// and weight: clients pick among them evenly.
func srv(name string, port int32, target string) dns.RR {
	return &dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(port), Target: target}
}

// headless reports whether a Service has no cluster IP and is answered with
// its endpoints.
func headless(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// clusterAddrs returns the cluster IPs of a Service that has them.
func clusterAddrs(svc *corev1.Service) []netip.Addr {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || headless(svc) {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// endpoint is one address of a ready endpoint of a headless Service.
type endpoint struct {
	// name is the endpoint's hostname (a StatefulSet pod's name) or, for
	// endpoints without one, the address with dashes for dots or colons:
	// the specification asks for some unique name per endpoint.
	name     string
	hostname bool
	addr     netip.Addr
	ports    []discoveryv1.EndpointPort
}

// ready reports whether an endpoint counts for DNS. A nil ready condition
// means unknown and is taken as ready, as the API advises.
func ready(svc *corev1.Service, ep discoveryv1.Endpoint) bool {
	return svc.Spec.PublishNotReadyAddresses || ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// readyEndpoints returns the ready endpoint addresses of a Service's
// slices, one per name and address, sorted.
func readyEndpoints(svc *corev1.Service, endpointSlices []discoveryv1.EndpointSlice) []endpoint {
	type key struct {
		name string
		addr netip.Addr
	}
	seen := map[key]bool{}
	var out []endpoint
	for _, sl := range endpointSlices {
		if sl.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, ep := range sl.Endpoints {
			if !ready(svc, ep) {
				continue
			}
			for _, s := range ep.Addresses {
				a, err := netip.ParseAddr(s)
				if err != nil {
					continue
				}
				e := endpoint{name: dashed(a), addr: a, ports: sl.Ports}
				if ep.Hostname != nil && *ep.Hostname != "" {
					e.name, e.hostname = strings.ToLower(*ep.Hostname), true
				}
				if k := (key{e.name, a}); !seen[k] {
					seen[k] = true
					out = append(out, e)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int {
		return cmp.Or(strings.Compare(a.name, b.name), a.addr.Compare(b.addr))
	})
	return out
}

// dashed returns an address as one DNS label: 10-0-0-1, fd00--1.
func dashed(a netip.Addr) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
}

// lookupPod answers the deprecated <a>-<b>-<c>-<d>.<ns>.pod.<zone> names
// that the specification still requires: the address is read from the
// name itself, which reveals nothing. rel are the labels left of "pod".
func lookupPod(name string, rel []string) lookup {
	switch len(rel) {
	case 0, 1:
		return lookup{exists: true}
	case 2:
		label := rel[0]
		a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
		if err != nil || !a.Is4() {
			if a, err = netip.ParseAddr(strings.ReplaceAll(label, "-", ":")); err != nil || !a.Is6() || a.Zone() != "" {
				return lookup{}
			}
		}
		return lookup{exists: true, records: []dns.RR{addrRR(name, a)}}
	}
	return lookup{}
}

// lookupReverse answers a name under in-addr.arpa or ip6.arpa: PTR records
// for the tenant's Service cluster IPs and for the ready endpoints with a
// hostname of its headless Services. rel are the labels left of the zone.
func (s *Server) lookupReverse(ctx context.Context, zone string, name string, rel []string) (lookup, error) {
	addr, complete, ok := reverseAddr(zone, rel)
	if !ok {
		return lookup{}, nil
	}
	if !complete {
		// Some address below this name may be the tenant's: claim that
		// the name exists rather than deny every address below it to a
		// resolver that minimises query names (RFC 8020, RFC 9156).
		return lookup{exists: true}, nil
	}
	targets, err := s.ptrTargets(ctx, addr)
	if err != nil {
		return lookup{}, err
	}
	l := lookup{exists: len(targets) > 0}
	for _, t := range targets {
		l.records = append(l.records, &dns.PTR{Hdr: hdr(name, dns.TypePTR), Ptr: t})
	}
	return l, nil
}

// reverseAddr parses the labels of a reverse name left of its zone.
// complete is false for a valid name that is shorter than an address; ok
// is false for a name no address has.
func reverseAddr(zone string, rel []string) (addr netip.Addr, complete, ok bool) {
	if zone == reverseV4Zone {
		var b [4]byte
		if len(rel) > len(b) {
			return netip.Addr{}, false, false
		}
		for i, label := range rel {
			v, err := strconv.Atoi(label)
			if err != nil || v < 0 || v > 255 || strconv.Itoa(v) != label {
				return netip.Addr{}, false, false
			}
			b[len(rel)-1-i] = byte(v)
		}
		return netip.AddrFrom4(b), len(rel) == len(b), true
	}
	var b [16]byte
	if len(rel) > 2*len(b) {
		return netip.Addr{}, false, false
	}
	for i, label := range rel {
		v, err := strconv.ParseUint(label, 16, 4)
		if err != nil || len(label) != 1 {
			return netip.Addr{}, false, false
		}
		// The last label is the first nibble, high half of byte 0.
		pos := len(rel) - 1 - i
		b[pos/2] |= byte(v) << (4 * (1 - pos%2))
	}
	return netip.AddrFrom16(b), len(rel) == 2*len(b), true
}

// ptrTargets returns the names that addr is the address of: Services with
// it as a cluster IP, and the hostnames of headless Services' ready
// endpoints with it.
func (s *Server) ptrTargets(ctx context.Context, addr netip.Addr) ([]string, error) {
	ip := addr.String()
	var targets []string
	svcs, err := s.source.ServicesByIP(ctx, ip)
	if err != nil {
		return nil, err
	}
	for i := range svcs {
		if slices.Contains(clusterAddrs(&svcs[i]), addr) {
			targets = append(targets, serviceBase(svcs[i].Namespace, svcs[i].Name, s.zone))
		}
	}
	eps, err := s.source.EndpointSlicesByIP(ctx, ip)
	if err != nil {
		return nil, err
	}
	for _, sl := range eps {
		svc, err := s.source.Service(ctx, sl.Namespace, sl.Labels[discoveryv1.LabelServiceName])
		if err != nil {
			return nil, err
		}
		if svc == nil || !headless(svc) {
			continue
		}
		for _, ep := range readyEndpoints(svc, []discoveryv1.EndpointSlice{sl}) {
			if ep.hostname && ep.addr == addr {
				targets = append(targets, ep.name+"."+serviceBase(svc.Namespace, svc.Name, s.zone))
			}
		}
	}
	slices.Sort(targets)
	return slices.Compact(targets), nil
}
