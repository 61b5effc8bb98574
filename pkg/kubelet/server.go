package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
)

// DefaultPort is the kubelet's usual port.
const DefaultPort = 10250

// Backend does what a node's kubelet does for the calls the Server takes:
// the Server has parsed the request, found the pod and checked that it has
// the container, and the backend does the rest.
//
// An error a backend returns before anything is written is the answer: an
// API status error (apierrors.StatusError) with its code and message, which
// the backend words for the API server's caller; any other error is logged
// and answered 500 without its text, so it may name what the caller must
// not see.
type Backend interface {
	// Logs writes the log of opts.Container to out until it ends, or, with
	// opts.Follow, until ctx ends.
	Logs(ctx context.Context, pod *corev1.Pod, opts *corev1.PodLogOptions, out io.Writer) error
	// Exec, Attach and PortForward return the handler that serves the
	// stream: it upgrades the connection (SPDY or WebSocket, as the request
	// asks) and answers what goes wrong after that itself.
	Exec(ctx context.Context, pod *corev1.Pod, opts *corev1.PodExecOptions) (http.Handler, error)
	Attach(ctx context.Context, pod *corev1.Pod, opts *corev1.PodAttachOptions) (http.Handler, error)
	// PortForward's opts hold the ports of a WebSocket request; over SPDY
	// each stream names its port.
	PortForward(ctx context.Context, pod *corev1.Pod, opts *corev1.PodPortForwardOptions) (http.Handler, error)
}

// Config configures a Server.
type Config struct {
	// Listener is where the server listens, bound by the caller so that
	// nodes can advertise its port before it serves.
	Listener net.Listener
	// Pods reads the pods the calls name, from the API server that calls.
	Pods corev1client.PodsGetter
	// Backend serves the calls.
	Backend Backend
	// CACertFile and CAKeyFile are the control plane's internal CA (never
	// the cluster CA, whose signer a cluster admin drives), which issues
	// the serving certificate and must have signed the client's.
	CACertFile, CAKeyFile string
	// ClientCertFile is the API server's kubelet client certificate: only a
	// client with its key gets in.
	ClientCertFile string
	// Addresses are what the serving certificate is for: the address the
	// nodes advertise as their InternalIP.
	Addresses []net.IP
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Listener == nil {
		errs = append(errs, errors.New("kubelet: a listener is required"))
	}
	if c.Pods == nil || c.Backend == nil {
		errs = append(errs, errors.New("kubelet: a pods client and a backend are required"))
	}
	if c.CACertFile == "" || c.CAKeyFile == "" || c.ClientCertFile == "" {
		errs = append(errs, errors.New("kubelet: the internal CA and the API server's kubelet client certificate are required"))
	}
	if len(c.Addresses) == 0 {
		errs = append(errs, errors.New("kubelet: the serving addresses are required"))
	}
	return errors.Join(errs...)
}

// Server is a node's kubelet API: the calls the API server makes for
// `kubectl logs`, `exec`, `attach` and `port-forward`, and nothing else.
type Server struct {
	listener net.Listener
	pods     corev1client.PodsGetter
	backend  Backend
	params   runtime.ParameterCodec
	tls      *tls.Config
}

// New checks the configuration and issues the serving certificate; Run
// serves.
func New(c Config) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsConf, err := serverTLS(c.CACertFile, c.CAKeyFile, c.ClientCertFile, c.Addresses, time.Now)
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	params, err := newParameterCodec()
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	return &Server{listener: c.Listener, pods: c.Pods, backend: c.Backend, params: params, tls: tlsConf}, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.listener.Addr().(*net.TCPAddr).Port }

// Run serves until ctx ends; streams in progress end with it.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       connContext,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	klog.FromContext(ctx).Info("Serving the kubelet API", "address", s.listener.Addr().String())
	err := srv.Serve(tls.NewListener(watchingListener{s.listener}, s.tls))
	if ctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("kubelet API on %s stopped: %w", s.listener.Addr(), err)
}

