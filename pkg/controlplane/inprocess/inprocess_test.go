package inprocess

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiserver/pkg/authentication/user"
)

var knestd = &user.DefaultInfo{Name: "system:knest:knestd", Groups: []string{"system:masters"}}

// whoAmI answers with the name and groups Authenticator finds, or 401.
var whoAmI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	resp, ok, err := Authenticator().AuthenticateRequest(r)
	if err != nil || !ok {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	io.WriteString(w, resp.User.GetName()+" "+strings.Join(resp.User.GetGroups(), ","))
})

func serving(h http.Handler) *Server {
	s := New(knestd)
	s.Serve(h)
	return s
}

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:6443"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rt.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestAnInProcessRequestAuthenticatesAsTheServersUser(t *testing.T) {
	t.Parallel()
	resp, err := get(t, serving(whoAmI), t.Context(), "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("system:knest:knestd system:masters,system:authenticated", readAll(t, resp)); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

// The attack: a network client that knows how knestd's in-process clients
// are recognized sends every header and address it can to be taken for
// one. The identity is a context value the network cannot set.
func TestANetworkRequestIsNeverTakenForAnInProcessOne(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(whoAmI)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/whoami", nil)
	for _, h := range []string{"Impersonate-User", "X-Remote-User", "X-Forwarded-For", "User"} {
		req.Header.Set(h, "system:knest:knestd")
	}
	req.Header.Set("Authorization", "Bearer in-process")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a network request got %d %q, want 401", resp.StatusCode, body)
	}
}

func TestTheClientsContextValuesDoNotReachTheHandler(t *testing.T) {
	t.Parallel()
	type key struct{}
	var seen any
	s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Context().Value(key{}) }))
	resp, err := get(t, s, context.WithValue(t.Context(), key{}, "client"), "/")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if seen != nil {
		t.Errorf("the handler saw the client's context value %v", seen)
	}
}

func TestACompleteResponseHasItsStatusHeaderAndLength(t *testing.T) {
	t.Parallel()
	s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		// Changed after the status: not what the client gets.
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(r.Method + " " + r.URL.RequestURI() + " " + string(body)))
	}))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://127.0.0.1:6443/api/v1/namespaces?fieldManager=x", bytes.NewReader([]byte("ns")))
	resp, err := s.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /api/v1/namespaces?fieldManager=x ns"
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "text/plain" || resp.ContentLength != int64(len(want)) {
		t.Errorf("got %d, Content-Type %q, length %d; want 201, text/plain, %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, len(want))
	}
	if diff := cmp.Diff(want, readAll(t, resp)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// A watch: the response arrives at the first flush and each event is
// readable while the handler still runs; closing the body ends the
// handler's request context.
func TestAWatchStreamsUntilTheClientClosesIt(t *testing.T) {
	t.Parallel()
	next := make(chan string)
	handlerDone := make(chan error, 1)
	s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				handlerDone <- r.Context().Err()
				return
			case event := <-next:
				io.WriteString(w, event)
				w.(http.Flusher).Flush()
			}
		}
	}))
	resp, err := get(t, s, t.Context(), "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 {
		t.Errorf("a stream has length %d, want -1 (unknown)", resp.ContentLength)
	}
	buf := make([]byte, 16)
	for _, event := range []string{"ADDED", "MODIFIED"} {
		next <- event
		n, err := resp.Body.Read(buf)
		if err != nil || string(buf[:n]) != event {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, event)
		}
	}
	resp.Body.Close()
	select {
	case err := <-handlerDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context did not end when the client closed the body")
	}
}

func TestTheEndOfTheClientsContextEndsTheHandlers(t *testing.T) {
	t.Parallel()
	started, handlerDone := make(chan struct{}), make(chan struct{})
	s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(handlerDone)
	}))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := get(t, s, ctx, "/slow")
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip returned %v, want context.Canceled", err)
	}
	select {
	case <-handlerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context did not end with the client's")
	}
}

// A client that does not read holds the handler back once maxBuffered
// bytes wait, instead of growing the buffer.
func TestAHandlerWaitsForASlowReader(t *testing.T) {
	t.Parallel()
	const total = 3 * maxBuffered
	handlerDone := make(chan struct{})
	s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for written := 0; written < total; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	resp, err := get(t, s, t.Context(), "/big")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-handlerDone:
		t.Fatal("the handler wrote everything with nobody reading")
	case <-time.After(200 * time.Millisecond):
	}
	if n := len(readAll(t, resp)); n != total {
		t.Errorf("read %d bytes, want %d", n, total)
	}
	<-handlerDone
}

func TestAPanickingHandlerFailsItsRequestOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		afterBody bool
	}{
		{name: "before the status: RoundTrip fails"},
		{name: "after part of the body: the body fails", afterBody: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := serving(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.afterBody {
					io.WriteString(w, "partial")
					w.(http.Flusher).Flush()
				}
				// What upstream's timeout filter does to drop a response.
				panic(http.ErrAbortHandler)
			}))
			resp, err := get(t, s, t.Context(), "/")
			if !tc.afterBody {
				if err == nil {
					t.Fatalf("RoundTrip succeeded with %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if string(data) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read %q, %v; want \"partial\", unexpected EOF", data, err)
			}
		})
	}
}

func TestNoHandlerNoRequest(t *testing.T) {
	t.Parallel()
	var none *Server
	if _, err := get(t, none, t.Context(), "/"); !errors.Is(err, ErrNotServing) {
		t.Errorf("no Server: %v, want ErrNotServing", err)
	}
	s := New(knestd)
	if _, err := get(t, s, t.Context(), "/"); !errors.Is(err, ErrNotServing) {
		t.Errorf("before Serve: %v, want ErrNotServing", err)
	}
	s.Serve(whoAmI)
	s.Serve(nil)
	if _, err := get(t, s, t.Context(), "/"); !errors.Is(err, ErrNotServing) {
		t.Errorf("after Serve(nil): %v, want ErrNotServing", err)
	}
}

func TestConnectionUpgradesAreRefused(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://127.0.0.1:6443/api/v1/namespaces/a/pods/b/exec", nil)
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	if _, err := serving(whoAmI).RoundTrip(req); !errors.Is(err, errUpgrade) {
		t.Errorf("an upgrade got %v, want the refusal", err)
	}
}
