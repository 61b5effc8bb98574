package knestd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

func TestSleepEndpoint(t *testing.T) {
	t.Parallel()
	admin := &user.DefaultInfo{Name: "kubernetes-admin", Groups: []string{user.SystemPrivilegedGroup}}
	tests := []struct {
		name       string
		supervised bool
		method     string
		user       user.Info
		wantCode   int
		wantAsked  bool
		wantBody   string
	}{
		{name: "an admin's POST behind the supervisor puts the tenant to sleep", supervised: true, method: http.MethodPost, user: admin, wantCode: http.StatusAccepted, wantAsked: true, wantBody: "going to sleep"},
		{name: "without a supervisor the tenant cannot sleep, and says why", method: http.MethodPost, user: admin, wantCode: http.StatusConflict, wantBody: "without knest-supervisor"},
		{name: "a GET does not sleep", supervised: true, method: http.MethodGet, user: admin, wantCode: http.StatusMethodNotAllowed},
		{name: "a request without a user does not sleep", supervised: true, method: http.MethodPost, wantCode: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSleeper(0, tt.supervised)
			r := httptest.NewRequest(tt.method, SleepPath, nil)
			if tt.user != nil {
				r = r.WithContext(request.WithUser(r.Context(), tt.user))
			}
			w := httptest.NewRecorder()
			s.serve(w, r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
			asked := len(s.asked) == 1
			if asked != tt.wantAsked {
				t.Errorf("sleep asked: %v, want %v", asked, tt.wantAsked)
			}
		})
	}
}

func TestSleepStepSleepsWhenIdleOrAsked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration
		ask   bool
	}{
		{name: "after the idle time", after: time.Second},
		{name: "when asked, with no idle time set", ask: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSleeper(tc.after, true)
			podsStopped, slept := make(chan struct{}), make(chan struct{})
			start := s.start(func(context.Context) error { close(podsStopped); return nil }, func() { close(slept) })
			running, err := start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer running.Stop()
			if tc.ask {
				s.asked <- "test"
			}
			select {
			case <-slept:
			case <-time.After(30 * time.Second):
				t.Fatal("did not sleep within 30s")
			}
			select {
			case <-podsStopped:
			default:
				t.Error("slept before stopping the host pods")
			}
		})
	}
}

func TestSleepStepStaysAwakeWhileAUserRequestIsInFlight(t *testing.T) {
	t.Parallel()
	s := newSleeper(time.Second, true)
	slept := make(chan struct{})
	running, err := s.start(nil, func() { close(slept) })(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	end := s.tracker.Begin() // a user's watch
	select {
	case <-slept:
		t.Fatal("slept while a user request was in flight")
	case <-time.After(3 * time.Second):
	}
	end()
	select {
	case <-slept:
	case <-time.After(30 * time.Second):
		t.Fatal("did not sleep within 30s of the last request's end")
	}
}

func TestSleepStepStaysAwakeWhenTheHostPodsCannotBeStopped(t *testing.T) {
	t.Parallel()
	s := newSleeper(0, true)
	slept := make(chan struct{})
	tried := make(chan struct{}, 1)
	running, err := s.start(func(context.Context) error {
		select {
		case tried <- struct{}{}:
		default:
		}
		return context.DeadlineExceeded
	}, func() { close(slept) })(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	s.asked <- "test"
	<-tried
	select {
	case <-slept:
		t.Fatal("slept although the host pods could not be stopped (their DNS server would go)")
	case <-time.After(2 * time.Second):
	}
}
