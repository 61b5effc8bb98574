package supervisor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// childCheck asks the test child's health endpoints, as the supervisor's
// command asks knestd's.
func childCheck(ctx context.Context, addr, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return errors.New(resp.Status + ": " + string(b))
	}
	return nil
}

// probe sends one kubelet-like probe to the health server.
func probe(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func wantProbe(t *testing.T, srv *httptest.Server, when, path string, code int, text string) {
	t.Helper()
	got, body := probe(t, srv, path)
	if got != code || !strings.Contains(body, text) {
		t.Errorf("%s: %s answered %d %q, want %d with %q", when, path, got, body, code, text)
	}
}

func TestHealthFollowsKnestdAndNeverWakesIt(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Second
	h := start(t, delay, time.Minute)
	srv := httptest.NewServer(h.s.HealthHandler(childCheck, time.Minute))
	t.Cleanup(srv.Close)

	// The first start: alive, not ready (a new pod is not ready before
	// its control plane is).
	wantProbe(t, srv, "first start", "/livez", http.StatusOK, "ok: knestd is starting")
	wantProbe(t, srv, "first start", "/readyz", http.StatusServiceUnavailable, "knestd is starting")

	if _, err := h.get("/"); err != nil {
		t.Fatal(err)
	}
	wantProbe(t, srv, "awake", "/livez", http.StatusOK, "ok: awake")
	wantProbe(t, srv, "awake", "/readyz", http.StatusOK, "ok: awake")
	// Awake, readiness is knestd's own.
	if _, err := h.get("/unready"); err != nil {
		t.Fatal(err)
	}
	wantProbe(t, srv, "awake, knestd unready", "/readyz", http.StatusServiceUnavailable, "[-]etcd failed")
	wantProbe(t, srv, "awake, knestd unready", "/livez", http.StatusOK, "ok: awake")

	_, _ = h.get("/sleep")
	waitAsleep(t, h.s)
	for range 20 {
		wantProbe(t, srv, "asleep", "/livez", http.StatusOK, "ok: asleep")
		wantProbe(t, srv, "asleep", "/readyz", http.StatusOK, "ok: asleep")
	}
	if !h.s.Asleep() || h.s.Wakes() != 1 {
		t.Fatalf("after 40 probes: asleep %v, %d starts; want still asleep after the first start only", h.s.Asleep(), h.s.Wakes())
	}

	// A connection wakes it; while knestd starts again the pod stays
	// ready, since the connection is held, not refused.
	woken := make(chan error, 1)
	go func() {
		_, err := h.get("/")
		woken <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for h.s.Asleep() {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not wake the child")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantProbe(t, srv, "waking", "/readyz", http.StatusOK, "ok: waking")
	wantProbe(t, srv, "waking", "/livez", http.StatusOK, "ok: knestd is starting")
	if err := <-woken; err != nil {
		t.Fatalf("the held request: %v", err)
	}
	// The new knestd is ready: its /readyz is ok again.
	wantProbe(t, srv, "woken", "/readyz", http.StatusOK, "ok: awake")
}

func TestLivenessFailsWhenKnestdDoesNotBecomeReadyInTime(t *testing.T) {
	t.Parallel()
	// The child listens only after 5s; the start limit is 100ms.
	h := start(t, 5*time.Second, time.Minute)
	srv := httptest.NewServer(h.s.HealthHandler(childCheck, 100*time.Millisecond))
	t.Cleanup(srv.Close)
	time.Sleep(1500 * time.Millisecond)
	wantProbe(t, srv, "a start past its limit", "/livez", http.StatusServiceUnavailable, "is not ready (limit 100ms)")
	wantProbe(t, srv, "a start past its limit", "/readyz", http.StatusServiceUnavailable, "knestd is starting")
}

// TestAWakeIsReadyWhileKnestdsOwnChecksCatchUp: connections are proxied
// once the API server is ready; the pod stays ready until knestd's whole
// /readyz passes, on a wake, but not on the first start.
func TestAWakeIsReadyWhileKnestdsOwnChecksCatchUp(t *testing.T) {
	t.Parallel()
	const syncDelay = 4 * time.Second
	h := startSyncing(t, 0, syncDelay, time.Minute)
	srv := httptest.NewServer(h.s.HealthHandler(childCheck, time.Minute))
	t.Cleanup(srv.Close)
	if _, err := h.get("/"); err != nil {
		t.Fatal(err)
	}
	// The first start, API-ready, syncer not yet: not ready.
	wantProbe(t, srv, "first start, syncing", "/readyz", http.StatusServiceUnavailable, "[-]knest-syncer failed")
	time.Sleep(syncDelay)
	wantProbe(t, srv, "first start, synced", "/readyz", http.StatusOK, "ok: awake")

	_, _ = h.get("/sleep")
	waitAsleep(t, h.s)
	if _, err := h.get("/"); err != nil {
		t.Fatalf("the held request: %v", err)
	}
	// Woken, API-ready, syncer not yet: still ready (waking).
	wantProbe(t, srv, "woken, syncing", "/readyz", http.StatusOK, "ok: waking")
	time.Sleep(syncDelay)
	wantProbe(t, srv, "woken, synced", "/readyz", http.StatusOK, "ok: awake")
	// From then on knestd's /readyz decides.
	if _, err := h.get("/unready"); err != nil {
		t.Fatal(err)
	}
	wantProbe(t, srv, "awake, knestd unready", "/readyz", http.StatusServiceUnavailable, "[-]etcd failed")
}
