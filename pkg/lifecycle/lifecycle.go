package lifecycle

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Step is one named part of a start-up.
type Step struct {
	// Name says what the step starts, in logs and in StepError.
	Name string
	// Start does the step's work. Its ctx carries the caller's values and
	// ends when the start-up is abandoned (the caller's context ended, or a
	// part started by an earlier step failed) and once the start-up is over:
	// whatever must keep running runs on context.WithoutCancel(ctx) and is
	// ended by Running.Stop. A Start that fails has undone its own work.
	Start func(ctx context.Context) (Running, error)
}

// Running is what a step that started leaves behind.
type Running struct {
	// Stop undoes the step and returns once that is done (or given up on);
	// nil when there is nothing to undo. The Runner calls it at most once.
	Stop func()
	// Failed reports that a part of the step that keeps running failed;
	// nil when nothing can. The first value received counts, a nil error as
	// an exit ("exited"); a closed channel is not a failure. Values after
	// stopping began are ignored: a part may well report its own shutdown.
	Failed <-chan error
}

// Do is a step that has nothing to stop.
func Do(name string, do func(ctx context.Context) error) Step {
	return Step{Name: name, Start: func(ctx context.Context) (Running, error) { return Running{}, do(ctx) }}
}

// StepError is the error of a step, from its Start or, once it runs, its
// Failed channel. Its message is the step's own: a step's error says what
// went wrong, and is often a user's one line.
type StepError struct {
	// Step is the step's name.
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Runner holds the steps Start started until they are stopped.
type Runner struct {
	logger  klog.Logger
	started []started

	mu       sync.Mutex
	failure  *StepError
	failed   chan error
	stopping chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
	watchers sync.WaitGroup
}

type started struct {
	name string
	Running
}

// Start runs steps in order. If one fails, or ctx ends before one begins,
// or a part an earlier step started fails meanwhile, it stops the steps
// already started in reverse order and returns that error as a *StepError.
// Each step's duration is logged at V(1).
func Start(ctx context.Context, steps []Step) (*Runner, error) {
	r := &Runner{
		logger:   klog.FromContext(ctx),
		failed:   make(chan error, 1),
		stopping: make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	startCtx, abandon := context.WithCancelCause(ctx)
	defer abandon(nil)
	begin := time.Now()
	for _, s := range steps {
		if startCtx.Err() != nil {
			return nil, r.abandon(&StepError{Step: s.Name, Err: context.Cause(startCtx)})
		}
		stepBegin := time.Now()
		running, err := s.Start(startCtx)
		if err != nil {
			return nil, r.abandon(&StepError{Step: s.Name, Err: err})
		}
		r.started = append(r.started, started{name: s.Name, Running: running})
		r.watch(s.Name, running.Failed, abandon)
		r.logger.V(1).Info("Step started", "step", s.Name, "took", time.Since(stepBegin), "elapsed", time.Since(begin))
	}
	return r, nil
}

// abandon stops what started and returns the error to report: a failure
// of a started part comes first, as it is why a later step gave up.
func (r *Runner) abandon(err *StepError) error {
	r.mu.Lock()
	if r.failure != nil {
		err = r.failure
	}
	r.mu.Unlock()
	r.stopStarted()
	return err
}

// watch reports the first failure of a started part: to Failed, and to
// the steps still starting, by ending their context.
func (r *Runner) watch(name string, failed <-chan error, abandon context.CancelCauseFunc) {
	if failed == nil {
		return
	}
	r.watchers.Add(1)
	go func() {
		defer r.watchers.Done()
		select {
		case err, ok := <-failed:
			if !ok {
				return
			}
			if err == nil {
				err = errors.New("exited")
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			select {
			case <-r.stopping:
				return
			default:
			}
			if r.failure == nil {
				r.failure = &StepError{Step: name, Err: err}
				r.failed <- r.failure
				abandon(r.failure)
			}
		case <-r.stopping:
		}
	}()
}

// Failed delivers the first failure of a started part, a *StepError, to
// one receiver. It stops nothing: that is Stop's or Wait's.
func (r *Runner) Failed() <-chan error { return r.failed }

// Stop stops the started steps in reverse order, once, logging reason at
// V(0). Later and concurrent calls return once that is done.
func (r *Runner) Stop(reason string) {
	r.stopOnce.Do(func() {
		r.logger.Info("Stopping", "reason", reason)
		r.stopStarted()
	})
	<-r.stopped
}

// Wait returns nil once ctx ends, or the first failure of a started part,
// having stopped every step either way. If Stop is called meanwhile, it
// returns nil once that is done.
func (r *Runner) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		r.Stop(context.Cause(ctx).Error())
		return nil
	case err := <-r.failed:
		r.Stop(err.(*StepError).Step + " failed")
		return err
	case <-r.stopped:
		return nil
	}
}

func (r *Runner) stopStarted() {
	r.mu.Lock()
	close(r.stopping)
	r.mu.Unlock()
	for i := len(r.started) - 1; i >= 0; i-- {
		s := r.started[i]
		if s.Stop == nil {
			continue
		}
		begin := time.Now()
		s.Stop()
		r.logger.V(1).Info("Step stopped", "step", s.name, "took", time.Since(begin))
	}
	r.watchers.Wait()
	close(r.stopped)
}
