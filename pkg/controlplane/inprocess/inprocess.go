package inprocess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// maxBuffered bounds the response bytes a handler may write ahead of its
// reader before its writes wait: a watch whose client reads slowly holds
// its server back, as a full TCP window would, instead of growing knestd's
// heap without end.
const maxBuffered = 1 << 20

// remoteAddr is the RemoteAddr of an in-process request: no address, so no
// source-address rule can match it by accident.
const remoteAddr = "in-process"

var (
	// ErrNotServing is returned while no handler is served: before the API
	// server is built and after it stopped.
	ErrNotServing = errors.New("in-process: the API server is not serving")
	errUpgrade    = errors.New("in-process: connection upgrades (exec, attach, port-forward) need the network transport")
	errBodyClosed = errors.New("in-process: response body closed")
)

// userKey is the context key of an in-process request's identity. It is
// unexported: only Server.RoundTrip puts it in a request's context, and a
// request from the network never has it.
type userKey struct{}

// Server is a RoundTripper to an http.Handler in this process, with one
// identity for all its requests.
type Server struct {
	user    user.Info
	handler atomic.Pointer[http.Handler]
}

// New returns a Server whose requests authenticate as u (with
// system:authenticated added) wherever Authenticator is in the chain.
func New(u user.Info) *Server {
	groups := append([]string{}, u.GetGroups()...)
	if !slices.Contains(groups, user.AllAuthenticated) {
		groups = append(groups, user.AllAuthenticated)
	}
	return &Server{user: &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: groups, Extra: u.GetExtra()}}
}

// Serve makes h the handler requests go to; nil withdraws it.
func (s *Server) Serve(h http.Handler) {
	if h == nil {
		s.handler.Store(nil)
		return
	}
	s.handler.Store(&h)
}

// Authenticator authenticates the requests of every Server as the Server's
// user, and no other request. It goes in front of the API server's
// authenticators.
func Authenticator() authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		u, ok := req.Context().Value(userKey{}).(user.Info)
		if !ok {
			return nil, false, nil
		}
		return &authenticator.Response{User: u}, true, nil
	})
}

// RoundTrip serves req by calling the handler in a new goroutine, as the
// net/http server would, and returns when the response's header is final:
// the handler flushed, returned, or wrote more than maxBuffered bytes. The
// body streams from then on; closing it, or the end of req's context,
// ends the handler's request context.
func (s *Server) RoundTrip(req *http.Request) (*http.Response, error) {
	var h *http.Handler
	if s != nil {
		h = s.handler.Load()
	}
	if h == nil {
		closeBody(req)
		return nil, ErrNotServing
	}
	if isUpgrade(req) {
		closeBody(req)
		return nil, errUpgrade
	}
	if err := req.Context().Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	// A context of its own, not req's: values of the client's context do
	// not cross into the server, only its end does.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), userKey{}, s.user))
	stopAfter := context.AfterFunc(req.Context(), cancel)
	body := req.Body
	if body == nil {
		body = http.NoBody
	}
	header := req.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sreq := (&http.Request{
		Method:        req.Method,
		URL:           &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          body,
		ContentLength: req.ContentLength,
		Host:          host,
		RemoteAddr:    remoteAddr,
		RequestURI:    req.URL.RequestURI(),
	}).WithContext(ctx)

	w := newResponseWriter(cancel)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				// The net/http server recovers a handler's panic and drops
				// the connection; so does this transport, with the
				// response.
				if r != http.ErrAbortHandler {
					klog.ErrorS(fmt.Errorf("%v", r), "In-process request handler panicked", "method", req.Method, "path", req.URL.Path, "stack", string(debug.Stack()))
				}
				w.finish(fmt.Errorf("in-process: the handler aborted the response: %w", io.ErrUnexpectedEOF))
			} else {
				w.finish(nil)
			}
			stopAfter()
			cancel()
			_ = body.Close()
		}()
		(*h).ServeHTTP(w, sreq)
	}()

	select {
	case <-w.sent:
	case <-req.Context().Done():
		w.closeBody()
		return nil, req.Context().Err()
	}
	status, respHeader, length, err := w.response()
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        respHeader,
		ContentLength: length,
		Body:          &responseBody{w: w},
		Request:       req,
	}, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// isUpgrade is the API server's own test for an upgrade (what its exec,
