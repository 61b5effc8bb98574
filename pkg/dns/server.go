package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"
)

const (
	// DefaultClusterDomain is the cluster domain of the tenant and of the
	// host when none is configured.
	DefaultClusterDomain = "cluster.local"
	// DefaultForwardTimeout bounds one exchange with one upstream.
	DefaultForwardTimeout = 2 * time.Second

	// maxChase bounds how many CNAMEs (ExternalName Services) are followed
	// for one query, which also ends ExternalName loops.
	maxChase = 8
	// shutdownTimeout bounds how long Serve waits for queries in flight
	// once its context ends.
	shutdownTimeout = 5 * time.Second
	// advertisedUDPSize is the EDNS(0) UDP payload size answered to
	// clients that use EDNS: small enough not to fragment.
	advertisedUDPSize = 1232
)

// Config configures a Server.
type Config struct {
	// Addr is the address Start listens on, for UDP and TCP alike, e.g.
	// "127.0.0.1:10053" or ":5353".
	Addr string
	// ClusterDomain is the tenant's cluster domain, the zone answered from
	// Source; "" means DefaultClusterDomain.
	ClusterDomain string
	// HostClusterDomain is the host cluster's domain: names under it are
	// never forwarded. "" means DefaultClusterDomain. It may equal
	// ClusterDomain: the tenant's zone then covers it.
	HostClusterDomain string
	// Upstreams are the resolvers ("host:port") that other names are
	// forwarded to, tried in order; see UpstreamsFromResolvConf.
	Upstreams []string
	// ForwardTimeout bounds one exchange with one upstream; 0 means
	// DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// Source holds the tenant's Services and EndpointSlices.
	Source Source
}

// Server answers the tenant's DNS queries.
type Server struct {
	addr      string
	zone      string
	hostZone  string
	source    Source
	forwarder forwarder
}

// New checks the configuration and returns a Server; Start or Serve runs
// it.
func New(cfg Config) (*Server, error) {
	var errs []error
	zone, err := zoneName(cfg.ClusterDomain)
	if err != nil {
		errs = append(errs, fmt.Errorf("dns: cluster domain: %w", err))
	}
	hostZone, err := zoneName(cfg.HostClusterDomain)
	if err != nil {
		errs = append(errs, fmt.Errorf("dns: host cluster domain: %w", err))
	}
	if len(cfg.Upstreams) == 0 {
		errs = append(errs, errors.New("dns: at least one upstream resolver is required"))
	}
	for _, up := range cfg.Upstreams {
		if _, port, err := net.SplitHostPort(up); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("dns: upstream %q is not host:port", up))
		}
	}
	if cfg.ForwardTimeout < 0 {
		errs = append(errs, fmt.Errorf("dns: forward timeout must not be negative, got %v", cfg.ForwardTimeout))
	}
	if cfg.Source == nil {
		errs = append(errs, errors.New("dns: a Source is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	timeout := cfg.ForwardTimeout
	if timeout == 0 {
		timeout = DefaultForwardTimeout
	}
	return &Server{
		addr:      cfg.Addr,
		zone:      zone,
		hostZone:  hostZone,
		source:    cfg.Source,
		forwarder: forwarder{upstreams: cfg.Upstreams, timeout: timeout},
	}, nil
}

// zoneName returns a domain as a lower-case absolute name.
func zoneName(domain string) (string, error) {
	if domain == "" {
		domain = DefaultClusterDomain
	}
	if _, ok := dns.IsDomainName(domain); !ok {
		return "", fmt.Errorf("%q is not a domain name", domain)
	}
	zone := dns.CanonicalName(domain)
	if zone == "." {
		return "", errors.New("the root domain is not a cluster domain")
	}
	return zone, nil
}

// Start listens on the configured address and serves until ctx ends (nil)
// or a listener fails. Start it once the Source is filled (a cache has
// synced): before that, every Service name would be NXDOMAIN.
func (s *Server) Start(ctx context.Context) error {
	if s.addr == "" {
		return errors.New("dns: a listen address is required")
	}
	pc, l, err := Listen(s.addr)
	if err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Serving DNS", "address", l.Addr().String(), "zone", s.zone)
	return s.Serve(ctx, pc, l)
}

// Listen opens a UDP socket and a TCP listener on the same address. With
// port 0, both get the same free port, read back from either's Addr.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: listen address %q is not host:port: %w", addr, err)
	}
	// The kernel picks the TCP port; the same UDP port may be taken, in
	// which case another one is tried.
	const attempts = 10
	for i := 1; ; i++ {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to listen for DNS on TCP %s: %w", addr, err)
		}
		udpAddr := net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		pc, err := net.ListenPacket("udp", udpAddr)
		if err == nil {
			return pc, l, nil
		}
		_ = l.Close()
		if port != "0" || i == attempts {
			return nil, nil, fmt.Errorf("failed to listen for DNS on UDP %s: %w", udpAddr, err)
		}
	}
}

