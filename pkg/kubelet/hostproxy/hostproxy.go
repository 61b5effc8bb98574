package hostproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/translate"
)

// Config configures a Backend.
type Config struct {
	// Tenant is the tenant's name, the marker on its host objects.
	Tenant string
	// HostNamespace holds the tenant's host pods.
	HostNamespace string
	// HostConfig is knestd's host identity; requests are replayed with it.
	HostConfig *rest.Config
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Tenant == "" || c.HostNamespace == "" {
		errs = append(errs, errors.New("kubelet host proxy: the tenant and its host namespace are required"))
	}
	if c.HostConfig == nil {
		errs = append(errs, errors.New("kubelet host proxy: a host config is required"))
	}
	return errors.Join(errs...)
}

// Backend serves the kubelet API of the tenant's virtual Nodes from the
// host pods.
type Backend struct {
	tenant        string
	hostNamespace string
	hostPods      corev1client.PodsGetter
	hostREST      rest.Interface
	hostTransport http.RoundTripper
	upgrade       proxy.UpgradeRequestRoundTripper
}

var _ kubelet.Backend = (*Backend)(nil)

// New checks the configuration and builds the host clients.
func New(c Config) (*Backend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	host := rest.CopyConfig(c.HostConfig)
	// Streams last as long as their users: no overall timeout.
	host.Timeout = 0
	hostClient, err := kubernetes.NewForConfig(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet host proxy: host client: %w", err)
	}
	hostTransport, err := rest.TransportFor(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet host proxy: host transport: %w", err)
	}
	upgrade, err := upgradeTransport(host)
	if err != nil {
		return nil, fmt.Errorf("kubelet host proxy: host upgrade transport: %w", err)
	}
	return &Backend{
		tenant: c.Tenant, hostNamespace: c.HostNamespace,
		hostPods: hostClient.CoreV1(), hostREST: hostClient.CoreV1().RESTClient(),
		hostTransport: hostTransport, upgrade: upgrade,
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

// hostPod returns the name of the tenant pod's host pod, once it has made
// sure that the host pod of that name is this tenant's copy of this very
// pod.
func (b *Backend) hostPod(ctx context.Context, pod *corev1.Pod) (string, error) {
	name := translate.HostName(b.tenant, pod.Namespace, pod.Name, translate.MaxSubdomainLength)
	notRunning := apierrors.NewNotFound(corev1.Resource("pods"), pod.Namespace+"/"+pod.Name)
	notRunning.ErrStatus.Message = fmt.Sprintf("pod %s/%s is not running on a node", pod.Namespace, pod.Name)
	host, err := b.hostPods.Pods(b.hostNamespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", notRunning
	case err != nil:
		return "", fmt.Errorf("failed to get Pod %s/%s in host cluster: %w", b.hostNamespace, name, err)
	}
	if !isCopyOf(b.tenant, pod, host) {
		// Another object holds the name: never reach it.
		klog.FromContext(ctx).V(1).Info("Refused a host pod that is not the tenant pod's copy", "virtual", klog.KObj(pod), "host", klog.KObj(host))
		return "", notRunning
	}
	return name, nil
}

// isCopyOf reports whether host is this tenant's copy of this very pod: the
// marker and every identity annotation, UID included, match.
func isCopyOf(tenant string, pod, host *corev1.Pod) bool {
	id := translate.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	return pod.UID != "" && translate.Owns(tenant, id, host) == translate.Ours &&
		host.Annotations[translate.AnnotationUID] == string(pod.UID)
}

// Logs copies the host pod's log out.
func (b *Backend) Logs(ctx context.Context, pod *corev1.Pod, opts *corev1.PodLogOptions, out io.Writer) error {
	host, err := b.hostPod(ctx, pod)
	if err != nil {
		return err
	}
	stream, err := b.hostPods.Pods(b.hostNamespace).GetLogs(host, opts).Stream(ctx)
	if err != nil {
		return b.hostError(pod, host, err)
	}
	defer stream.Close()
	_, err = io.Copy(out, stream)
	return err
}

// hostError tells the tenant why the host refused a request, in the
// tenant's names.
func (b *Backend) hostError(pod *corev1.Pod, host string, err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 {
		msg := strings.NewReplacer(host, pod.Name, b.hostNamespace, pod.Namespace).Replace(status.Status().Message)
		return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: status.Status().Code, Message: msg}}
	}
	return fmt.Errorf("failed to reach Pod %s/%s in host cluster: %w", b.hostNamespace, host, err)
}

// Exec replays the exec on the host pod.
func (b *Backend) Exec(ctx context.Context, pod *corev1.Pod, opts *corev1.PodExecOptions) (http.Handler, error) {
	return b.stream(ctx, pod, "exec", opts)
}

// Attach replays the attach on the host pod.
func (b *Backend) Attach(ctx context.Context, pod *corev1.Pod, opts *corev1.PodAttachOptions) (http.Handler, error) {
	return b.stream(ctx, pod, "attach", opts)
}

// PortForward replays the port-forward on the host pod.
func (b *Backend) PortForward(ctx context.Context, pod *corev1.Pod, opts *corev1.PodPortForwardOptions) (http.Handler, error) {
	return b.stream(ctx, pod, "portforward", opts)
}

func (b *Backend) stream(ctx context.Context, pod *corev1.Pod, subresource string, opts runtime.Object) (http.Handler, error) {
	host, err := b.hostPod(ctx, pod)
	if err != nil {
		return nil, err
	}
	query, err := hostQuery(opts)
	if err != nil {
		return nil, err
	}
	location := b.hostREST.Post().Namespace(b.hostNamespace).Resource("pods").Name(host).SubResource(subresource).URL()
	location.RawQuery = query.Encode()
	h := proxy.NewUpgradeAwareHandler(location, b.hostTransport, false, true, responder{pod: pod})
	h.UpgradeTransport = b.upgrade
	h.UseLocationHost = true
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.Header = http.Header{}
		for _, key := range streamHeaders {
			if v := r.Header.Values(key); len(v) > 0 {
				out.Header[http.CanonicalHeaderKey(key)] = slices.Clone(v)
			}
		}
		h.ServeHTTP(w, out)
	}), nil
}

// hostQuery is the host API's query for a stream's options.
func hostQuery(opts runtime.Object) (url.Values, error) {
	return scheme.ParameterCodec.EncodeParameters(opts, corev1.SchemeGroupVersion)
}

// streamHeaders are the request headers a stream needs end to end; no
// other header of the API server's request reaches the host.
var streamHeaders = []string{
	"Connection", "Upgrade", "X-Stream-Protocol-Version",
	"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
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
