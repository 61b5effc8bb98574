package idle

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// clock is a settable clock for the tracker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestCounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		user user.Info
		want bool
	}{
		{"a request without a user does not count", nil, false},
		{"an anonymous probe does not count", &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}, false},
		{"knestd's own clients do not count", &user.DefaultInfo{Name: "system:knest:knestd", Groups: []string{user.SystemPrivilegedGroup}}, false},
		{"the API server's loopback client does not count", &user.DefaultInfo{Name: user.APIServerUser}, false},
		{"the controller-manager does not count", &user.DefaultInfo{Name: user.KubeControllerManager}, false},
		{"a controller's ServiceAccount does not count", &user.DefaultInfo{Name: "system:serviceaccount:kube-system:namespace-controller"}, false},
		{"the tenant admin counts", &user.DefaultInfo{Name: "kubernetes-admin", Groups: []string{user.SystemPrivilegedGroup}}, true},
		{"a tenant pod's ServiceAccount counts", &user.DefaultInfo{Name: "system:serviceaccount:default:app"}, true},
		{"a user named like knestd's group but not its name counts", &user.DefaultInfo{Name: "alice", Groups: []string{"system:knest:x"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Counts(tt.user); got != tt.want {
				t.Errorf("Counts(%v) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
}

func TestTrackerIdleTime(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	tr := NewTracker(c.now)
	c.add(5 * time.Second)
	if got := tr.IdleFor(); got != 5*time.Second {
		t.Fatalf("a tracker nobody used is idle since it started: IdleFor = %v, want 5s", got)
	}
	end := tr.Begin()
	c.add(time.Hour)
	if got := tr.IdleFor(); got != 0 {
		t.Fatalf("a request in flight (a watch) for an hour: IdleFor = %v, want 0", got)
	}
	end()
	end() // ending twice counts once
	c.add(3 * time.Second)
	if got := tr.IdleFor(); got != 3*time.Second {
		t.Fatalf("3s after the last request ended: IdleFor = %v, want 3s", got)
	}
	other := tr.Begin()
	if got := tr.IdleFor(); got != 0 {
		t.Fatalf("after ending one request twice, another in flight: IdleFor = %v, want 0", got)
	}
	other()
}

func TestHandlerCountsOnlyUsers(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	tr := NewTracker(c.now)
	var seenInFlight time.Duration = -1
	h := Handler(tr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenInFlight = tr.IdleFor()
	}))
	serve := func(u user.Info) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
		if u != nil {
			r = r.WithContext(request.WithUser(r.Context(), u))
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	c.add(time.Minute)
	serve(&user.DefaultInfo{Name: "system:knest:knestd"})
	serve(&user.DefaultInfo{Name: user.Anonymous})
	serve(nil)
	if got := tr.IdleFor(); got != time.Minute {
		t.Fatalf("after knestd's own and anonymous requests: IdleFor = %v, want 1m (they do not count)", got)
	}
	serve(&user.DefaultInfo{Name: "kubernetes-admin"})
	if seenInFlight != 0 {
		t.Errorf("during a user's request: IdleFor = %v, want 0", seenInFlight)
	}
	if got := tr.IdleFor(); got != 0 {
		t.Fatalf("right after a user's request: IdleFor = %v, want 0", got)
	}
}
