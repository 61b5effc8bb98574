package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

const (
	// maxSocketPath is the longest path a unix socket may have on Linux:
	// sun_path holds 108 bytes, the last one the terminating NUL.
	maxSocketPath = 107
	// requestTimeout bounds how long a client may take to send its CONNECT
	// request: the API server sends it at once.
	requestTimeout = 10 * time.Second
	// maxRequestBytes bounds the CONNECT request, so a client cannot make
	// the server buffer without limit.
	maxRequestBytes = 16 << 10
	// dialTimeout is net/http's default transport's, which the API server
	// would use without an egress selector.
	dialTimeout = 30 * time.Second
)

// Dialer opens the connections the rules allowed; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Config configures a Server.
type Config struct {
	// Listener is the unix socket the API server's egress selector
	// connects to (Listen).
	Listener net.Listener
	// Rules decide the targets.
	Rules *Rules
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver Resolver
	// Dialer dials the checked addresses; nil means a net.Dialer with a
	// 30 s timeout.
	Dialer Dialer
	// Metrics receives the refusals metric; nil means none is registered.
	Metrics prometheus.Registerer
}

// Server is an HTTP CONNECT proxy that opens only the connections its Rules
// allow.
type Server struct {
	cfg      Config
	refusals *prometheus.CounterVec
}

// NewServer checks cfg and registers the server's metric.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Listener == nil || cfg.Rules == nil {
		return nil, errors.New("egress: a listener and rules are required")
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{Timeout: dialTimeout}
	}
	s := &Server{cfg: cfg, refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "knest_apiserver_egress_refusals_total",
		Help: "Connections of the tenant API server that knestd refused, by reason (malformed, unresolved, not-allowed, lookup-failed).",
	}, []string{"reason"})}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(s.refusals); err != nil {
			var are prometheus.AlreadyRegisteredError
			existing, ok := s.refusals, false
			if errors.As(err, &are) {
				existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
			}
			if !ok {
				return nil, fmt.Errorf("egress: failed to register metrics: %w", err)
			}
			// A second server in one process (tests) counts into the first's.
			s.refusals = existing
		}
	}
	return s, nil
}

// Listen listens on a unix socket at path, readable by this user only. A
// socket left there by a process that is gone is replaced; one that answers
// belongs to a running knestd and is an error.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("egress socket path %s is %d bytes long, but a unix socket path may have at most %d: use a shorter --data-dir", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("egress socket path %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("egress socket %s is in use: another knestd runs on this data dir", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("failed to remove the stale egress socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on egress socket %s: %w", path, err)
	}
	// The socket is the API server's alone; the data dir is private too,
	// but a socket's own mode does not depend on that.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("failed to restrict the egress socket: %w", err)
	}
	return l, nil
}

// Serve serves connections until ctx ends, then closes the listener and
// every tunnel.
func (s *Server) Serve(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.V(1).Info("Serving the tenant API server's egress", "socket", s.cfg.Listener.Addr().String())
	stop := context.AfterFunc(ctx, func() { s.cfg.Listener.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := s.cfg.Listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("egress socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn handles one CONNECT request: the egress selector opens a new
// socket connection for every dial.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	logger := klog.FromContext(ctx)

	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	br := bufio.NewReader(io.LimitReader(conn, maxRequestBytes))
	req, err := http.ReadRequest(br)
	switch {
	case err != nil:
		s.refuse(ctx, conn, &Refusal{Reason: ReasonMalformed, Message: "not an HTTP request"})
		return
	case req.Method != http.MethodConnect:
		s.refuse(ctx, conn, &Refusal{Reason: ReasonMalformed, Message: fmt.Sprintf("method %s, only CONNECT is served", req.Method)})
		return
	case br.Buffered() > 0:
		// The client spoke before the tunnel was up: what it sent would
		// be lost or misread.
		s.refuse(ctx, conn, &Refusal{Target: req.Host, Reason: ReasonMalformed, Message: "data after the CONNECT request"})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	target := req.URL.Host

	addrs, err := s.cfg.Rules.Check(ctx, s.cfg.Resolver, target)
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			r = &Refusal{Target: target, Reason: ReasonLookupFailed, Message: err.Error()}
		}
		s.refuse(ctx, conn, r)
		return
	}
	var upstream net.Conn
	var errs []error
	for _, a := range addrs {
		if upstream, err = s.cfg.Dialer.DialContext(ctx, "tcp", a.String()); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if upstream == nil {
		err := errors.Join(errs...)
		logger.V(1).Info("Failed to dial for the tenant API server", "target", target, "err", err)
		writeStatus(conn, http.StatusBadGateway, "knest could not connect to "+target+": "+err.Error())
		return
	}
	defer upstream.Close()
	stopUpstream := context.AfterFunc(ctx, func() { upstream.Close() })
	defer stopUpstream()
	logger.V(1).Info("Connecting the tenant API server", "target", target, "address", upstream.RemoteAddr().String())
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	splice(conn, upstream)
}

// refuse answers 403 with the reason in the status line as well as the
// body: the egress selector's client reports only the status line in the
// error the API server returns to the tenant.
func (s *Server) refuse(ctx context.Context, conn net.Conn, r *Refusal) {
	klog.FromContext(ctx).Info("Refused a connection of the tenant API server",
		"tenant", s.cfg.Rules.Tenant, "target", r.Target, "reason", r.Reason, "message", r.Message)
	s.refusals.WithLabelValues(r.Reason).Inc()
	writeStatus(conn, http.StatusForbidden, r.Error())
}

func writeStatus(conn net.Conn, code int, text string) {
	// A status line ends at the first CR or LF; the text is ours, but a
	// target can only be what the request line held, so be strict.
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	_ = conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		code, text, len(text)+1, text)
}

// splice copies both ways until both directions end; a direction that ends
// half-closes its destination so the other can still finish.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
}
