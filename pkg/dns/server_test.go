package dns_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	knestdns "github.com/knest-dev/knest/pkg/dns"
)

// memSource holds the test's tenant objects: the input the server answers
// from.
type memSource struct {
	mu       sync.Mutex
	services []corev1.Service
	slices   []discoveryv1.EndpointSlice
}

func (m *memSource) addService(s corev1.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.services = append(m.services, s)
}

func (m *memSource) Service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.services {
		if s.Namespace == namespace && s.Name == name {
			return s.DeepCopy(), nil
		}
	}
	return nil, nil
}

func (m *memSource) Services(_ context.Context, namespace string) ([]corev1.Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []corev1.Service
	for _, s := range m.services {
		if s.Namespace == namespace {
			out = append(out, *s.DeepCopy())
		}
	}
	return out, nil
}

func (m *memSource) EndpointSlices(_ context.Context, namespace, service string) ([]discoveryv1.EndpointSlice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []discoveryv1.EndpointSlice
	for _, s := range m.slices {
		if s.Namespace == namespace && s.Labels[discoveryv1.LabelServiceName] == service {
			out = append(out, *s.DeepCopy())
		}
	}
	return out, nil
}

func (m *memSource) ServicesByIP(_ context.Context, ip string) ([]corev1.Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []corev1.Service
	for _, s := range m.services {
		if slices.ContainsFunc(s.Spec.ClusterIPs, sameIP(ip)) {
			out = append(out, *s.DeepCopy())
		}
	}
	return out, nil
}

func (m *memSource) EndpointSlicesByIP(_ context.Context, ip string) ([]discoveryv1.EndpointSlice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []discoveryv1.EndpointSlice
	for _, s := range m.slices {
		for _, ep := range s.Endpoints {
			if slices.ContainsFunc(ep.Addresses, sameIP(ip)) {
				out = append(out, *s.DeepCopy())
				break
			}
		}
	}
	return out, nil
}

func sameIP(ip string) func(string) bool {
	return func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && a.String() == ip
	}
}

func service(name string, tweaks ...func(*corev1.Service)) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, tweak := range tweaks {
		tweak(&s)
	}
	return s
}

func clusterIPs(ips ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips
	}
}

func headless(s *corev1.Service) {
	s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
}

func externalName(target string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, target
	}
}

func port(name string, proto corev1.Protocol, number int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Protocol: proto, Port: number})
	}
}

func endpointSlice(name, svc string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: family,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func slicePort(name string, number int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(number)}
}

func endpoint(addr string, tweaks ...func(*discoveryv1.Endpoint)) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}
	for _, tweak := range tweaks {
		tweak(&ep)
	}
	return ep
}

func hostname(h string) func(*discoveryv1.Endpoint) {
	return func(ep *discoveryv1.Endpoint) { ep.Hostname = ptr.To(h) }
}

func notReady(ep *discoveryv1.Endpoint) { ep.Conditions.Ready = ptr.To(false) }

// fixture is the tenant of most tests.
func fixture() *memSource {
	dbPorts := []discoveryv1.EndpointPort{slicePort("http", 8080)}
	return &memSource{
		services: []corev1.Service{
			service("web", clusterIPs("10.96.0.10"), port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53)),
			service("dual", clusterIPs("10.96.0.11", "fd00:96::11")),
			service("unnamed", clusterIPs("10.96.0.12"), port("", corev1.ProtocolTCP, 80)),
			service("db", headless, port("http", corev1.ProtocolTCP, 80)),
			service("empty", headless),
			service("ext", externalName("target.example.com")),
			service("ext-local", externalName("web.default.svc.cluster.local")),
			service("ext-host", externalName("kubernetes.default.svc.hostcluster.local")),
			service("loop", externalName("loop.default.svc.cluster.local")),
		},
		slices: []discoveryv1.EndpointSlice{
			endpointSlice("db-v4", "db", discoveryv1.AddressTypeIPv4, dbPorts,
				endpoint("10.244.0.1", hostname("db-0")),
				endpoint("10.244.0.2", hostname("db-1")),
				endpoint("10.244.0.3", hostname("db-2"), notReady),
				endpoint("10.244.0.4")),
			// The same endpoint in a second slice, as while slices are
			// rebalanced: answered once.
			endpointSlice("db-v4-overlap", "db", discoveryv1.AddressTypeIPv4, dbPorts,
				endpoint("10.244.0.1", hostname("db-0"))),
			endpointSlice("db-v6", "db", discoveryv1.AddressTypeIPv6, dbPorts,
				endpoint("fd00:244::1", hostname("db-0"))),
			endpointSlice("empty-v4", "empty", discoveryv1.AddressTypeIPv4, nil,
				endpoint("10.244.1.1", hostname("empty-0"), notReady)),
		},
	}
}

