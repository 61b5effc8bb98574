package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/translate"
)

// DefaultPort is the kubelet's usual port.
const DefaultPort = 10250

// Config configures a Server.
type Config struct {
	// Listener is where the server listens, bound by the caller so that
	// virtual Nodes can advertise its port before it serves.
	Listener net.Listener
	// Tenant is the tenant's name, the marker on its host objects.
	Tenant string
	// HostNamespace holds the tenant's host pods.
	HostNamespace string
	// TenantPods reads tenant pods from the tenant API server.
	TenantPods corev1client.PodsGetter
	// HostConfig is knestd's host identity; requests are replayed with it.
	HostConfig *rest.Config
	// CACertFile and CAKeyFile are knestd's internal CA (never the
	// tenant's cluster CA, whose signer a tenant admin drives), which
	// issues the serving certificate and must have signed the client's.
	CACertFile, CAKeyFile string
	// ClientCertFile is the tenant API server's kubelet client certificate:
	// only a client with its key gets in.
	ClientCertFile string
	// Addresses are what the serving certificate is for: the address
	// virtual Nodes advertise as their InternalIP.
	Addresses []net.IP
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Listener == nil {
		errs = append(errs, errors.New("kubelet: a listener is required"))
	}
	if c.Tenant == "" || c.HostNamespace == "" {
		errs = append(errs, errors.New("kubelet: the tenant and its host namespace are required"))
	}
	if c.TenantPods == nil || c.HostConfig == nil {
		errs = append(errs, errors.New("kubelet: a tenant pods client and a host config are required"))
	}
	if c.CACertFile == "" || c.CAKeyFile == "" || c.ClientCertFile == "" {
		errs = append(errs, errors.New("kubelet: the internal CA and the API server's kubelet client certificate are required"))
	}
	if len(c.Addresses) == 0 {
		errs = append(errs, errors.New("kubelet: the serving addresses are required"))
	}
	return errors.Join(errs...)
}

// Server is the kubelet API of the tenant's virtual Nodes.
type Server struct {
	listener      net.Listener
	tenant        string
	hostNamespace string
	tenantPods    corev1client.PodsGetter
	hostPods      corev1client.PodsGetter
	hostREST      rest.Interface
	hostTransport http.RoundTripper
	upgrade       proxy.UpgradeRequestRoundTripper
	tls           *tls.Config
}

// New checks the configuration, issues the serving certificate and builds
// the host clients; Run serves.
func New(c Config) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsConf, err := serverTLS(c.CACertFile, c.CAKeyFile, c.ClientCertFile, c.Addresses, time.Now)
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	host := rest.CopyConfig(c.HostConfig)
	// Streams last as long as their users: no overall timeout.
	host.Timeout = 0
	hostClient, err := kubernetes.NewForConfig(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet: host client: %w", err)
	}
	hostTransport, err := rest.TransportFor(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet: host transport: %w", err)
	}
	upgrade, err := upgradeTransport(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet: host upgrade transport: %w", err)
	}
	return &Server{
		listener: c.Listener, tenant: c.Tenant, hostNamespace: c.HostNamespace,
		tenantPods: c.TenantPods, hostPods: hostClient.CoreV1(), hostREST: hostClient.CoreV1().RESTClient(),
		hostTransport: hostTransport, upgrade: upgrade, tls: tlsConf,
	}, nil
}

// upgradeTransport dials the host API server for upgraded requests and
// writes the host identity's credentials onto them.
func upgradeTransport(c *rest.Config) (proxy.UpgradeRequestRoundTripper, error) {
	tc, err := c.TransportConfig()
	if err != nil {
		return nil, err
	}
	tlsConf, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	conn := &http.Transport{TLSClientConfig: tlsConf, DialContext: dialer.DialContext}
	auth, err := transport.HTTPWrappersForConfig(tc, proxy.MirrorRequest)
	if err != nil {
		return nil, err
	}
	return proxy.NewUpgradeRequestRoundTripper(conn, auth), nil
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.listener.Addr().(*net.TCPAddr).Port }

// Run serves until ctx ends; streams in progress end with it.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	klog.FromContext(ctx).Info("Serving the kubelet API of the virtual nodes", "address", s.listener.Addr().String())
	err := srv.Serve(tls.NewListener(s.listener, s.tls))
	if ctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("kubelet API on %s stopped: %w", s.listener.Addr(), err)
}

