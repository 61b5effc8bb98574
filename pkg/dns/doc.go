// Package dns is the DNS server a tenant's pods use: it answers the
// tenant's cluster domain from the tenant's own Services and EndpointSlices,
// forwards other names to upstream resolvers, and keeps the host cluster's
// names out of reach. github.com/miekg/dns speaks the protocol; the server
// listens on UDP and TCP on one address.
//
// # Answered, from the tenant's objects
//
// Names in the tenant's cluster domain follow the Kubernetes DNS
// specification (github.com/kubernetes/dns, docs/specification.md), with a
// TTL of 5 seconds and authoritative answers:
//
//   - <svc>.<ns>.svc.<domain>: A and AAAA with the Service's
//     spec.clusterIPs, which already are the host ClusterIPs the tenant's
//     pods reach; for a headless Service, the addresses of the ready
//     endpoints of its EndpointSlices (none ready: NXDOMAIN); for an
//     ExternalName Service, a CNAME, followed to the target's addresses
//     because stub resolvers do not follow CNAMEs themselves.
//   - <endpoint>.<svc>.<ns>.svc.<domain> for each ready endpoint of a
//     headless Service: its hostname (a StatefulSet pod's name) or, without
//     one, its address with dashes (10-0-0-1).
//   - _<port>._<proto>.<svc>.<ns>.svc.<domain>: SRV for each named port,
//     pointing at the Service's name, or for a headless Service at each
//     ready endpoint's name with the endpoint's port; the target addresses
//     go in the additional section. Unnamed ports have none.
//   - PTR under in-addr.arpa and ip6.arpa for Service cluster IPs and for
//     ready endpoints with a hostname of headless Services.
//   - dns-version.<domain> TXT, the SOA at the apex, and the deprecated
//     <a>-<b>-<c>-<d>.<ns>.pod.<domain> records, whose address is read from
//     the name.
//
// A name that no Service gives is NXDOMAIN; a name that exists without
// records of the asked type, such as <ns>.svc.<domain> while the namespace
// has Services, is NOERROR with no data. Names are looked up in the Source
// on every query, so answers follow the tenant's objects as fast as the
// Source does (an informer cache: well within a second).
//
// # Forwarded
//
// Every other name goes to the upstream resolvers (from a resolv.conf, see
// UpstreamsFromResolvConf), in order until one answers: over UDP, again
// over TCP when the answer is truncated, each exchange bounded by a
// timeout. When no upstream answers, the query gets SERVFAIL.
//
// # Refused
//
// knestd runs in a host pod, so its upstream is normally the host cluster's
// DNS, which answers for every host Service, and the host Services of other
// tenants are among them. Two kinds of names are therefore never forwarded
// and get NXDOMAIN instead:
//
//   - names under the host cluster's domain (HostClusterDomain), unless
//     they are in the tenant's own domain;
//   - reverse lookups (in-addr.arpa, ip6.arpa) of addresses that are not
//     the tenant's Service or endpoint addresses, because the host DNS
//     would name the host Service or pod behind any cluster IP or pod IP.
//     Reverse lookups of internet addresses fail too: telling those apart
//     would need the host's Service and pod ranges, which knestd does not
//     know. A reverse name shorter than an address is answered as existing
//     and empty, so that resolvers which ask for every label on the way
//     down do not give up.
//
// Zone transfers and classes other than IN are refused.
package dns
