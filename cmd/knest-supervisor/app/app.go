// Package app is knest-supervisor's command line: its own flags, then
// knestd's after "--", which it passes on to knestd unchanged but for the
// port knestd's API server listens on.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/readyzcheck"
	"github.com/knest-dev/knest/pkg/supervisor"
)

const usage = `Usage: knest-supervisor [--knestd PATH] [--wake-timeout DURATION] [--health-address ADDR] -- KNESTD_FLAGS...

Listens on knestd's --bind-address and --secure-port, runs knestd with
KNESTD_FLAGS on a loopback port behind it, and proxies connections to it.
When knestd sleeps (--sleep-after, or knest sleep), the address stays open
and the next connection starts knestd again; it is held until the control
plane is ready. --health-address serves /livez and /readyz over plain HTTP
for kubelet probes, which then never wake the tenant.
`

// Options are knest-supervisor's flags and knestd's after "--".
type Options struct {
	KnestdPath    string
	WakeTimeout   time.Duration
	HealthAddress string
	StartLimit    time.Duration
	// KnestdArgs are passed to knestd unchanged (but for the port).
	KnestdArgs []string
	knestd     knestdFlags
}

// Parse reads the command line: the supervisor's flags, then knestd's
// after "--" (of which it checks those it needs).
func Parse(args []string) (Options, error) {
	var o Options
	fs := pflag.NewFlagSet("knest-supervisor", pflag.ContinueOnError)
	fs.StringVar(&o.KnestdPath, "knestd", "", "knestd binary (default: knestd next to this binary, else on PATH).")
	fs.DurationVar(&o.WakeTimeout, "wake-timeout", time.Minute, "How long a connection is held while knestd wakes before it is closed.")
	fs.StringVar(&o.HealthAddress, "health-address", "", "Serve /livez and /readyz over plain HTTP at this address (e.g. :8444), for kubelet probes: they ask knestd on loopback only while it runs, so they never wake it. Empty: none.")
	fs.DurationVar(&o.StartLimit, "start-limit", 5*time.Minute, "How long knestd may take to become ready, at its first start or a wake, before /livez fails.")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.KnestdArgs = fs.Args()
	if fs.ArgsLenAtDash() < 0 && len(o.KnestdArgs) > 0 {
		return o, fmt.Errorf("knestd's flags go after \"--\": %v", o.KnestdArgs)
	}
	if o.WakeTimeout <= 0 || o.StartLimit <= 0 {
		return o, errors.New("--wake-timeout and --start-limit must be positive")
	}
	var err error
	o.knestd, err = parseKnestdFlags(o.KnestdArgs)
	return o, err
}