// handler serves the kubelet API paths the API server calls, and nothing
// else.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	// Streams are upgraded from a POST (SPDY) or a GET (WebSocket); the
	// pod's UID is optional in the path.
	for _, method := range []string{"GET ", "POST "} {
		for _, kind := range []string{"exec", "attach"} {
			serve := func(w http.ResponseWriter, r *http.Request) { s.serveCommand(w, r, kind) }
			mux.HandleFunc(method+"/"+kind+"/{namespace}/{pod}/{container}", serve)
			mux.HandleFunc(method+"/"+kind+"/{namespace}/{pod}/{uid}/{container}", serve)
		}
		mux.HandleFunc(method+"/portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(method+"/portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	return mux
}

// target is a request's tenant pod and its host pod's name.
type target struct {
	pod  *corev1.Pod
	host string
}

// resolve finds the request's tenant pod and its host pod, checking the
// UID and the container the request names, or answers the request itself.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, container string) (target, bool) {
	ctx := r.Context()
	logger := klog.FromContext(ctx)
	namespace, name, uid := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid")
	notFound := func() (target, bool) {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return target{}, false
	}
	pod, err := s.tenantPods.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return notFound()
	case err != nil:
		logger.Error(err, "Failed to get a pod in tenant cluster", "pod", klog.KRef(namespace, name))
		http.Error(w, fmt.Sprintf("failed to get pod %s/%s", namespace, name), http.StatusInternalServerError)
		return target{}, false
	}
	if uid != "" && uid != string(pod.UID) {
		return notFound()
	}
	if container != "" && !hasContainer(pod, container) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %s/%s", container, namespace, name), http.StatusNotFound)
		return target{}, false
	}
	hostName := translate.HostName(s.tenant, namespace, name, translate.MaxSubdomainLength)
	host, err := s.hostPods.Pods(s.hostNamespace).Get(ctx, hostName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		http.Error(w, fmt.Sprintf("pod %s/%s is not running on a node", namespace, name), http.StatusNotFound)
		return target{}, false
	case err != nil:
		logger.Error(err, "Failed to get a pod in host cluster", "virtual", klog.KObj(pod), "host", klog.KRef(s.hostNamespace, hostName))
		http.Error(w, fmt.Sprintf("failed to reach pod %s/%s", namespace, name), http.StatusBadGateway)
		return target{}, false
	}
	if !isCopyOf(s.tenant, pod, host) {
		// Another object holds the name: never reach it.
		logger.V(1).Info("Refused a host pod that is not the tenant pod's copy", "virtual", klog.KObj(pod), "host", klog.KObj(host))
		http.Error(w, fmt.Sprintf("pod %s/%s is not running on a node", namespace, name), http.StatusNotFound)
		return target{}, false
	}
	return target{pod: pod, host: hostName}, true
}

// isCopyOf reports whether host is this tenant's copy of this very pod: the
// marker and every identity annotation, UID included, match.
func isCopyOf(tenant string, pod, host *corev1.Pod) bool {
	id := translate.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	return pod.UID != "" && translate.Owns(tenant, id, host) == translate.Ours &&
		host.Annotations[translate.AnnotationUID] == string(pod.UID)
}

func hasContainer(pod *corev1.Pod, name string) bool {
	named := func(c corev1.Container) bool { return c.Name == name }
	return slices.ContainsFunc(pod.Spec.Containers, named) || slices.ContainsFunc(pod.Spec.InitContainers, named) ||
		slices.ContainsFunc(pod.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == name })
}

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	opts, err := logOptions(r.URL.Query())
	if err != nil {
		http.Error(w, fmt.Sprintf("invalid log options: %v", err), http.StatusBadRequest)
		return
	}
	t, ok := s.resolve(w, r, container)
	if !ok {
		return
	}
	opts.Container = container
	// How the host reaches its kubelets is the host's business.
	opts.InsecureSkipTLSVerifyBackend = false
	stream, err := s.hostPods.Pods(s.hostNamespace).GetLogs(t.host, opts).Stream(r.Context())
	if err != nil {
		s.hostError(w, r, t, err)
		return
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "text/plain")
	_, err = io.Copy(&flushWriter{w: w}, stream)
	if err != nil && r.Context().Err() == nil {
		klog.FromContext(r.Context()).V(1).Info("Log stream ended", "virtual", klog.KObj(t.pod), "err", err)
	}
}

