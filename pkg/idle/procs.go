package idle

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// Procs lowers GOMAXPROCS to 1 while the process is quiet and raises it
// back when it is not. An idle control plane's goroutines wake several
// hundred times a second, each for almost nothing (timers of watch caches,
// etcd's raft tick, delaying queues); with a second P idle, each wake-up
// also wakes an OS thread to look for work that is not there. With one P
// those spurious wake-ups are gone (README "Idle cost, lever by lever").
//
// Quiet: no user request (Counts) in flight, and the process used less
// than LowCPU of a core in each of the last QuietTicks ticks. Not quiet:
// a user request begins (raised before it is served), or while lowered the
// process used more than HighCPU of its one core in a tick (the syncer's
// or the controllers' own work, which no user request announces; such work
// runs on one core for at most one tick).
type Procs struct {
	// Busy is the GOMAXPROCS to raise to. Unset, it is the runtime's
	// default, restored with runtime.SetDefaultGOMAXPROCS: a call of
	// runtime.GOMAXPROCS would turn off the runtime's own updates of it
	// (a pod's CPU limit changed in place).
	Busy int
	// Tick is how often the process's CPU time is read.
	Tick time.Duration
	// QuietTicks is how many quiet ticks in a row lower GOMAXPROCS.
	QuietTicks int
	// LowCPU and HighCPU are fractions of a core (see Procs).
	LowCPU, HighCPU float64

	mu       sync.Mutex
	auto     bool // Busy is the runtime's default
	lowered  atomic.Bool
	inFlight atomic.Int64
	switches atomic.Int64
	logger   klog.Logger
}

// NewProcs returns a Procs with knestd's settings: 1 s ticks, lowered
// after 10 quiet ones below 10 % of a core, raised above 50 %.
func NewProcs() *Procs {
	return &Procs{Tick: time.Second, QuietTicks: 10, LowCPU: 0.10, HighCPU: 0.50}
}

// Governed says whether knestd governs GOMAXPROCS: not when the operator
// set GOMAXPROCS, and not on one CPU.
func Governed() bool {
	_, set := os.LookupEnv("GOMAXPROCS")
	return !set && runtime.GOMAXPROCS(0) > 1
}

// Lowered says whether GOMAXPROCS is lowered now.
func (p *Procs) Lowered() bool { return p.lowered.Load() }

// Switches counts the changes of GOMAXPROCS so far.
func (p *Procs) Switches() int64 { return p.switches.Load() }

// Run governs GOMAXPROCS until ctx ends, then raises it.
func (p *Procs) Run(ctx context.Context) {
	p.mu.Lock()
	if p.Busy == 0 {
		p.Busy, p.auto = runtime.GOMAXPROCS(0), true
	}
	p.logger = klog.FromContext(ctx)
	p.mu.Unlock()
	defer p.raise("stopping")
	tick := time.NewTicker(p.Tick)
	defer tick.Stop()
	lastCPU, lastAt := cpuTime(), time.Now()
	quiet := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			used := cpuTime()
			frac := float64(used-lastCPU) / float64(now.Sub(lastAt))
			lastCPU, lastAt = used, now
			switch {
			case p.lowered.Load():
				quiet = 0
				if frac > p.HighCPU {
					p.raise("busy")
				}
			case frac < p.LowCPU && p.inFlight.Load() == 0:
				quiet++
				if quiet >= p.QuietTicks {
					quiet = 0
					p.lower()
				}
			default:
				quiet = 0
			}
		}
	}
}

func (p *Procs) lower() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lowered.Load() || p.Busy <= 1 || p.inFlight.Load() > 0 {
		return
	}
	start := time.Now()
	runtime.GOMAXPROCS(1)
	p.lowered.Store(true)
	p.switches.Add(1)
	p.logger.V(2).Info("GOMAXPROCS lowered while idle", "gomaxprocs", 1, "took", time.Since(start))
}

func (p *Procs) raise(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lowered.Load() {
		return
	}
	start := time.Now()
	if p.auto {
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(p.Busy)
	}
	p.lowered.Store(false)
	p.switches.Add(1)
	p.logger.V(2).Info("GOMAXPROCS raised", "gomaxprocs", runtime.GOMAXPROCS(0), "reason", reason, "took", time.Since(start))
}

// Handler wraps an API server's inner handler (inside authentication) so
// that a user's request (Counts) raises GOMAXPROCS before it is served and
// keeps it raised while in flight.
func (p *Procs) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := request.UserFrom(r.Context()); ok && Counts(u) {
			p.inFlight.Add(1)
			defer p.inFlight.Add(-1)
			if p.lowered.Load() {
				p.raise("request")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
