package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests run this test binary as the supervised child: a real process
// that serves HTTP on the port it is given after a start-up delay, exits
// with ExitAsleep on /sleep, with 3 on /crash, and with 0 on SIGTERM; its
// /readyz fails after /unready.
const childEnv = "KNEST_SUPERVISOR_TEST_CHILD"

// syncDelayEnv is how long the child's whole /readyz fails after it
// listens (as knestd's does until its syncer's caches sync).
const syncDelayEnv = "KNEST_SUPERVISOR_TEST_SYNC_DELAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

func runChild() {
	port, delay := os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]
	d, _ := time.ParseDuration(delay)
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	time.Sleep(d)
	l, err := net.Listen("tcp4", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exit := make(chan int, 1)
	mux := http.NewServeMux()
	var unready atomic.Bool
	// Like knestd's, /readyz?exclude=... skips its own checks, which
	// pass syncDelay after it listens.
	syncDelay, _ := time.ParseDuration(os.Getenv(syncDelayEnv))
	listening := time.Now()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.Query().Has("exclude") && time.Since(listening) < syncDelay {
			http.Error(w, "[-]knest-syncer failed", http.StatusInternalServerError)
			return
		}
		if unready.Load() {
			http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/unready", func(w http.ResponseWriter, r *http.Request) { unready.Store(true) })
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) { exit <- ExitAsleep })
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { exit <- 3 })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "pid %d", os.Getpid()) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	select {
	case code := <-exit:
		srv.Shutdown(context.Background())
		os.Exit(code)
	case <-terms:
		srv.Shutdown(context.Background())
		os.Exit(0)
	}
}

type harness struct {
	s      *Supervisor
	addr   string
	served chan error
	cancel context.CancelFunc
}

func start(t *testing.T, delay, wakeTimeout time.Duration) *harness {
	t.Helper()
	return startSyncing(t, delay, 0, wakeTimeout)
}

// startSyncing starts a supervisor whose children are API-ready delay
// after they start, and wholly ready syncDelay later.
func startSyncing(t *testing.T, delay, syncDelay, wakeTimeout time.Duration) *harness {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Listener: l,
		Command: func(port int) *exec.Cmd {
			cmd := exec.Command(os.Args[0], strconv.Itoa(port), delay.String())
			cmd.Env = append(os.Environ(), childEnv+"=1", syncDelayEnv+"="+syncDelay.String())
			cmd.Stderr = os.Stderr
			return cmd
		},
		Ready: func(ctx context.Context, addr string) error {
			// As knest-supervisor's: the API server's readiness.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz?exclude=knest-syncer", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		},
		WakeTimeout: wakeTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{s: s, addr: l.Addr().String(), served: make(chan error, 1), cancel: cancel}
	go func() { h.served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.served:
		case <-time.After(30 * time.Second):
			t.Error("the supervisor did not stop within 30s of its context ending")
		}
	})
	return h
}

// get sends one request through the supervisor, on a new connection.
func (h *harness) get(path string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	resp, err := c.Get("http://" + h.addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitAsleep(t *testing.T, s *Supervisor) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !s.Asleep() {
		if time.Now().After(deadline) {
			t.Fatal("the child did not exit to sleep within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAConnectionWhileAsleepIsHeldUntilTheChildIsReady(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	h := start(t, delay, time.Minute)
	first, err := h.get("/")
	if err != nil {
		t.Fatalf("the first request (held while the child starts): %v", err)
	}
	// Ask the child to sleep; the connection carrying that request ends
	// when it exits.
	_, _ = h.get("/sleep")
	waitAsleep(t, h.s)

	begin := time.Now()
	second, err := h.get("/")
	if err != nil {
		t.Fatalf("a request while asleep must be held, not failed: %v", err)
	}
	if took := time.Since(begin); took < delay {
		t.Errorf("the request was answered after %v, before the child could listen (%v): it was not held for the wake", took, delay)
	}
	if first == second || !strings.HasPrefix(second, "pid ") {
		t.Errorf("the request after the sleep was answered by %q, the first by %q: want a new child", second, first)
	}
	if got := h.s.Wakes(); got != 2 {
		t.Errorf("the child was started %d times, want 2 (start and one wake)", got)
	}
}

func TestManyHeldConnectionsWakeOneChild(t *testing.T) {
	t.Parallel()
	h := start(t, 500*time.Millisecond, time.Minute)
	if _, err := h.get("/"); err != nil {
		t.Fatal(err)
	}
	_, _ = h.get("/sleep")
	waitAsleep(t, h.s)
	var wg sync.WaitGroup
	answers := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := h.get("/")
			if err != nil {
				t.Errorf("a held request failed: %v", err)
			}
			answers <- got
		}()
	}
	wg.Wait()
	close(answers)
	seen := map[string]bool{}
	for a := range answers {
		seen[a] = true
	}
	if len(seen) != 1 || h.s.Wakes() != 2 {
		t.Errorf("10 concurrent requests while asleep were answered by %v, after %d starts: want one new child", seen, h.s.Wakes())
	}
}

func TestAHeldConnectionIsClosedAfterTheWakeTimeout(t *testing.T) {
	t.Parallel()
	// The child listens only after 5s; the wake timeout is 1s.
	h := start(t, 5*time.Second, time.Second)
	begin := time.Now()
	_, err := h.get("/")
	if err == nil {
		t.Fatal("a request held past the wake timeout succeeded; want the connection closed")
	}
	if took := time.Since(begin); took < time.Second || took > 4*time.Second {
		t.Errorf("the held connection was closed after %v, want about the 1s wake timeout", took)
	}
	// The same child becomes ready, and then requests go through.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err = h.get("/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request went through within 30s of the child's start: %v", err)
		}
	}
	if h.s.Wakes() != 1 {
		t.Errorf("the child was started %d times, want 1: a timed-out wait does not restart it", h.s.Wakes())
	}
}

func TestAChildFailureEndsTheSupervisor(t *testing.T) {
	t.Parallel()
	h := start(t, 0, time.Minute)
	if _, err := h.get("/"); err != nil {
		t.Fatal(err)
	}
	_, _ = h.get("/crash")
	select {
	case err := <-h.served:
		if err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("Serve returned %v, want the child's exit status 3", err)
		}
		h.served <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor kept running after its child failed")
	}
	if h.s.Wakes() != 1 {
		t.Errorf("the child was started %d times, want 1: a failed child is not restarted", h.s.Wakes())
	}
}

func TestStoppingTheSupervisorStopsTheChildWithSIGTERM(t *testing.T) {
	t.Parallel()
	h := start(t, 0, time.Minute)
	if _, err := h.get("/"); err != nil {
		t.Fatal(err)
	}
	h.s.mu.Lock()
	c := h.s.child
	h.s.mu.Unlock()
	h.cancel()
	select {
	case err := <-h.served:
		if err != nil {
			t.Errorf("Serve after its context ended: %v, want nil", err)
		}
		h.served <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not stop")
	}
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("the child exited with %v, want 0 (its SIGTERM handler ran)", c.err)
		}
	default:
		t.Error("Serve returned before its child exited")
	}
}
