package idle

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/knest-dev/knest/pkg/pki"
)

// Tracker counts user requests: those in flight and when the last ended.
// The zero value is not usable; use NewTracker.
type Tracker struct {
	now func() time.Time

	mu       sync.Mutex
	inFlight int
	last     time.Time
}

// NewTracker returns a tracker whose idle time starts now (a control plane
// that just started has served nobody yet). now is the clock; nil means
// time.Now.
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, last: now()}
}

// Begin records the start of a user request; the returned func records
// its end (a watch counts as in flight until it ends).
func (t *Tracker) Begin() (end func()) {
	t.mu.Lock()
	t.inFlight++
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.inFlight--
			t.last = t.now()
			t.mu.Unlock()
		})
	}
}

// Touch restarts the idle time now, as if a request had just ended:
// knestd counts from when its control plane is ready, not from its start.
func (t *Tracker) Touch() {
	t.mu.Lock()
	t.last = t.now()
	t.mu.Unlock()
}

// IdleFor is how long no user request has been in flight: 0 while one is.
func (t *Tracker) IdleFor() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight > 0 {
		return 0
	}
	return t.now().Sub(t.last)
}

// controllerServiceAccounts prefixes the ServiceAccounts the
// controller-manager's controllers use (--use-service-account-credentials).
const controllerServiceAccounts = "system:serviceaccount:kube-system:"

// Counts says whether a request by u keeps the tenant awake: it does
// unless it is anonymous (probes) or one of knestd's own identities.
func Counts(u user.Info) bool {
	if u == nil {
		return false
	}
	name := u.GetName()
	switch {
	case name == "" || name == user.Anonymous:
		return false
	case pki.ReservedUser(name):
		return false
	case name == user.KubeControllerManager:
		return false
	case strings.HasPrefix(name, controllerServiceAccounts):
		return false
	}
	return true
}

// Handler wraps an API server's inner handler (inside authentication, so
// the request carries its user) to count the requests of users.
func Handler(t *Tracker, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := request.UserFrom(r.Context()); ok && Counts(u) {
			end := t.Begin()
			defer end()
		}
		next.ServeHTTP(w, r)
	})
}
