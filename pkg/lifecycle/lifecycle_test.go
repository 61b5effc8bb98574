package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
)

// journal records what the steps of a test did, in order.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

// step is a step that records its start and stop in j; tweaks change it.
func step(j *journal, name string, tweaks ...func(*Step)) Step {
	s := Step{Name: name, Start: func(ctx context.Context) (Running, error) {
		j.add("start %s", name)
		return Running{Stop: func() { j.add("stop %s", name) }}, nil
	}}
	for _, tweak := range tweaks {
		tweak(&s)
	}
	return s
}

func failingToStart(j *journal, err error) func(*Step) {
	return func(s *Step) {
		name := s.Name
		s.Start = func(context.Context) (Running, error) {
			j.add("start %s", name)
			return Running{}, err
		}
	}
}

// withFailed gives the step a Failed channel the test sends on.
func withFailed(j *journal, failed <-chan error) func(*Step) {
	return func(s *Step) {
		name := s.Name
		s.Start = func(context.Context) (Running, error) {
			j.add("start %s", name)
			return Running{Stop: func() { j.add("stop %s", name) }, Failed: failed}, nil
		}
	}
}

func testContext(t *testing.T) context.Context {
	return klog.NewContext(t.Context(), klog.Background())
}

func TestStartRunsStepsInOrderAndStopReversesThem(t *testing.T) {
	t.Parallel()
	j := &journal{}
	r, err := Start(testContext(t), []Step{
		step(j, "a"),
		Do("nothing to stop", func(context.Context) error { j.add("do"); return nil }),
		step(j, "b"),
		step(j, "c"),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Stop("test")
	want := []string{"start a", "do", "start b", "start c", "stop c", "stop b", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAFailedStartStopsWhatStartedAndNamesTheStep(t *testing.T) {
	t.Parallel()
	boom := errors.New("cannot listen on 127.0.0.1:6443: address already in use")
	tests := []struct {
		name       string
		steps      func(j *journal) []Step
		wantEvents []string
		wantStep   string
	}{
		{
			name: "the first step fails: nothing to stop",
			steps: func(j *journal) []Step {
				return []Step{step(j, "a", failingToStart(j, boom)), step(j, "b")}
			},
			wantEvents: []string{"start a"},
			wantStep:   "a",
		},
		{
			name: "a middle step fails: the earlier ones stop in reverse, the later ones never start",
			steps: func(j *journal) []Step {
				return []Step{step(j, "a"), step(j, "b"), step(j, "c", failingToStart(j, boom)), step(j, "d")}
			},
			wantEvents: []string{"start a", "start b", "start c", "stop b", "stop a"},
			wantStep:   "c",
		},
		{
			name: "the last step fails",
			steps: func(j *journal) []Step {
				return []Step{step(j, "a"), step(j, "b", failingToStart(j, boom))}
			},
			wantEvents: []string{"start a", "start b", "stop a"},
			wantStep:   "b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := &journal{}
			r, err := Start(testContext(t), tc.steps(j))
			if r != nil {
				t.Errorf("Start returned a runner with its error")
			}
			if diff := cmp.Diff(tc.wantEvents, j.get()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.wantStep {
				t.Fatalf("error %v (%T), want a *StepError of step %q", err, err, tc.wantStep)
			}
			if !errors.Is(err, boom) || err.Error() != boom.Error() {
				t.Errorf("error %q, want the step's own %q", err, boom)
			}
		})
	}
}

func TestAPartFailingWhileRunningStopsEverythingAndIsReturned(t *testing.T) {
	t.Parallel()
	j := &journal{}
	failed := make(chan error, 1)
	r, err := Start(testContext(t), []Step{step(j, "a"), step(j, "server", withFailed(j, failed)), step(j, "c")})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("server stopped: port closed")
	failed <- boom
	err = r.Wait(testContext(t))
	var se *StepError
	if !errors.As(err, &se) || se.Step != "server" || !errors.Is(err, boom) {
		t.Errorf("Wait returned %v, want the server's failure", err)
	}
	want := []string{"start a", "start server", "start c", "stop c", "stop server", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestFailedReportsWithoutStopping(t *testing.T) {
	t.Parallel()
	j := &journal{}
	failed := make(chan error, 1)
	r, err := Start(testContext(t), []Step{step(j, "a"), step(j, "server", withFailed(j, failed))})
	if err != nil {
		t.Fatal(err)
	}
	failed <- nil
	select {
	case err := <-r.Failed():
		if err.Error() != "exited" || err.(*StepError).Step != "server" {
			t.Errorf("Failed delivered %v, want the server's exit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Failed delivered nothing")
	}
	if diff := cmp.Diff([]string{"start a", "start server"}, j.get()); diff != "" {
		t.Errorf("Failed stopped something (-want +got):\n%s", diff)
	}
	r.Stop("test")
	want := []string{"start a", "start server", "stop server", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAPartFailingDuringALaterStepAbandonsTheStart(t *testing.T) {
	t.Parallel()
	j := &journal{}
	failed := make(chan error, 1)
	boom := errors.New("etcd failed: disk full")
	waiting := func(s *Step) {
		// Like a readiness wait: it gives up when its context ends.
		s.Start = func(ctx context.Context) (Running, error) {
			j.add("start waiting")
			failed <- boom
			<-ctx.Done()
			return Running{}, fmt.Errorf("kube-apiserver did not become ready: %w", ctx.Err())
		}
	}
	_, err := Start(testContext(t), []Step{step(j, "etcd", withFailed(j, failed)), step(j, "waiting", waiting), step(j, "never")})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "etcd" || !errors.Is(err, boom) {
		t.Errorf("Start returned %v, want etcd's failure, the cause", err)
	}
	want := []string{"start etcd", "start waiting", "stop etcd"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStopHappensOnce(t *testing.T) {
	t.Parallel()
	j := &journal{}
	r, err := Start(testContext(t), []Step{step(j, "a"), step(j, "b")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	var wg sync.WaitGroup
	waitErr := make(chan error, 1)
	wg.Go(func() { waitErr <- r.Wait(ctx) })
	for range 3 {
		wg.Go(func() { r.Stop("test") })
	}
	cancel()
	wg.Wait()
	r.Stop("again")
	if err := <-waitErr; err != nil {
		t.Errorf("Wait returned %v, want nil: it was stopped", err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestFailuresWhileStoppingAreIgnored(t *testing.T) {
	t.Parallel()
	j := &journal{}
	failed := make(chan error, 1)
	server := func(s *Step) {
		// A server whose Serve returns an error when it is shut down.
		s.Start = func(context.Context) (Running, error) {
			j.add("start server")
			return Running{Stop: func() { failed <- errors.New("use of closed connection"); j.add("stop server") }, Failed: failed}, nil
		}
	}
	closed := make(chan error)
	close(closed)
	r, err := Start(testContext(t), []Step{step(j, "a"), step(j, "server", server), step(j, "closed", withFailed(j, closed))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(testContext(t))
	cancel(errors.New("signal terminated"))
	if err := r.Wait(ctx); err != nil {
		t.Errorf("Wait returned %v, want nil after its context ended", err)
	}
	select {
	case err := <-r.Failed():
		t.Errorf("Failed delivered %v while stopping", err)
	default:
	}
	want := []string{"start a", "start server", "start closed", "stop closed", "stop server", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAContextEndingDuringStartStopsWhatStarted(t *testing.T) {
	t.Parallel()
	j := &journal{}
	ctx, cancel := context.WithCancel(testContext(t))
	cancelling := func(s *Step) {
		s.Start = func(context.Context) (Running, error) {
			j.add("start b")
			cancel()
			return Running{Stop: func() { j.add("stop b") }}, nil
		}
	}
	_, err := Start(ctx, []Step{step(j, "a"), step(j, "b", cancelling), step(j, "c")})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "c" || !errors.Is(err, context.Canceled) {
		t.Errorf("Start returned %v, want the cancellation before step c", err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAContextEndingAfterStartStopsEverything(t *testing.T) {
	t.Parallel()
	j := &journal{}
	ctx, cancel := context.WithCancel(testContext(t))
	r, err := Start(ctx, []Step{step(j, "a"), step(j, "b")})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := r.Wait(ctx); err != nil {
		t.Errorf("Wait returned %v, want nil", err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStepsAreLoggedWithTheirDurations(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lines []string
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 1})
	ctx := klog.NewContext(t.Context(), logger)
	j := &journal{}
	r, err := Start(ctx, []Step{step(j, "etcd"), Do("kubeconfig", func(context.Context) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	r.Stop("signal terminated")
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		`"level"=1 "msg"="Step started" "step"="etcd"`,
		`"level"=1 "msg"="Step started" "step"="kubeconfig"`,
		`"level"=0 "msg"="Stopping" "reason"="signal terminated"`,
		`"level"=1 "msg"="Step stopped" "step"="etcd"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]+` "took"=`) && lines[i] != want[i] {
			t.Errorf("line %d is %s, want %s", i, lines[i], want[i])
		}
	}
	if !strings.Contains(lines[1], `"elapsed"=`) {
		t.Errorf("a started step's line does not say the time since the start: %s", lines[1])
	}
}