// upstream is a DNS server standing for the resolvers queries are
// forwarded to; it records every query it gets.
type upstream struct {
	addr    string
	mu      sync.Mutex
	queries []string
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	pc, l, err := knestdns.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		u.mu.Lock()
		u.queries = append(u.queries, dns.CanonicalName(q.Name))
		u.mu.Unlock()
		resp := new(dns.Msg).SetReply(req)
		resp.RecursionAvailable = true
		answers := map[string]string{
			"www.example.com.":    "192.0.2.10",
			"target.example.com.": "192.0.2.20",
			"big.example.com.":    "192.0.2.30",
		}
		switch ip, ok := answers[dns.CanonicalName(q.Name)]; {
		case !ok:
			resp.Rcode = dns.RcodeNameError
		case q.Name == "big.example.com." && udp:
			// Too big for UDP: the client must ask again over TCP.
			resp.Truncated = true
		case q.Qtype == dns.TypeA:
			rr, err := dns.NewRR(q.Name + " 60 IN A " + ip)
			if err != nil {
				panic(err)
			}
			resp.Answer = append(resp.Answer, rr)
		}
		_ = w.WriteMsg(resp)
	})
	servers := []*dns.Server{
		{PacketConn: pc, Handler: handler},
		{Listener: l, Handler: handler},
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

// saw reports how many queries for name the upstream got.
func (u *upstream) saw(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, q := range u.queries {
		if q == dns.CanonicalName(name) {
			n++
		}
	}
	return n
}

// startServer serves cfg on a free loopback port until the test ends and
// returns the address.
func startServer(t *testing.T, cfg knestdns.Config) string {
	t.Helper()
	srv, err := knestdns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, l, err := knestdns.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The server's logs go to the test's log.
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after its context ended, want nil", err)
		}
	})
	return pc.LocalAddr().String()
}

func query(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s query for %s %s: %v", network, name, dns.Type(qtype), err)
	}
	return resp
}

// answer is what the tests compare of a response: records as
// single-spaced zone-file lines, sorted.
type answer struct {
	Rcode         string
	Authoritative bool
	Truncated     bool
	Answer        []string
	// Authority holds the owner and type of authority records (the SOA of
	// negative answers).
	Authority []string
	Extra     []string
}

func summarize(m *dns.Msg) answer {
	lines := func(rrs []dns.RR) []string {
		var out []string
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			out = append(out, strings.Join(strings.Fields(rr.String()), " "))
		}
		slices.Sort(out)
		return out
	}
	a := answer{
		Rcode:         dns.RcodeToString[m.Rcode],
		Authoritative: m.Authoritative,
		Truncated:     m.Truncated,
		Answer:        lines(m.Answer),
		Extra:         lines(m.Extra),
	}
	for _, rr := range m.Ns {
		a.Authority = append(a.Authority, rr.Header().Name+" "+dns.Type(rr.Header().Rrtype).String())
	}
	return a
}