// attach and port-forward handlers go by), or an Upgrade header alone.
func isUpgrade(req *http.Request) bool {
	return httpstream.IsUpgradeRequest(req) || req.Header.Get(httpstream.HeaderUpgrade) != ""
}

// responseWriter is the handler's side of one response: the header, then
// body bytes in a bounded buffer the client's reader drains.
type responseWriter struct {
	header http.Header
	cancel context.CancelFunc
	// sent is closed when the status and header are final for the client.
	sent     chan struct{}
	sendOnce sync.Once
	notify   chan bool

	mu          sync.Mutex
	cond        sync.Cond
	wroteHeader bool
	status      int
	sentHeader  http.Header
	buf         []byte
	done        bool  // the handler returned
	err         error // why the body ends early, if it does
	closed      bool  // the client closed the body
}

func newResponseWriter(cancel context.CancelFunc) *responseWriter {
	w := &responseWriter{header: http.Header{}, cancel: cancel, sent: make(chan struct{}), notify: make(chan bool, 1)}
	w.cond.L = &w.mu
	return w
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *responseWriter) writeHeaderLocked(code int) {
	if w.wroteHeader || (code >= 100 && code < 200) {
		// Informational responses are not relayed; a second final status
		// is ignored, as net/http does.
		return
	}
	w.wroteHeader = true
	w.status = code
	w.sentHeader = w.header.Clone()
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	for len(w.buf) >= maxBuffered && !w.closed {
		w.send()
		w.cond.Wait()
	}
	if w.closed {
		return 0, errBodyClosed
	}
	w.buf = append(w.buf, p...)
	w.cond.Broadcast()
	return len(p), nil
}

// Flush makes the header final and the bytes written so far readable
// (they already are: Write does not hold them back).
func (w *responseWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	w.send()
}

// CloseNotify is for handlers that still ask; the API server's watch the
// request's context instead.
func (w *responseWriter) CloseNotify() <-chan bool { return w.notify }

// send makes the header final for the client; w.mu is held.
func (w *responseWriter) send() {
	w.sendOnce.Do(func() { close(w.sent) })
}

// finish records the handler's return; err, if set, ends the body early.
func (w *responseWriter) finish(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.writeHeaderLocked(http.StatusOK)
	}
	// A handler that failed before it wrote a status gives the client the
	// error instead of a response.
	w.done, w.err = true, err
	w.cond.Broadcast()
	w.send()
}

// response is what the client gets once the header is final: the status
// and header, the body's length if the handler has returned (-1 if not),
// or the error of a handler that failed before it wrote a status.
func (w *responseWriter) response() (int, http.Header, int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil && !w.wroteHeader {
		return 0, nil, 0, w.err
	}
	length := int64(-1)
	if w.done && w.err == nil {
		length = int64(len(w.buf))
	}
	return w.status, w.sentHeader, length, nil
}

// closeBody is the client's end of the response: the handler's request
// context ends and its writes fail.
func (w *responseWriter) closeBody() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.buf = nil
		select {
		case w.notify <- true:
		default:
		}
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	w.cancel()
}

type responseBody struct{ w *responseWriter }

func (b *responseBody) Read(p []byte) (int, error) {
	w := b.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) == 0 && !w.done && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		return 0, errBodyClosed
	}
	if len(w.buf) > 0 {
		n := copy(p, w.buf)
		w.buf = w.buf[n:]
		if len(w.buf) == 0 {
			w.buf = nil
		}
		// A writer may wait for room.
		w.cond.Broadcast()
		return n, nil
	}
	if w.err != nil {
		return 0, w.err
	}
	return 0, io.EOF
}

func (b *responseBody) Close() error {
	b.w.closeBody()
	return nil
}
