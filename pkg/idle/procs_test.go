package idle

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// governed runs p on a process with 2 Ps (p.Busy 2 unless set) and
// restores GOMAXPROCS after.
func governed(t *testing.T, p *Procs) (stop func()) {
	t.Helper()
	was := runtime.GOMAXPROCS(2)
	if p.Busy == 0 {
		p.Busy = 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		runtime.GOMAXPROCS(was)
	})
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func serve(h http.Handler, u user.Info) {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if u != nil {
		r = r.WithContext(request.WithUser(r.Context(), u))
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
}

// A quiet process runs on one P; a user's request is served with all of
// them, and stopping the governor gives them back.
func TestProcsLowerWhenQuietAndRaiseForAUserRequest(t *testing.T) {
	// HighCPU above any real use: only requests raise here.
	p := &Procs{Tick: 20 * time.Millisecond, QuietTicks: 3, LowCPU: 0.9, HighCPU: 100}
	stop := governed(t, p)
	waitFor(t, "GOMAXPROCS is lowered", p.Lowered)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("lowered, but GOMAXPROCS = %d, want 1", got)
	}

	var seen int
	h := p.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen = runtime.GOMAXPROCS(0) }))
	// Requests knestd makes of itself and probes leave it lowered.
	for _, u := range []user.Info{nil, &user.DefaultInfo{Name: user.Anonymous}, &user.DefaultInfo{Name: user.KubeControllerManager}, &user.DefaultInfo{Name: "system:serviceaccount:kube-system:replicaset-controller"}} {
		serve(h, u)
		if seen != 1 || !p.Lowered() {
			t.Errorf("request as %v served with GOMAXPROCS %d (lowered: %v), want 1 and still lowered", u, seen, p.Lowered())
		}
	}
	serve(h, &user.DefaultInfo{Name: "alice"})
	if seen != 2 {
		t.Errorf("alice's request served with GOMAXPROCS %d, want 2", seen)
	}

	// While a user's request is in flight (a watch), it stays raised.
	release, inside := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		serve(p.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			close(inside)
			<-release
		})), &user.DefaultInfo{Name: "alice"})
	})
	<-inside
	time.Sleep(10 * p.Tick)
	if p.Lowered() || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("lowered while a user's request was in flight")
	}
	close(release)
	wg.Wait()
	waitFor(t, "GOMAXPROCS is lowered again", p.Lowered)

	stop()
	if got := runtime.GOMAXPROCS(0); got != 2 || p.Lowered() {
		t.Errorf("after Run returned GOMAXPROCS = %d (lowered: %v), want 2", got, p.Lowered())
	}
}

// Work no request announces (the syncer's, the controllers') raises it.
func TestProcsRaiseWhenBusy(t *testing.T) {
	p := &Procs{Tick: 50 * time.Millisecond, QuietTicks: 3, LowCPU: 0.2, HighCPU: 0.3}
	governed(t, p)
	waitFor(t, "GOMAXPROCS is lowered", p.Lowered)
	switches := p.Switches()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for i := 0; i < 1e6; i++ {
				_ = i * i
			}
		}
	}()
	waitFor(t, "GOMAXPROCS is raised for a busy process", func() bool { return !p.Lowered() })
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS = %d after the raise, want 2", got)
	}
	if got := p.Switches(); got != switches+1 {
		t.Errorf("switches = %d, want %d", got, switches+1)
	}
}

// Unset, Busy is the runtime's default, and the raise restores it as the
// default (runtime.SetDefaultGOMAXPROCS), which keeps the runtime's own
// updates of it on, instead of fixing the number.
func TestProcsRaiseRestoresTheRuntimesDefault(t *testing.T) {
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	if def < 2 {
		t.Skipf("the runtime's default GOMAXPROCS here is %d: nothing to lower", def)
	}
	p := &Procs{Tick: 20 * time.Millisecond, QuietTicks: 3, LowCPU: 0.9, HighCPU: 100}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, "GOMAXPROCS is lowered", p.Lowered)
	serve(p.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), &user.DefaultInfo{Name: "alice"})
	if got := runtime.GOMAXPROCS(0); got != def || p.Lowered() {
		t.Fatalf("after a user's request GOMAXPROCS = %d (lowered: %v), want the default %d", got, p.Lowered(), def)
	}
	if !p.auto {
		t.Error("Busy unset, but the raise does not restore the runtime's default")
	}
}

// An operator's GOMAXPROCS is theirs.
func TestGovernedNotWhenTheOperatorSetGOMAXPROCS(t *testing.T) {
	was := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(was)
	t.Setenv("GOMAXPROCS", "2")
	if Governed() {
		t.Error("Governed() with GOMAXPROCS set, want false")
	}
}

// BenchmarkProcsSwitch is what lowering and raising GOMAXPROCS costs (a
// stop of the world each) in a process with as many parked goroutines as
// an idle knestd (~4000).
func BenchmarkProcsSwitch(b *testing.B) {
	was := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(was)
	park := make(chan struct{})
	defer close(park)
	for range 4000 {
		go func() { <-park }()
	}
	for b.Loop() {
		runtime.GOMAXPROCS(1)
		runtime.GOMAXPROCS(2)
	}
}