func reverse(t *testing.T, ip string) string {
	t.Helper()
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestServerAnswersTenantNamesAndForwardsOthers(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	addr := startServer(t, knestdns.Config{
		ClusterDomain:     "cluster.local",
		HostClusterDomain: "hostcluster.local",
		Upstreams:         []string{up.addr},
		Source:            fixture(),
	})
	// Shorthands for expected answers.
	found := func(rrs ...string) answer { return answer{Rcode: "NOERROR", Authoritative: true, Answer: rrs} }
	nodata := func(zone string) answer {
		return answer{Rcode: "NOERROR", Authoritative: true, Authority: []string{zone + " SOA"}}
	}
	nxdomain := func(zone string) answer {
		return answer{Rcode: "NXDOMAIN", Authoritative: true, Authority: []string{zone + " SOA"}}
	}
	withExtra := func(a answer, extra ...string) answer { a.Extra = extra; return a }

	tests := []struct {
		name    string
		network string // "udp" unless set
		qname   string
		qtype   uint16
		want    answer
		// forwarded are the names the upstream must be asked; it must
		// not be asked for qname unless listed.
		forwarded []string
	}{
		{
			name:  "a ClusterIP Service answers A with its cluster IP",
			qname: "web.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found("web.default.svc.cluster.local. 5 IN A 10.96.0.10"),
		},
		{
			name:  "a ClusterIP Service answers over TCP too",
			qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, network: "tcp",
			want: found("web.default.svc.cluster.local. 5 IN A 10.96.0.10"),
		},
		{
			name:  "names match whatever their case",
			qname: "WEB.Default.SVC.Cluster.Local.", qtype: dns.TypeA,
			want: found("web.default.svc.cluster.local. 5 IN A 10.96.0.10"),
		},
		{
			name:  "a single-stack IPv4 Service has no AAAA record",
			qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			want: nodata("cluster.local."),
		},
		{
			name:  "a dual-stack Service answers A with its IPv4 cluster IP",
			qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found("dual.default.svc.cluster.local. 5 IN A 10.96.0.11"),
		},
		{
			name:  "a dual-stack Service answers AAAA with its IPv6 cluster IP",
			qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			want: found("dual.default.svc.cluster.local. 5 IN AAAA fd00:96::11"),
		},
		{
			name:  "a headless Service answers A with its ready endpoint addresses",
			qname: "db.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found(
				"db.default.svc.cluster.local. 5 IN A 10.244.0.1",
				"db.default.svc.cluster.local. 5 IN A 10.244.0.2",
				"db.default.svc.cluster.local. 5 IN A 10.244.0.4",
			),
		},
		{
			name:  "a headless Service answers AAAA from its IPv6 slice",
			qname: "db.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			want: found("db.default.svc.cluster.local. 5 IN AAAA fd00:244::1"),
		},
		{
			name:  "a StatefulSet pod's hostname answers A under its headless Service",
			qname: "db-0.db.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found("db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.1"),
		},
		{
			name:  "a StatefulSet pod's hostname answers AAAA with its IPv6 address",
			qname: "db-0.db.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			want: found("db-0.db.default.svc.cluster.local. 5 IN AAAA fd00:244::1"),
		},
		{
			name:  "an endpoint without a hostname is named by its dashed address",
			qname: "10-244-0-4.db.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found("10-244-0-4.db.default.svc.cluster.local. 5 IN A 10.244.0.4"),
		},
		{
			name:  "a not-ready endpoint has no name",
			qname: "db-2.db.default.svc.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a headless Service without ready endpoints does not exist",
			qname: "empty.default.svc.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a named port answers SRV pointing at the Service, with its address",
			qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: withExtra(found("_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."),
				"web.default.svc.cluster.local. 5 IN A 10.96.0.10"),
		},
		{
			name:  "a named UDP port answers SRV under _udp",
			qname: "_dns._udp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: withExtra(found("_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."),
				"web.default.svc.cluster.local. 5 IN A 10.96.0.10"),
		},
		{
			name:  "a named port of a headless Service answers SRV for each ready endpoint on the endpoint port",
			qname: "_http._tcp.db.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: withExtra(found(
				"_http._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 8080 10-244-0-4.db.default.svc.cluster.local.",
				"_http._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 8080 db-0.db.default.svc.cluster.local.",
				"_http._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 8080 db-1.db.default.svc.cluster.local.",
			),
				"10-244-0-4.db.default.svc.cluster.local. 5 IN A 10.244.0.4",
				"db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.1",
				"db-0.db.default.svc.cluster.local. 5 IN AAAA fd00:244::1",
				"db-1.db.default.svc.cluster.local. 5 IN A 10.244.0.2",
			),
		},
		{
			name:  "the protocol name above a named port exists without records",
			qname: "_tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: nodata("cluster.local."),
		},
		{
			name:  "an unnamed port has no SRV record",
			qname: "_tcp.unnamed.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a port number is not an SRV name",
			qname: "_80._tcp.unnamed.default.svc.cluster.local.", qtype: dns.TypeSRV,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a Service cluster IP answers PTR with the Service name",
			qname: reverse(t, "10.96.0.10"), qtype: dns.TypePTR,
			want: found("10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."),
		},
		{
			name:  "an IPv6 Service cluster IP answers PTR with the Service name",
			qname: reverse(t, "fd00:96::11"), qtype: dns.TypePTR,
			want: found(reverse(t, "fd00:96::11") + " 5 IN PTR dual.default.svc.cluster.local."),
		},
		{
			name:  "a headless endpoint with a hostname answers PTR with its pod name",
			qname: reverse(t, "10.244.0.1"), qtype: dns.TypePTR,
			want: found("1.0.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."),
		},
		{
			name:  "a headless endpoint without a hostname has no PTR and is not forwarded",
			qname: reverse(t, "10.244.0.4"), qtype: dns.TypePTR,
			want: nxdomain("in-addr.arpa."),
		},
		{
			name:  "a reverse lookup of an address that is not the tenant's is not forwarded",
			qname: reverse(t, "10.96.7.7"), qtype: dns.TypePTR,
			want: nxdomain("in-addr.arpa."),
		},
		{
			name:  "an IPv6 reverse lookup of an address that is not the tenant's is not forwarded",
			qname: reverse(t, "fd00:96::7"), qtype: dns.TypePTR,
			want: nxdomain("ip6.arpa."),
		},
		{
			name:  "a reverse name shorter than an address exists without records",
			qname: "96.10.in-addr.arpa.", qtype: dns.TypePTR,
			want: nodata("in-addr.arpa."),
		},
		{
			name:  "an ExternalName Service answers CNAME",
			qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			want: found("ext.default.svc.cluster.local. 5 IN CNAME target.example.com."),
		},
		{
			name:  "an ExternalName Service's CNAME is followed upstream to the target's address",
			qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found(
				"ext.default.svc.cluster.local. 5 IN CNAME target.example.com.",
				"target.example.com. 60 IN A 192.0.2.20",
			),
			forwarded: []string{"target.example.com."},
		},
		{
			name:  "an ExternalName Service into the cluster domain is followed locally",
			qname: "ext-local.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found(
				"ext-local.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN A 10.96.0.10",
			),
		},
		{
			name:  "an ExternalName Service cannot reach a host cluster name",
			qname: "ext-host.default.svc.cluster.local.", qtype: dns.TypeA,
			want: answer{Rcode: "NXDOMAIN", Authoritative: true, Answer: []string{
				"ext-host.default.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.hostcluster.local.",
			}},
		},
		{
			name:  "an ExternalName Service naming itself ends",
			qname: "loop.default.svc.cluster.local.", qtype: dns.TypeA,
			want: found("loop.default.svc.cluster.local. 5 IN CNAME loop.default.svc.cluster.local."),
		},
		{
			name:  "a missing Service is NXDOMAIN",
			qname: "missing.default.svc.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a Service of another namespace is NXDOMAIN there",
			qname: "web.other.svc.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a namespace without Services is NXDOMAIN",
			qname: "other.svc.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "a namespace with Services exists without records",
			qname: "default.svc.cluster.local.", qtype: dns.TypeA,
			want: nodata("cluster.local."),
		},
		{
			name:  "a name under the cluster domain outside svc and pod is NXDOMAIN",
			qname: "web.default.cluster.local.", qtype: dns.TypeA,
			want: nxdomain("cluster.local."),
		},
		{
			name:  "the schema version is published",
			qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			want: found(`dns-version.cluster.local. 5 IN TXT "1.1.0"`),
		},
		{
			name:  "a deprecated pod name answers the address it spells",
			qname: "10-244-0-9.default.pod.cluster.local.", qtype: dns.TypeA,
			want: found("10-244-0-9.default.pod.cluster.local. 5 IN A 10.244.0.9"),
		},
		{
			name:  "a name under the host cluster domain is NXDOMAIN and not forwarded",
			qname: "kubernetes.default.svc.hostcluster.local.", qtype: dns.TypeA,
			want: nxdomain("hostcluster.local."),
		},
		{
			name:  "a name under the host cluster domain asked over TCP is not forwarded either",
			qname: "kube-dns.kube-system.svc.hostcluster.local.", qtype: dns.TypeA, network: "tcp",
			want: nxdomain("hostcluster.local."),
		},
		{
			name:  "an external name is forwarded and the upstream answer returned",
			qname: "www.example.com.", qtype: dns.TypeA,
			want:      answer{Rcode: "NOERROR", Answer: []string{"www.example.com. 60 IN A 192.0.2.10"}},
			forwarded: []string{"www.example.com."},
		},
		{
			name:  "an upstream NXDOMAIN is passed on",
			qname: "nowhere.example.com.", qtype: dns.TypeA,
			want:      answer{Rcode: "NXDOMAIN"},
			forwarded: []string{"nowhere.example.com."},
		},
		{
			name:  "an upstream answer truncated over UDP is fetched again over TCP",
			qname: "big.example.com.", qtype: dns.TypeA,
			want:      answer{Rcode: "NOERROR", Answer: []string{"big.example.com. 60 IN A 192.0.2.30"}},
			forwarded: []string{"big.example.com.", "big.example.com."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			network := tc.network
			if network == "" {
				network = "udp"
			}
			got := summarize(query(t, addr, network, tc.qname, tc.qtype))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer for %s %s (-want +got):\n%s", tc.qname, dns.Type(tc.qtype), diff)
			}
			wantSeen := map[string]int{dns.CanonicalName(tc.qname): 0}
			for _, n := range tc.forwarded {
				wantSeen[n]++
			}
			gotSeen := map[string]int{}
			for n := range wantSeen {
				gotSeen[n] = up.saw(n)
			}
			if diff := cmp.Diff(wantSeen, gotSeen); diff != "" {
				t.Errorf("queries the upstream got, by name (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLargeAnswersAreTruncatedOverUDPAndWholeOverTCP(t *testing.T) {
	t.Parallel()
	var eps []discoveryv1.Endpoint
	for i := range 100 {
		eps = append(eps, endpoint(fmt.Sprintf("10.244.2.%d", i+1)))
	}
	src := &memSource{
		services: []corev1.Service{service("many", headless)},
		slices:   []discoveryv1.EndpointSlice{endpointSlice("many-v4", "many", discoveryv1.AddressTypeIPv4, nil, eps...)},
	}
	up := startUpstream(t)
	addr := startServer(t, knestdns.Config{Upstreams: []string{up.addr}, Source: src})

	tests := []struct {
		name          string
		network       string
		wantTruncated bool
		wantAnswers   int
	}{
		{name: "over UDP without EDNS the answer is cut to 512 bytes and marked truncated", network: "udp", wantTruncated: true},
		{name: "over TCP every address is answered", network: "tcp", wantAnswers: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := query(t, addr, tc.network, "many.default.svc.cluster.local.", dns.TypeA)
			if resp.Truncated != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", resp.Truncated, tc.wantTruncated)
			}
			if tc.wantTruncated {
				resp.Compress = true // as it came over the wire
				if resp.Len() > dns.MinMsgSize {
					t.Errorf("UDP answer is %d bytes, want at most %d", resp.Len(), dns.MinMsgSize)
				}
				return
			}
			if len(resp.Answer) != tc.wantAnswers {
				t.Errorf("got %d answers, want %d", len(resp.Answer), tc.wantAnswers)
			}
		})
	}
}