// Serve answers queries on pc (UDP) and l (TCP) until ctx ends (nil) or
// one of them fails; it closes both before it returns.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, l net.Listener) error {
	defer func() {
		_ = pc.Close()
		_ = l.Close()
	}()
	// The handler closes over ctx, for its logger and its end.
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { s.handle(ctx, w, req) })
	type running struct {
		srv     *dns.Server
		started chan struct{}
		done    chan error
	}
	servers := []*running{
		{srv: &dns.Server{Net: "udp", PacketConn: pc, Handler: handler}},
		{srv: &dns.Server{Net: "tcp", Listener: l, Handler: handler}},
	}
	for _, r := range servers {
		r.started = make(chan struct{})
		r.done = make(chan error, 1)
		r.srv.NotifyStartedFunc = sync.OnceFunc(func() { close(r.started) })
		go func() { r.done <- r.srv.ActivateAndServe() }()
	}

	var failed error
	stopped := map[*running]bool{}
	select {
	case <-ctx.Done():
	case err := <-servers[0].done:
		stopped[servers[0]] = true
		failed = fmt.Errorf("DNS server on UDP %s stopped: %w", pc.LocalAddr(), stopErr(err))
	case err := <-servers[1].done:
		stopped[servers[1]] = true
		failed = fmt.Errorf("DNS server on TCP %s stopped: %w", l.Addr(), stopErr(err))
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, r := range servers {
		if stopped[r] {
			continue
		}
		// A server that has not started yet cannot be shut down: wait
		// until it has, or has failed to.
		select {
		case <-r.started:
			_ = r.srv.ShutdownContext(shutdownCtx)
			<-r.done
		case <-r.done:
		}
	}
	return failed
}

// stopErr turns the nil a dns.Server returns when it stops cleanly, which
// only a shutdown should cause, into an error.
func stopErr(err error) error {
	if err == nil {
		return errors.New("stopped without being shut down")
	}
	return err
}

// handle answers one query.
func (s *Server) handle(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) {
	resp := s.reply(ctx, req)
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	if req.IsEdns0() != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(advertisedUDPSize, false)
	}
	// Sets TC when the answer does not fit the client's UDP size: the
	// client asks again over TCP.
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		klog.FromContext(ctx).V(1).Info("Failed to write DNS answer", "client", w.RemoteAddr().String(), "err", err)
	}
}

// reply returns the answer to a query.
func (s *Server) reply(ctx context.Context, req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.RecursionAvailable = true
	switch {
	case req.Opcode != dns.OpcodeQuery:
		return resp.SetRcode(req, dns.RcodeNotImplemented)
	case len(req.Question) != 1:
		return resp.SetRcode(req, dns.RcodeFormatError)
	case req.Question[0].Qclass != dns.ClassINET:
		return resp.SetRcode(req, dns.RcodeRefused)
	case req.Question[0].Qtype == dns.TypeAXFR || req.Question[0].Qtype == dns.TypeIXFR:
		return resp.SetRcode(req, dns.RcodeRefused)
	}
	answer, err := s.resolve(ctx, req, 0)
	if err != nil {
		q := req.Question[0]
		klog.FromContext(ctx).Error(err, "Failed to answer DNS query", "name", q.Name, "type", dns.Type(q.Qtype).String())
		return resp.SetRcode(req, dns.RcodeServerFailure)
	}
	return answer
}

