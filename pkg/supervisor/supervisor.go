package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/freeport"
)

// ExitAsleep is knestd's exit code when it stopped to sleep: its host pods
// are stopped and its data is on disk, to be woken by the supervisor.
const ExitAsleep = 75

// Config configures a Supervisor.
type Config struct {
	// Listener is the tenant's public API address.
	Listener net.Listener
	// Command returns knestd's command serving its API on 127.0.0.1:port.
	// Its output goes where the Cmd says (the supervisor's, usually).
	Command func(port int) *exec.Cmd
	// Ready returns nil once the control plane at addr (host:port) is
	// ready to answer requests; it is polled while waking.
	Ready func(ctx context.Context, addr string) error
	// WakeTimeout bounds how long a connection is held while knestd
	// starts; then it is closed.
	WakeTimeout time.Duration
}

// Supervisor runs knestd behind a TCP proxy, starting it again when a
// connection arrives while it sleeps.
type Supervisor struct {
	cfg Config

	mu       sync.Mutex
	child    *child // nil while asleep
	stopping bool
	failed   chan error // the first failure of a child, for Serve
	wakes    int
	// everReady is set once a child was ready: a later start is a wake,
	// during which connections are held.
	everReady bool
}

// child is one knestd process.
type child struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time
	// wake is set when an earlier child was ready: this start is a wake,
	// during which connections are held.
	wake bool
	// fullyReady is set once knestd's whole /readyz answered ok to a
	// health probe (Ready may check less of it).
	fullyReady atomic.Bool
	// ready is closed once Ready answered nil; exited once the process
	// has exited, with its status in err.
	ready  chan struct{}
	exited chan struct{}
	err    error
}

// New returns a supervisor; Serve runs it.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Listener == nil || cfg.Command == nil || cfg.Ready == nil {
		return nil, errors.New("supervisor: a listener, a command and a readiness check are required")
	}
	if cfg.WakeTimeout <= 0 {
		return nil, errors.New("supervisor: the wake timeout must be positive")
	}
	return &Supervisor{cfg: cfg, failed: make(chan error, 1)}, nil
}

// Serve starts knestd and proxies connections until ctx ends (then it
// stops knestd with SIGTERM, waits for it and returns nil) or knestd exits
// other than to sleep (then it returns that exit).
func (s *Supervisor) Serve(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if _, err := s.awake(ctx); err != nil {
		return err
	}
	conns := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := s.cfg.Listener.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			conns <- c
		}
	}()
	var held sync.WaitGroup
	defer held.Wait()
	for {
		select {
		case c := <-conns:
			held.Add(1)
			go func() {
				defer held.Done()
				s.handle(ctx, c)
			}()
		case err := <-s.failed:
			s.cfg.Listener.Close()
			return err
		case err := <-acceptErr:
			s.stop(logger)
			return fmt.Errorf("supervisor: accepting connections: %w", err)
		case <-ctx.Done():
			s.cfg.Listener.Close()
			s.stop(logger)
			return nil
		}
	}
}

// Signal forwards a signal to knestd, if it runs.
func (s *Supervisor) Signal(sig os.Signal) {
	s.mu.Lock()
	c := s.child
	s.mu.Unlock()
	if c != nil {
		_ = c.cmd.Process.Signal(sig)
	}
}

// Wakes is how many times knestd was started (the first start included).
func (s *Supervisor) Wakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wakes
}

// Asleep reports whether knestd is not running.
func (s *Supervisor) Asleep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.child == nil
}

// stop asks knestd to stop (SIGTERM) and waits for it: it is never killed,
// so its data is always left by its own shutdown.
func (s *Supervisor) stop(logger klog.Logger) {
	s.mu.Lock()
	s.stopping = true
	c := s.child
	s.mu.Unlock()
	if c == nil {
		return
	}
	logger.Info("Stopping knestd", "pid", c.cmd.Process.Pid)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
}

// awake returns the running knestd, starting it if it sleeps.
func (s *Supervisor) awake(ctx context.Context) (*child, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, errors.New("supervisor: stopping")
	}
	if s.child != nil {
		return s.child, nil
	}
	logger := klog.FromContext(ctx)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := s.cfg.Command(port)
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("supervisor: failed to start knestd: %w", err)
	}
	c := &child{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), started: begin, wake: s.everReady, ready: make(chan struct{}), exited: make(chan struct{})}
	s.child = c
	s.wakes++
	logger.Info("Started knestd", "pid", cmd.Process.Pid, "address", c.addr, "start", s.wakes)
	probeCtx, cancelProbe := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		c.err = cmd.Wait()
		cancelProbe()
		s.exited(logger, c)
		close(c.exited)
	}()
	go func() {
		defer cancelProbe()
		for probeCtx.Err() == nil {
			if s.cfg.Ready(probeCtx, c.addr) == nil {
				logger.Info("knestd is ready", "pid", cmd.Process.Pid, "elapsed", time.Since(begin).Round(time.Millisecond).String())
				s.mu.Lock()
				s.everReady = true
				s.mu.Unlock()
				close(c.ready)
				return
			}
			select {
			case <-probeCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return c, nil
}

// exited records a child's exit: asleep, stopped as asked, or a failure
// that ends Serve.
func (s *Supervisor) exited(logger klog.Logger, c *child) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.child == c {
		s.child = nil
	}
	var exit *exec.ExitError
	switch {
	case errors.As(c.err, &exit) && exit.ExitCode() == ExitAsleep:
		logger.Info("Tenant asleep: knestd stopped; the next connection wakes it", "pid", c.cmd.Process.Pid)
	case s.stopping:
		logger.Info("knestd stopped", "pid", c.cmd.Process.Pid, "status", fmt.Sprint(c.err))
	default:
		// No new knestd after a failure: Serve ends with it.
		s.stopping = true
		err := c.err
		if err == nil {
			err = errors.New("exit status 0")
		}
		select {
		case s.failed <- fmt.Errorf("knestd exited: %w", err):
		default:
		}
	}
}

// handle holds a connection until knestd is ready, waking it if it
// sleeps, then proxies it.
func (s *Supervisor) handle(ctx context.Context, conn net.Conn) {
	logger := klog.FromContext(ctx).WithValues("client", conn.RemoteAddr().String())
	defer conn.Close()
	deadline := time.NewTimer(s.cfg.WakeTimeout)
	defer deadline.Stop()
	for {
		c, err := s.awake(ctx)
		if err != nil {
			logger.V(1).Info("Closing a connection", "reason", err.Error())
			return
		}
		select {
		case <-c.ready:
		case <-c.exited:
			// It went to sleep (or failed) before it was ready: the
			// next round wakes it again, or ends on the failure.
			continue
		case <-deadline.C:
			logger.Info("Closing a held connection: knestd was not ready within the wake timeout", "timeout", s.cfg.WakeTimeout)
			return
		case <-ctx.Done():
			return
		}
		backend, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			// knestd is going to sleep: wait for its exit, then wake
			// it again.
			select {
			case <-c.exited:
				continue
			case <-deadline.C:
				return
			case <-ctx.Done():
				return
			}
		}
		proxy(conn, backend)
		return
	}
}

// proxy copies both ways until both sides are done, passing half-closes
// on.
func proxy(client, backend net.Conn) {
	defer backend.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}

// freePort is a free loopback port for knestd's API server, outside the
// ephemeral range a client connection could take it from before knestd
// binds it.
func freePort() (int, error) {
	ports, err := freeport.Loopback(1)
	if err != nil {
		return 0, fmt.Errorf("supervisor: %w", err)
	}
	return ports[0], nil
}
