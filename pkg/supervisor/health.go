package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Check asks the knestd serving at addr (host:port, on loopback) about one
// of its health endpoints, path /livez or /readyz; nil means ok.
type Check func(ctx context.Context, addr, path string) error

// HealthHandler serves the supervisor's own health endpoints, for kubelet
// probes: plain HTTP on a port of its own, so that a probe never opens a
// connection to the tenant's API address, which would wake a sleeping
// tenant at every period. Both answer 200 with a line saying the state,
// or 503 with the reason:
//
//   - /livez: ok while knestd sleeps; while knestd starts or wakes, ok for
//     up to startLimit after its start, then failed (a start that never
//     ends restarts the container, as the chart's startup probe on knestd
//     itself does); once knestd was ready, knestd's own /livez.
//   - /readyz: ok while knestd sleeps or wakes (connections are accepted
//     and held until it is ready, so the pod should stay in its Services'
//     endpoints; a wake lasts until knestd's whole /readyz was ok once, or
//     startLimit); failed while knestd starts for the first time in this
//     supervisor's life (a new pod is not ready before its control plane
//     is); then knestd's own /readyz.
//
// Asking knestd goes to its loopback address directly, never through the
// proxy, and only while it runs: a probe never wakes the tenant. knestd
// answers these anonymously, and anonymous requests do not keep a tenant
// awake (pkg/idle).
func (s *Supervisor) HealthHandler(check Check, startLimit time.Duration) http.Handler {
	mux := http.NewServeMux()
	serve := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 4*time.Second)
			defer cancel()
			ok, msg := s.health(ctx, check, startLimit, path)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			fmt.Fprintln(w, msg)
		}
	}
	mux.HandleFunc("/livez", serve("/livez"))
	mux.HandleFunc("/readyz", serve("/readyz"))
	return mux
}

// health answers one probe of path: whether it passes, and why.
func (s *Supervisor) health(ctx context.Context, check Check, startLimit time.Duration, path string) (bool, string) {
	s.mu.Lock()
	c, stopping := s.child, s.stopping
	s.mu.Unlock()
	switch {
	case stopping:
		// Stopping (a signal) or failed: Serve is ending, and the
		// container with it.
		return path == "/livez", "supervisor: stopping"
	case c == nil:
		return true, "ok: asleep (a connection to the API address wakes the tenant)"
	}
	elapsed := time.Since(c.started)
	running := elapsed.Round(time.Second)
	select {
	case <-c.ready:
		err := check(ctx, c.addr, path)
		switch {
		case err == nil:
			if path == "/readyz" {
				c.fullyReady.Store(true)
			}
			return true, "ok: awake"
		case path == "/readyz" && c.wake && !c.fullyReady.Load() && elapsed <= startLimit:
			// Connections are proxied once the API server is ready
			// (Config.Ready); knestd's own checks (the syncer's caches)
			// follow within moments of a wake.
			return true, fmt.Sprintf("ok: waking (%s; the API server answers, knestd's /readyz not yet: %v)", running, err)
		default:
			return false, fmt.Sprintf("knestd %s: %v", path, err)
		}
	default:
	}
	if path == "/livez" {
		if elapsed > startLimit {
			return false, fmt.Sprintf("knestd was started %s ago and is not ready (limit %s)", running, startLimit)
		}
		return true, fmt.Sprintf("ok: knestd is starting (%s)", running)
	}
	if c.wake {
		return true, fmt.Sprintf("ok: waking (%s; connections are held until knestd is ready)", running)
	}
	return false, fmt.Sprintf("knestd is starting (%s) and not ready yet", running)
}
