package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apiserver/pkg/server/egressselector"
)

// echoServer answers each connection with what it reads and counts the
// connections it accepted.
type echoServer struct {
	addr     netip.AddrPort
	accepted atomic.Int32
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := &echoServer{addr: l.Addr().(*net.TCPAddr).AddrPort()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return e
}

// startServer serves rules on a socket in a temporary directory and returns
// the socket's path and the server.
func startServer(t *testing.T, rules *Rules) (string, *Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "egress.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Listener: l, Rules: rules, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, s
}

// upstreamDialer is the dialer kube-apiserver builds for an egress type
// from the SelectorConfiguration file, read and validated as kube-apiserver
// reads and validates it: the client the server must work with.
func upstreamDialer(t *testing.T, socket string, egress egressselector.EgressType) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	data, err := SelectorConfiguration(socket)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "egress-selector.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := egressselector.ReadEgressSelectorConfiguration(file)
	if err != nil {
		t.Fatalf("kube-apiserver would not read the configuration: %v\n%s", err, data)
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		t.Fatalf("kube-apiserver would refuse the configuration: %v\n%s", errs, data)
	}
	sel, err := egressselector.NewEgressSelector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dial, err := sel.Lookup(egress.AsNetworkContext())
	if err != nil || dial == nil {
		t.Fatalf("no %s dialer: %v", egress, err)
	}
	return dial
}

func TestServerThroughTheAPIServersEgressDialer(t *testing.T) {
	t.Parallel()
	kubelet, other := startEcho(t), startEcho(t)
	rules := &Rules{Tenant: "acme"}
	rules.SetKubelet(kubelet.addr)
	socket, s := startServer(t, rules)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	echo := func(t *testing.T, c net.Conn) {
		t.Helper()
		defer c.Close()
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Errorf("echo through the connection: %q, %v", line, err)
		}
	}

	for _, egress := range []egressselector.EgressType{egressselector.Cluster, egressselector.ControlPlane} {
		dial := upstreamDialer(t, socket, egress)
		t.Run(egress.String()+": an allowed target is tunnelled both ways", func(t *testing.T) {
			c, err := dial(ctx, "tcp", kubelet.addr.String())
			if err != nil {
				t.Fatalf("dial the kubelet listener: %v", err)
			}
			echo(t, c)
		})

		t.Run(egress.String()+": a refused target never gets a connection, and the dialer's error says why", func(t *testing.T) {
			before := testutil.ToFloat64(s.refusals.WithLabelValues(ReasonNotAllowed))
			_, err := dial(ctx, "tcp", other.addr.String())
			if err == nil {
				t.Fatal("dialled a target outside the rules")
			}
			for _, want := range []string{"code 403", other.addr.String(), "is knestd's kubelet API address, whose port is"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the API server's dial error %q does not say %q", err, want)
				}
			}
			if n := other.accepted.Load(); n != 0 {
				t.Errorf("the refused target got %d connections", n)
			}
			if got := testutil.ToFloat64(s.refusals.WithLabelValues(ReasonNotAllowed)) - before; got != 1 {
				t.Errorf("refusals{reason=not-allowed} grew by %v, want 1", got)
			}
		})
	}

	t.Run("etcd: knestd's own etcd is dialled directly", func(t *testing.T) {
		c, err := upstreamDialer(t, socket, egressselector.Etcd)(ctx, "tcp", other.addr.String())
		if err != nil {
			t.Fatalf("direct dial: %v", err)
		}
		echo(t, c)
	})
}

func TestServerRefusesMalformedRequests(t *testing.T) {
	t.Parallel()
	socket, s := startServer(t, &Rules{Tenant: "acme"})
	tests := []struct {
		name, request, want string
	}{
		{name: "a GET is not a CONNECT", request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", want: "only CONNECT"},
		{name: "garbage is not an HTTP request", request: "\x16\x03\x01 hello\r\n\r\n", want: "not an HTTP request"},
		{name: "a CONNECT without a port names no target", request: "CONNECT 10.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", want: "not a host:port"},
		{name: "data sent before the tunnel is up is refused", request: "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nearly", want: "data after the CONNECT request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Status, tt.want) || !strings.Contains(string(body), tt.want) {
				t.Errorf("answer %q, body %q; want 403 saying %q in both", res.Status, body, tt.want)
			}
		})
	}
	if got := testutil.ToFloat64(s.refusals.WithLabelValues(ReasonMalformed)); got != float64(len(tests)) {
		t.Errorf("refusals{reason=malformed} = %v, want %d", got, len(tests))
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	t.Run("a path longer than a unix socket's is refused, saying what to shorten", func(t *testing.T) {
		t.Parallel()
		path := "/" + strings.Repeat("d", 100) + "/egress.sock"
		_, err := Listen(path)
		if err == nil || !strings.Contains(err.Error(), "at most 107") || !strings.Contains(err.Error(), "--data-dir") {
			t.Errorf("Listen(%d bytes) = %v, want an error naming the limit and --data-dir", len(path), err)
		}
	})
	t.Run("a socket left by a process that is gone is replaced", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "egress.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		// Closing a listener removes its socket file; keep it, as a
		// killed process would.
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		l.Close()
	})
	t.Run("a socket in use is not taken over", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "egress.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("second Listen = %v, want in use", err)
		}
	})
	t.Run("the socket is its owner's only", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "egress.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("socket mode %v, want 0600", perm)
		}
	})
	t.Run("a regular file at the path is left alone", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "egress.sock")
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("Listen over a regular file = %v, want an error", err)
		}
	})
}