// route says how a name is answered.
type route int

const (
	// routeForward: the name is asked of the upstream resolvers.
	routeForward route = iota
	// routeCluster: the name is in the tenant's cluster zone.
	routeCluster
	// routeReverse: the name is a reverse lookup, answered from the
	// tenant's IPs.
	routeReverse
	// routeRefuse: the name is the host cluster's, answered NXDOMAIN.
	routeRefuse
)

// route returns how a lower-case absolute name is answered, and the zone
// it is in.
func (s *Server) route(name string) (string, route) {
	switch {
	case dns.IsSubDomain(s.zone, name):
		return s.zone, routeCluster
	case dns.IsSubDomain(reverseV4Zone, name):
		return reverseV4Zone, routeReverse
	case dns.IsSubDomain(reverseV6Zone, name):
		return reverseV6Zone, routeReverse
	case dns.IsSubDomain(s.hostZone, name):
		return s.hostZone, routeRefuse
	}
	return "", routeForward
}

// resolve answers req (one question of class IN), following CNAMEs of
// ExternalName Services up to maxChase deep.
func (s *Server) resolve(ctx context.Context, req *dns.Msg, depth int) (*dns.Msg, error) {
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	zone, how := s.route(name)
	if how == routeForward {
		return s.forwarder.exchange(ctx, req)
	}

	var l lookup
	var err error
	rel := dns.SplitDomainName(name)
	rel = rel[:len(rel)-dns.CountLabel(zone)]
	switch how {
	case routeCluster:
		l, err = s.lookupCluster(ctx, name, rel)
	case routeReverse:
		l, err = s.lookupReverse(ctx, zone, name, rel)
	case routeRefuse:
		// Nothing is looked up: the host's names do not exist here.
	}
	if err != nil {
		return nil, err
	}

	resp := new(dns.Msg).SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if !l.exists {
		resp.Rcode = dns.RcodeNameError
		resp.Ns = []dns.RR{soa(zone, s.zone)}
		return resp, nil
	}
	for _, rr := range l.records {
		cname, ok := rr.(*dns.CNAME)
		if !ok || q.Qtype == dns.TypeCNAME {
			continue
		}
		// A name with a CNAME has no other records.
		resp.Answer = []dns.RR{cname}
		if depth < maxChase && q.Qtype != dns.TypeANY {
			s.chase(ctx, resp, cname.Target, q.Qtype, depth)
		}
		return resp, nil
	}
	for _, rr := range l.records {
		if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	switch {
	case len(resp.Answer) == 0:
		resp.Ns = []dns.RR{soa(zone, s.zone)}
	case q.Qtype == dns.TypeSRV || q.Qtype == dns.TypeANY:
		resp.Extra = l.extra
	}
	return resp, nil
}

// chase appends the answer for a CNAME's target to resp, as a recursive
// resolver would: stub resolvers (glibc, musl) do not follow CNAMEs
// themselves. The target is answered by the same rules as any name, so an
// ExternalName Service cannot lead to a host cluster name either. Without
// an answer for the target, the CNAME alone is returned.
func (s *Server) chase(ctx context.Context, resp *dns.Msg, target string, qtype uint16, depth int) {
	sub := new(dns.Msg).SetQuestion(target, qtype)
	ans, err := s.resolve(ctx, sub, depth+1)
	if err != nil {
		klog.FromContext(ctx).V(1).Info("Failed to follow CNAME", "target", target, "err", err)
		return
	}
	if ans.Rcode == dns.RcodeSuccess || ans.Rcode == dns.RcodeNameError {
		// An ExternalName loop repeats its CNAMEs until maxChase.
		resp.Answer = dns.Dedup(append(resp.Answer, ans.Answer...), nil)
		// The code is that of the last name in the chain (RFC 6604).
		resp.Rcode = ans.Rcode
	}
}
