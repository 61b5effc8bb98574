package knestd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/idle"
	"github.com/knest-dev/knest/pkg/lifecycle"
)

// SleepPath puts the tenant to sleep (POST), behind the API server's
// authentication and RBAC (cluster-admin may; knest sleep sends it).
const SleepPath = "/knest/sleep"

// ErrAsleep is what Run returns when knestd stopped to sleep; knestd's
// command exits with supervisor.ExitAsleep for knest-supervisor.
var ErrAsleep = errors.New("the tenant is asleep")

// sleepPodsTimeout bounds stopping the host pods before a sleep; past it
// knestd stays awake and says why.
const sleepPodsTimeout = 2 * time.Minute

// sleeper decides when knestd sleeps: after --sleep-after without a user
// request, or when asked on SleepPath.
type sleeper struct {
	after   time.Duration
	tracker *idle.Tracker
	// supervised: knest-supervisor runs knestd and wakes it.
	supervised bool
	// asked carries a SleepPath request's reason.
	asked chan string
}

func newSleeper(after time.Duration, supervised bool) *sleeper {
	return &sleeper{after: after, supervised: supervised, tracker: idle.NewTracker(nil), asked: make(chan string, 1)}
}

// wrap counts user requests (pkg/idle), when knestd can sleep.
func (s *sleeper) wrap() func(http.Handler) http.Handler {
	if !s.supervised {
		return nil
	}
	return func(h http.Handler) http.Handler { return idle.Handler(s.tracker, h) }
}

// serve is SleepPath.
func (s *sleeper) serve(w http.ResponseWriter, r *http.Request) {
	u, ok := request.UserFrom(r.Context())
	if !ok || u.GetName() == "" {
		http.Error(w, "sleep: no authenticated user", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "sleep: POST puts the tenant to sleep", http.StatusMethodNotAllowed)
		return
	}
	if !s.supervised {
		http.Error(w, "sleep: this knestd runs without knest-supervisor, which keeps the tenant's address open while it sleeps and wakes it: it cannot sleep", http.StatusConflict)
		return
	}
	select {
	case s.asked <- "asked by " + u.GetName():
	default: // already asked
	}
	klog.FromContext(r.Context()).Info("Sleep requested", "user", u.GetName())
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(w, "the tenant is going to sleep: its host pods stop, then knestd; the next request wakes it")
}

// start is the "sleep" step: it watches for idleness or a request, stops
// the host pods (stopPods, nil when not syncing), and calls sleep, which
// stops knestd with ErrAsleep. The idle time counts from here: the control
// plane is ready.
func (s *sleeper) start(stopPods func(context.Context) error, sleep func()) func(context.Context) (lifecycle.Running, error) {
	return func(ctx context.Context) (lifecycle.Running, error) {
		s.tracker.Touch()
		runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		logger := klog.FromContext(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				var reason string
				select {
				case <-runCtx.Done():
					return
				case reason = <-s.asked:
				case <-tick.C:
					idleFor := s.tracker.IdleFor()
					if s.after <= 0 || idleFor < s.after {
						continue
					}
					reason = "idle for " + idleFor.Round(time.Second).String()
				}
				logger.Info("Going to sleep", "reason", reason)
				if stopPods != nil {
					podsCtx, cancel := context.WithTimeout(runCtx, sleepPodsTimeout)
					err := stopPods(podsCtx)
					cancel()
					if err != nil {
						if runCtx.Err() != nil {
							return
						}
						// Pods without knestd would lose their DNS: stay up.
						logger.Error(err, "Staying awake: the host pods could not be stopped")
						continue
					}
				}
				sleep()
				return
			}
		}()
		return lifecycle.Running{Stop: func() { stop(); <-done }}, nil
	}
}

// publicServer is the URL of the supervisor's address, which clients use.
func publicServer(advertise net.IP, port int) string {
	return "https://" + net.JoinHostPort(advertise.String(), strconv.Itoa(port))
}