func TestUpstreamsThatFailGiveServfail(t *testing.T) {
	t.Parallel()
	// refused returns an address where nothing listens any more.
	refused := func(t *testing.T) string {
		pc, l, err := knestdns.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_ = pc.Close()
		_ = l.Close()
		return pc.LocalAddr().String()
	}
	// silent returns an address that takes queries and never answers.
	silent := func(t *testing.T) string {
		pc, l, err := knestdns.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close(); _ = l.Close() })
		return pc.LocalAddr().String()
	}
	tests := []struct {
		name      string
		upstreams func(t *testing.T) []string
		qname     string
		want      string
	}{
		{
			name:      "an external name is SERVFAIL when every upstream refuses",
			upstreams: func(t *testing.T) []string { return []string{refused(t), refused(t)} },
			qname:     "www.example.com.", want: "SERVFAIL",
		},
		{
			name:      "an external name is SERVFAIL when the upstream never answers",
			upstreams: func(t *testing.T) []string { return []string{silent(t)} },
			qname:     "www.example.com.", want: "SERVFAIL",
		},
		{
			name:      "a tenant name is answered while the upstreams are down",
			upstreams: func(t *testing.T) []string { return []string{refused(t)} },
			qname:     "web.default.svc.cluster.local.", want: "NOERROR",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startServer(t, knestdns.Config{Upstreams: tc.upstreams(t), ForwardTimeout: 300 * time.Millisecond, Source: fixture()})
			resp := query(t, addr, "udp", tc.qname, dns.TypeA)
			if got := dns.RcodeToString[resp.Rcode]; got != tc.want {
				t.Errorf("rcode = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHostDomainEqualToClusterDomainIsAnsweredLocally(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	// Both domains default to cluster.local, as in most clusters.
	addr := startServer(t, knestdns.Config{Upstreams: []string{up.addr}, Source: fixture()})
	tests := []struct {
		name  string
		qname string
		want  string
	}{
		{name: "a tenant Service is answered", qname: "web.default.svc.cluster.local.", want: "NOERROR"},
		{name: "a host Service the tenant lacks is NXDOMAIN", qname: "kube-dns.kube-system.svc.cluster.local.", want: "NXDOMAIN"},
		{name: "another name in the domain is NXDOMAIN", qname: "node1.cluster.local.", want: "NXDOMAIN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := query(t, addr, "udp", tc.qname, dns.TypeA)
			if got := dns.RcodeToString[resp.Rcode]; got != tc.want {
				t.Errorf("rcode = %s, want %s", got, tc.want)
			}
			if n := up.saw(tc.qname); n != 0 {
				t.Errorf("the upstream was asked for %s %d times, want never", tc.qname, n)
			}
		})
	}
}

func TestAnswersFollowTheSource(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	src := &memSource{}
	addr := startServer(t, knestdns.Config{Upstreams: []string{up.addr}, Source: src})
	const name = "late.default.svc.cluster.local."
	if got := dns.RcodeToString[query(t, addr, "udp", name, dns.TypeA).Rcode]; got != "NXDOMAIN" {
		t.Fatalf("before the Service exists: rcode = %s, want NXDOMAIN", got)
	}
	src.addService(service("late", clusterIPs("10.96.0.99")))
	got := summarize(query(t, addr, "udp", name, dns.TypeA))
	want := answer{Rcode: "NOERROR", Authoritative: true, Answer: []string{name + " 5 IN A 10.96.0.99"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the Service is added (-want +got):\n%s", diff)
	}
}

func TestStartFailsWhenTheAddressIsTaken(t *testing.T) {
	t.Parallel()
	pc, l, err := knestdns.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close(); _ = l.Close() }()
	srv, err := knestdns.New(knestdns.Config{Addr: pc.LocalAddr().String(), Upstreams: []string{"127.0.0.1:53"}, Source: &memSource{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a taken address = %v, want an 'address already in use' error", err)
	}
}

func TestNewRejectsBadConfigs(t *testing.T) {
	t.Parallel()
	valid := func() knestdns.Config {
		return knestdns.Config{Upstreams: []string{"10.0.0.10:53"}, Source: &memSource{}}
	}
	tests := []struct {
		name    string
		tweak   func(*knestdns.Config)
		wantErr string
	}{
		{name: "defaults are valid", tweak: func(*knestdns.Config) {}},
		{name: "no upstream", tweak: func(c *knestdns.Config) { c.Upstreams = nil }, wantErr: "at least one upstream"},
		{name: "an upstream without a port", tweak: func(c *knestdns.Config) { c.Upstreams = []string{"10.0.0.10"} }, wantErr: "not host:port"},
		{name: "no source", tweak: func(c *knestdns.Config) { c.Source = nil }, wantErr: "a Source is required"},
		{name: "the root as cluster domain", tweak: func(c *knestdns.Config) { c.ClusterDomain = "." }, wantErr: "root domain"},
		{name: "a host domain that is no domain name", tweak: func(c *knestdns.Config) { c.HostClusterDomain = "a..b" }, wantErr: "not a domain name"},
		{name: "a negative timeout", tweak: func(c *knestdns.Config) { c.ForwardTimeout = -time.Second }, wantErr: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.tweak(&cfg)
			_, err := knestdns.New(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("New = %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []string
		wantErr string
	}{
		{
			name:    "nameservers become host:port in order",
			content: "search default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5\n",
			want:    []string{"10.96.0.10:53", "[fd00::a]:53"},
		},
		{name: "a file without nameservers is an error", content: "search example.com\n", wantErr: "no nameserver"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := knestdns.UpstreamsFromResolvConf(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("upstreams (-want +got):\n%s", diff)
			}
		})
	}
}

// recordingIndexer keeps the index functions registered on it.
type recordingIndexer struct {
	funcs map[string]client.IndexerFunc
}

func (r *recordingIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	r.funcs[fmt.Sprintf("%T %s", obj, field)] = fn
	return nil
}

func TestRegisterIndexesIndexesCanonicalIPs(t *testing.T) {
	t.Parallel()
	idx := &recordingIndexer{funcs: map[string]client.IndexerFunc{}}
	if err := knestdns.RegisterIndexes(context.Background(), idx); err != nil {
		t.Fatal(err)
	}
	svcIndex := fmt.Sprintf("%T %s", &corev1.Service{}, knestdns.IndexServiceClusterIP)
	sliceIndex := fmt.Sprintf("%T %s", &discoveryv1.EndpointSlice{}, knestdns.IndexEndpointIP)
	dual := service("dual", clusterIPs("10.96.0.11", "fd00:0096:0000::0011"))
	hl := service("db", headless)
	ext := service("ext", externalName("example.com"))
	v4 := endpointSlice("db-v4", "db", discoveryv1.AddressTypeIPv4, nil, endpoint("10.244.0.1"), endpoint("10.244.0.2", notReady))
	fqdn := endpointSlice("db-fqdn", "db", discoveryv1.AddressTypeFQDN, nil, endpoint("db.example.com"))

	tests := []struct {
		name  string
		index string
		obj   client.Object
		want  []string
	}{
		{name: "a dual-stack Service is indexed by both cluster IPs, IPv6 in short form", index: svcIndex, obj: &dual, want: []string{"10.96.0.11", "fd00:96::11"}},
		{name: "a headless Service has no cluster IP to index", index: svcIndex, obj: &hl},
		{name: "an ExternalName Service has no cluster IP to index", index: svcIndex, obj: &ext},
		{name: "an EndpointSlice is indexed by every endpoint address", index: sliceIndex, obj: &v4, want: []string{"10.244.0.1", "10.244.0.2"}},
		{name: "an FQDN EndpointSlice has no IP to index", index: sliceIndex, obj: &fqdn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fn, ok := idx.funcs[tc.index]
			if !ok {
				t.Fatalf("index %q is not registered; registered: %v", tc.index, idx.funcs)
			}
			if diff := cmp.Diff(tc.want, fn(tc.obj)); diff != "" {
				t.Errorf("index values (-want +got):\n%s", diff)
			}
		})
	}
}
