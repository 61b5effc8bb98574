package kubeletserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	kwokserver "sigs.k8s.io/kwok/pkg/kwok/server"
)

const (
	// idleTimeout ends a stream nothing went through for this long, as the
	// kubelet's default --streaming-connection-idle-timeout does.
	idleTimeout = 4 * time.Hour
	// sweepInterval is how often the files of deleted pods are removed.
	sweepInterval = time.Minute
)

// Config configures the server.
type Config struct {
	// Listener is where the server listens, bound by the caller so that
	// nodes can advertise its port before it serves.
	Listener net.Listener
	// Dir is the data directory; the pods' files live in Dir/pods.
	Dir string
	// CACertFile and CAKeyFile are the internal CA, which issues the serving
	// certificate and must have signed the client's.
	CACertFile, CAKeyFile string
	// ClientCertFile is the API server's kubelet client certificate: only
	// clients with a certificate of the same common name are served.
	ClientCertFile string
	// Pods reads the pods the requests name.
	Pods corev1client.PodsGetter
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Listener == nil {
		errs = append(errs, errors.New("kubelet server: a listener is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("kubelet server: a data directory is required"))
	}
	if c.CACertFile == "" || c.CAKeyFile == "" || c.ClientCertFile == "" {
		errs = append(errs, errors.New("kubelet server: the CA and the API server's client certificate are required"))
	}
	if c.Pods == nil {
		errs = append(errs, errors.New("kubelet server: a pods client is required"))
	}
	return errors.Join(errs...)
}

// Server serves logs, exec, attach and port-forward for simulated pods.
type Server struct {
	listener net.Listener
	pods     corev1client.PodsGetter
	files    *podFiles
	tls      *tls.Config
}

// New checks the configuration and issues the serving certificate; Run
// serves.
func New(c Config) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsConf, err := tlsConfig(c.CACertFile, c.CAKeyFile, c.ClientCertFile, time.Now())
	if err != nil {
		return nil, fmt.Errorf("kubelet server: %w", err)
	}
	return &Server{
		listener: c.Listener,
		pods:     c.Pods,
		files:    &podFiles{root: filepath.Join(c.Dir, "pods")},
		tls:      tlsConf,
	}, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.listener.Addr().(*net.TCPAddr).Port }

// Run serves until ctx ends; streams in progress end with it, and their
// commands are killed.
func (s *Server) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
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
	go func() {
		ticker := time.NewTicker(sweepInterval)
		defer ticker.Stop()
		for {
			if err := s.files.sweep(ctx, s.pods); err != nil && ctx.Err() == nil {
				logger.Error(err, "Failed to remove the files of deleted pods")
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	err := srv.Serve(tls.NewListener(watchingListener{s.listener}, s.tls))
	if ctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// handler serves the kubelet API paths the API server calls.
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
	opts, err := logOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	if opts.Previous {
		// What the kubelet answers for a container that never restarted.
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name), http.StatusBadRequest)
		return
	}
	kwok, ok := s.kwokFor(w, pod, container)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	out := &flushWriter{w: w}
	err = kwok.GetContainerLogs(r.Context(), pod.Name, pod.Namespace, container, opts, out, out)
	if err != nil && !out.wrote && r.Context().Err() == nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	_, workDir, err := s.files.prepare(pod, container, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, localExec{workDir: workDir, podName: pod.Name}, pod.Name, string(pod.UID), container,
		r.URL.Query()[corev1.ExecCommandParam], opts, idleTimeout, remotecommand.DefaultStreamCreationTimeout,
		remotecommand.SupportedStreamingProtocols)
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	pod, ok := s.pod(w, r, container)
	if !ok {
		return
	}
	kwok, ok := s.kwokFor(w, pod, container)
	if !ok {
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// KWOK's runtime methods take the pod as "<name>/<namespace>".
	remotecommand.ServeAttach(w, r, kwok, pod.Name+"/"+pod.Namespace, string(pod.UID), container, opts,
		idleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	pod, ok := s.pod(w, r, "")
	if !ok {
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, echo{}, pod.Name, string(pod.UID), opts,
		idleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// pod returns the request's pod after checking the UID and the container the
// request names, or answers the request itself.
func (s *Server) pod(w http.ResponseWriter, r *http.Request, container string) (*corev1.Pod, bool) {
	namespace, name := r.PathValue("namespace"), r.PathValue("pod")
	pod, err := s.pods.Pods(namespace).Get(r.Context(), name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return nil, false
	case err != nil:
		http.Error(w, fmt.Sprintf("failed to get pod %s/%s: %v", namespace, name, err), http.StatusInternalServerError)
		return nil, false
	}
	if uid := r.PathValue("uid"); uid != "" && uid != string(pod.UID) {
		http.Error(w, fmt.Sprintf("pod %s/%s with UID %s not found", namespace, name, uid), http.StatusNotFound)
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

// kwokFor prepares the container's files and returns a KWOK server that
// knows this one container: in-memory ClusterLogs and ClusterAttach point
// its logs and attach at the container's log file. KWOK's configurations
// are static and name one file for all pods they select, so each request
// gets its own.
func (s *Server) kwokFor(w http.ResponseWriter, pod *corev1.Pod, container string) (*kwokserver.Server, bool) {
	logFile, _, err := s.files.prepare(pod, container, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	selector := &internalversion.ObjectSelector{MatchNamespaces: []string{pod.Namespace}, MatchNames: []string{pod.Name}}
	meta := metav1.ObjectMeta{Name: "knest-devcluster"}
	kwok, err := kwokserver.NewServer(kwokserver.Config{
		ClusterLogs: []*internalversion.ClusterLogs{{ObjectMeta: meta, Spec: internalversion.ClusterLogsSpec{
			Selector: selector, Logs: []internalversion.Log{{Containers: []string{container}, LogsFile: logFile}},
		}}},
		ClusterAttaches: []*internalversion.ClusterAttach{{ObjectMeta: meta, Spec: internalversion.ClusterAttachSpec{
			Selector: selector, Attaches: []internalversion.AttachConfig{{Containers: []string{container}, LogsFile: logFile}},
		}}},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	return kwok, true
}

// logOptions reads the kubelet's containerLogs query: what the API server
// sends for a PodLogOptions, and the older "tail".
func logOptions(q url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{}
	var errs []error
	flag := func(key string) bool {
		v := q.Get(key)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a boolean", key, v))
		}
		return b
	}
	number := func(key string) *int64 {
		v := q.Get(key)
		if v == "" || (key == "tail" && v == "all") {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a non-negative integer", key, v))
			return nil
		}
		return &n
	}
	opts.Follow, opts.Previous, opts.Timestamps = flag("follow"), flag("previous"), flag("timestamps")
	opts.SinceSeconds, opts.LimitBytes = number("sinceSeconds"), number("limitBytes")
	opts.TailLines = number("tailLines")
	if q.Has("tail") {
		opts.TailLines = number("tail")
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("sinceTime=%q is not an RFC 3339 time", v))
		}
		opts.SinceTime = &metav1.Time{Time: t}
	}
	return opts, errors.Join(errs...)
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

// echo is port-forward's target: every port sends back what it receives.
type echo struct{}

func (echo) PortForward(_ context.Context, _, _ string, _ int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	_, err := io.Copy(stream, stream)
	return err
}

// watchingListener wraps every connection in a watchedConn.
type watchingListener struct{ net.Listener }

func (l watchingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

// watchedConn ends its requests' context when the client goes away. The HTTP
// server does that itself only until a handler takes the connection over,
// as exec, attach and port-forward do; without it, an attach or a command
// would outlive its client.
type watchedConn struct {
	net.Conn
	cancel context.CancelFunc
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var netErr net.Error
	// The HTTP server interrupts its own reads with deadlines; those are
	// not the client leaving.
	if err != nil && c.cancel != nil && !(errors.As(err, &netErr) && netErr.Timeout()) {
		c.cancel()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	return c.Conn.Close()
}

// connContext gives each connection a context its watchedConn ends. It runs
// before the connection's first read.
func connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ctx
	}
	wc, ok := tc.NetConn().(*watchedConn)
	if !ok {
		return ctx
	}
	ctx, wc.cancel = context.WithCancel(ctx)
	return ctx
}