// Run runs the supervisor until SIGTERM or SIGINT (forwarded to knestd,
// which it then waits for) or until knestd fails.
func Run(ctx context.Context, args []string) error {
	o, err := Parse(args)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	knestdArgs, k := o.KnestdArgs, o.knestd
	path, err := findKnestd(o.KnestdPath)
	if err != nil {
		return err
	}

	network := "tcp"
	if ip := net.ParseIP(k.bindAddress); ip != nil && ip.To4() != nil {
		network = "tcp4" // as knestd listens
	}
	l, err := net.Listen(network, net.JoinHostPort(k.bindAddress, strconv.Itoa(k.securePort)))
	if err != nil {
		return fmt.Errorf("cannot listen on the tenant's API address: %w", err)
	}
	publicPort := l.Addr().(*net.TCPAddr).Port
	logger := klog.Background().WithName("knest-supervisor")
	caFile := filepath.Join(k.dataDir, "pki", "ca.crt")
	ctx = klog.NewContext(ctx, logger)
	s, err := supervisor.New(supervisor.Config{
		Listener: l,
		Command: func(port int) *exec.Cmd {
			// Later flags win: knestd's API server listens on the
			// loopback port, and knows the address it is reached at.
			a := append(append([]string{}, knestdArgs...), "--secure-port", strconv.Itoa(port), "--supervisor-port", strconv.Itoa(publicPort))
			cmd := exec.Command(path, a...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			cmd.SysProcAttr = childAttr()
			return cmd
		},
		Ready: func(ctx context.Context, addr string) error {
			return check(caFile)(ctx, addr, apiReadyz)
		},
		WakeTimeout: o.WakeTimeout,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.HealthAddress != "" {
		hl, err := net.Listen("tcp", o.HealthAddress)
		if err != nil {
			l.Close()
			return fmt.Errorf("cannot listen on --health-address: %w", err)
		}
		srv := &http.Server{Handler: s.HealthHandler(check(caFile), o.StartLimit), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(hl) }()
		defer srv.Close()
		logger.Info("Serving health endpoints", "address", hl.Addr().String())
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		logger.Info("Stopping", "signal", sig.String())
		cancel()
		// A second signal goes to knestd, which then exits at once.
		sig = <-signals
		s.Signal(sig)
	}()
	logger.Info("Serving the tenant's API address", "address", l.Addr().String(), "knestd", path)
	return s.Serve(ctx)
}

// apiReadyz is knestd's /readyz without its own checks (readyzcheck
// Syncer and DNS: the syncer's caches and the DNS server,
// which serve the tenant's pods and the host, not its API clients). A held
// connection is proxied once the API server is ready, not once the syncer
// also is: a wake's first answer comes that much sooner (1-2 s of a
// syncing tenant's wake), and a client's TLS handshake, which completes
// only when the connection is proxied, is further from client-go's 10 s
// limit. The pod's readiness (--health-address) stays knestd's whole
// /readyz. A name that no longer matches is ignored by the API server,
// which then checks everything: slower, never wrong.
const apiReadyz = "/readyz?exclude=" + readyzcheck.Syncer + "&exclude=" + readyzcheck.DNS

// knestdFlags are the knestd flags the supervisor reads.
type knestdFlags struct {
	bindAddress string
	securePort  int
	dataDir     string
}

// parseKnestdFlags reads the flags the supervisor needs from knestd's,
// leaving the others to knestd (which validates them all).
func parseKnestdFlags(args []string) (knestdFlags, error) {
	k := knestdFlags{}
	fs := pflag.NewFlagSet("knestd", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.StringVar(&k.bindAddress, "bind-address", "127.0.0.1", "")
	fs.IntVar(&k.securePort, "secure-port", 6443, "")
	fs.StringVar(&k.dataDir, "data-dir", "", "")
	fs.SetOutput(nopWriter{})
	if err := fs.Parse(args); err != nil {
		return k, fmt.Errorf("knestd's flags: %w", err)
	}
	if k.dataDir == "" {
		return k, errors.New("knestd's flags: --data-dir is required")
	}
	if net.ParseIP(k.bindAddress) == nil {
		return k, fmt.Errorf("knestd's flags: --bind-address %q is not an IP address", k.bindAddress)
	}
	return k, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func findKnestd(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "knestd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("knestd")
	if err != nil {
		return "", errors.New("knestd not found next to knest-supervisor or on PATH; give --knestd")
	}
	return p, nil
}

// check asks knestd's /readyz or /livez (anonymous, as kubelets probe
// them), verifying its serving certificate with the tenant's CA (read at
// each probe: the first start writes it).
func check(caFile string) supervisor.Check {
	return func(ctx context.Context, addr, path string) error {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no certificate", caFile)
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true,
		}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// knestd lists its failed checks ("[-]etcd failed").
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("%s: %s", resp.Status, failedChecks(string(body)))
		}
		return nil
	}
}

// failedChecks keeps the failed lines of a verbose health answer, or the
// whole (short) answer.
func failedChecks(body string) string {
	var failed []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "[-]") {
			failed = append(failed, l)
		}
	}
	if len(failed) == 0 {
		return strings.TrimSpace(body)
	}
	return strings.Join(failed, "; ")
}