// handler serves the kubelet API paths the API server calls, and nothing
// else: no /pods, /runningpods, /run, /stats, /configz or /debug, which
// would describe or reach more than one pod.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	// Streams are upgraded from a POST (SPDY) or a GET (WebSocket); the
	// pod's UID is optional in the path.
	for _, method := range []string{"GET ", "POST "} {
		mux.HandleFunc(method+"/exec/{namespace}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(method+"/exec/{namespace}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(method+"/attach/{namespace}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(method+"/attach/{namespace}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(method+"/portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(method+"/portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	return mux
}

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	opts, err := s.logOptions(r.URL.Query())
	if err != nil {
		http.Error(w, fmt.Sprintf("invalid log options: %v", err), http.StatusBadRequest)
		return
	}
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	opts.Container = container
	w.Header().Set("Content-Type", "text/plain")
	out := &flushWriter{w: w}
	err = s.backend.Logs(r.Context(), pod, opts, out)
	switch {
	case err == nil:
	case !out.wrote:
		answer(w, r, pod, err)
	case r.Context().Err() == nil:
		klog.FromContext(r.Context()).V(1).Info("Log stream ended", "pod", klog.KObj(pod), "err", err)
	}
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	streams, err := streamOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	opts := &corev1.PodExecOptions{
		Container: container, Command: slices.Clone(r.URL.Query()[corev1.ExecCommandParam]),
		Stdin: streams.Stdin, Stdout: streams.Stdout, Stderr: streams.Stderr, TTY: streams.TTY,
	}
	h, err := s.backend.Exec(r.Context(), pod, opts)
	serveStream(w, r, pod, h, err)
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	streams, err := streamOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	opts := &corev1.PodAttachOptions{
		Container: container, Stdin: streams.Stdin, Stdout: streams.Stdout, Stderr: streams.Stderr, TTY: streams.TTY,
	}
	h, err := s.backend.Attach(r.Context(), pod, opts)
	serveStream(w, r, pod, h, err)
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portForwardOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ok := s.pod(w, r, "")
	if !ok {
		return
	}
	h, err := s.backend.PortForward(r.Context(), pod, opts)
	serveStream(w, r, pod, h, err)
}

// serveStream hands the request to a backend's stream handler, or answers
// the backend's refusal.
func serveStream(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, h http.Handler, err error) {
	if err != nil {
		answer(w, r, pod, err)
		return
	}
	h.ServeHTTP(w, r)
}

// pod returns the request's pod after checking the UID and the container
// the request names, or answers the request itself.
func (s *Server) pod(w http.ResponseWriter, r *http.Request, container string) (*corev1.Pod, bool) {
	ctx := r.Context()
	namespace, name, uid := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid")
	pod, err := s.pods.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return nil, false
	case err != nil:
		klog.FromContext(ctx).Error(err, "Failed to get a pod", "pod", klog.KRef(namespace, name))
		http.Error(w, fmt.Sprintf("failed to get pod %s/%s", namespace, name), http.StatusInternalServerError)
		return nil, false
	}
	if uid != "" && uid != string(pod.UID) {
		// As for a pod that is gone: the caller asked for an earlier one.
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return nil, false
	}
	if container != "" && !hasContainer(pod, container) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %s/%s", container, namespace, name), http.StatusNotFound)
		return nil, false
	}
	return pod, true
}

func hasContainer(pod *corev1.Pod, name string) bool {
	named := func(c corev1.Container) bool { return c.Name == name }
	return slices.ContainsFunc(pod.Spec.Containers, named) || slices.ContainsFunc(pod.Spec.InitContainers, named) ||
		slices.ContainsFunc(pod.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == name })
}

// answer tells the caller why a backend refused a call; see Backend.
func answer(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 {
		http.Error(w, status.Status().Message, int(status.Status().Code))
		return
	}
	klog.FromContext(r.Context()).Error(err, "Failed to serve a kubelet API call", "pod", klog.KObj(pod), "path", r.URL.Path)
	http.Error(w, fmt.Sprintf("failed to reach pod %s/%s", pod.Namespace, pod.Name), http.StatusInternalServerError)
}

// flushWriter sends every write at once, so `logs -f` sees lines as they
// come, and remembers whether anything went out.
type flushWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.wrote = f.wrote || n > 0
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}