// logOptions reads the log options the API server sends a kubelet, which
// are PodLogOptions' query parameters; anything else is dropped.
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
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not an integer", key, v))
			return nil
		}
		return &n
	}
	opts.Follow, opts.Previous, opts.Timestamps = flag("follow"), flag("previous"), flag("timestamps")
	opts.SinceSeconds, opts.TailLines, opts.LimitBytes = number("sinceSeconds"), number("tailLines"), number("limitBytes")
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("sinceTime=%q is not an RFC 3339 time", v))
		}
		opts.SinceTime = &metav1.Time{Time: t}
	}
	if q.Has("stream") {
		stream := q.Get("stream")
		opts.Stream = &stream
	}
	return opts, errors.Join(errs...)
}

// hostError tells the tenant API server why the host refused a request, in
// the tenant's names.
func (s *Server) hostError(w http.ResponseWriter, r *http.Request, t target, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 {
		msg := strings.NewReplacer(t.host, t.pod.Name, s.hostNamespace, t.pod.Namespace).Replace(status.Status().Message)
		http.Error(w, msg, int(status.Status().Code))
		return
	}
	klog.FromContext(r.Context()).Error(err, "Failed to reach a pod in host cluster", "virtual", klog.KObj(t.pod), "host", klog.KRef(s.hostNamespace, t.host))
	http.Error(w, fmt.Sprintf("failed to reach pod %s/%s", t.pod.Namespace, t.pod.Name), http.StatusBadGateway)
}

func (s *Server) serveCommand(w http.ResponseWriter, r *http.Request, kind string) {
	container := r.PathValue("container")
	t, ok := s.resolve(w, r, container)
	if !ok {
		return
	}
	s.proxyStream(w, r, t, kind, commandQuery(r.URL.Query(), container, kind == "exec"))
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r, "")
	if !ok {
		return
	}
	s.proxyStream(w, r, t, "portforward", portForwardQuery(r.URL.Query()))
}

// commandQuery turns the kubelet's exec or attach query into the API's
// PodExecOptions or PodAttachOptions query.
func commandQuery(in url.Values, container string, exec bool) url.Values {
	out := url.Values{"container": {container}}
	if exec {
		out["command"] = slices.Clone(in["command"])
	}
	flags := []struct{ kubelet, api string }{
		{corev1.ExecStdinParam, "stdin"}, {corev1.ExecStdoutParam, "stdout"},
		{corev1.ExecStderrParam, "stderr"}, {corev1.ExecTTYParam, "tty"},
	}
	for _, f := range flags {
		if in.Get(f.kubelet) == "1" {
			out.Set(f.api, "true")
		}
	}
	return out
}

// portForwardQuery turns the kubelet's port-forward query (one "port" of
// comma-separated ports) into the API's PodPortForwardOptions query.
func portForwardQuery(in url.Values) url.Values {
	out := url.Values{}
	for _, list := range in[corev1.PortHeader] {
		for _, p := range strings.Split(list, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out.Add("ports", p)
			}
		}
	}
	return out
}

// streamHeaders are the request headers a stream needs end to end; no
// other header of the API server's request reaches the host.
var streamHeaders = []string{
	"Connection", "Upgrade", "X-Stream-Protocol-Version",
	"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
}

// proxyStream replays an upgrade request against the host pod's
// subresource with the host identity and copies the upgraded connection
// both ways until either side ends it.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, t target, subresource string, query url.Values) {
	location := s.hostREST.Post().Namespace(s.hostNamespace).Resource("pods").Name(t.host).SubResource(subresource).URL()
	location.RawQuery = query.Encode()
	h := proxy.NewUpgradeAwareHandler(location, s.hostTransport, false, true, responder{pod: t.pod})
	h.UpgradeTransport = s.upgrade
	h.UseLocationHost = true
	out := r.Clone(r.Context())
	out.Header = http.Header{}
	for _, key := range streamHeaders {
		if v := r.Header.Values(key); len(v) > 0 {
			out.Header[http.CanonicalHeaderKey(key)] = slices.Clone(v)
		}
	}
	h.ServeHTTP(w, out)
}

// responder answers a stream the host could not be reached for; the error
// names host objects, so it is logged, not returned.
type responder struct{ pod *corev1.Pod }

func (p responder) Error(w http.ResponseWriter, r *http.Request, err error) {
	if apierrors.IsBadRequest(err) {
		// The handler's own refusal of a request that is not an upgrade.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	klog.FromContext(r.Context()).Error(err, "Failed to stream to a pod in host cluster", "virtual", klog.KObj(p.pod))
	http.Error(w, fmt.Sprintf("failed to reach pod %s/%s", p.pod.Namespace, p.pod.Name), http.StatusBadGateway)
}

// flushWriter sends every write at once, so `logs -f` sees lines as they
// come.
type flushWriter struct{ w http.ResponseWriter }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}
