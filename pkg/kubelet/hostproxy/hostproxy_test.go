package hostproxy

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/kubelet/kubelettest"
	"github.com/knest-dev/knest/pkg/translate"
)

const (
	tenant        = "acme"
	hostNamespace = "knest-acme"
)

func TestBackendChecks(t *testing.T) {
	t.Parallel()
	const mainLog = "a line of main on the host\n"
	kubelettest.RunBackendChecks(t, kubelettest.Backend{
		New: func(t *testing.T, _ corev1client.PodsGetter) kubelet.Backend {
			host := fakeHost(t, copyOf(kubelettest.Pod(), nil), map[string]string{"main": mainLog})
			b, err := New(Config{Tenant: tenant, HostNamespace: hostNamespace, HostConfig: host})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		MainLog: mainLog,
	})
}

// fakeHost stands for the host API server's pod endpoints, as far as the
// backend uses them: it holds one host pod, its containers' logs and an
// exec that runs echo; any other request fails the test.
func fakeHost(t *testing.T, pod *corev1.Pod, logs map[string]string) *rest.Config {
	t.Helper()
	mux := http.NewServeMux()
	prefix := "/api/v1/namespaces/" + pod.Namespace + "/pods/"
	mux.HandleFunc("GET "+prefix+"{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != pod.Name {
			writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), r.PathValue("name")))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(pod)
	})
	mux.HandleFunc("GET "+prefix+pod.Name+"/log", func(w http.ResponseWriter, r *http.Request) {
		log, ok := logs[r.URL.Query().Get("container")]
		if !ok {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not valid", r.URL.Query().Get("container"), pod.Name)))
			return
		}
		_, _ = io.WriteString(w, log)
	})
	mux.HandleFunc("POST "+prefix+pod.Name+"/exec", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := &remotecommand.Options{Stdin: q.Get("stdin") == "true", Stdout: q.Get("stdout") == "true", Stderr: q.Get("stderr") == "true", TTY: q.Get("tty") == "true"}
		remotecommand.ServeExec(w, r, echoExecutor{}, pod.Name, string(pod.UID), q.Get("container"), q["command"], opts,
			time.Minute, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the host got an unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.ErrStatus
	status.Kind, status.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(status.Code))
	_ = json.NewEncoder(w).Encode(status)
}

// echoExecutor runs echo, as a host kubelet would in a container.
type echoExecutor struct{}

func (echoExecutor) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, _ io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(cmd) == 0 || cmd[0] != "echo" {
		return errors.New("only echo runs here")
	}
	_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
	return err
}

// copyOf is the tenant's host pod for pod, changed by tweak.
func copyOf(pod *corev1.Pod, tweak func(h *corev1.Pod)) *corev1.Pod {
	labels, annotations := translate.HostMeta(tenant, translate.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}, nil, nil, translate.Passthrough{})
	h := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: hostNamespace, Name: translate.HostName(tenant, pod.Namespace, pod.Name, translate.MaxSubdomainLength),
		Labels: labels, Annotations: annotations,
	}}
	if tweak != nil {
		tweak(h)
	}
	return h
}

func TestIsCopyOf(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", UID: "u1"}}
	tests := []struct {
		name string
		host *corev1.Pod
		want bool
	}{
		{name: "the tenant's copy of this pod", host: copyOf(pod, nil), want: true},
		{name: "a host pod without the marker", host: copyOf(pod, func(h *corev1.Pod) { delete(h.Labels, translate.LabelTenant) })},
		{name: "another tenant's pod", host: copyOf(pod, func(h *corev1.Pod) { h.Labels[translate.LabelTenant] = "other" })},
		{name: "a copy of another pod", host: copyOf(pod, func(h *corev1.Pod) { h.Annotations[translate.AnnotationName] = "db" })},
		{name: "a copy of a pod of another namespace", host: copyOf(pod, func(h *corev1.Pod) { h.Annotations[translate.AnnotationNamespace] = "default" })},
		{name: "a copy of another kind", host: copyOf(pod, func(h *corev1.Pod) { h.Annotations[translate.AnnotationKind] = "Secret" })},
		{name: "a stale copy of an earlier pod of the name", host: copyOf(pod, func(h *corev1.Pod) { h.Annotations[translate.AnnotationUID] = "u0" })},
		{name: "a copy without a UID", host: copyOf(pod, func(h *corev1.Pod) { delete(h.Annotations, translate.AnnotationUID) })},
		{name: "a pod without annotations", host: copyOf(pod, func(h *corev1.Pod) { h.Annotations = nil })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isCopyOf(tenant, pod, tc.host); got != tc.want {
				t.Errorf("isCopyOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHostQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts runtime.Object
		want url.Values
	}{
		{
			name: "exec with every stream and a TTY keeps the command's order",
			opts: &corev1.PodExecOptions{Container: "main", Command: []string{"sh", "-c", "echo hi"}, Stdin: true, Stdout: true, Stderr: true, TTY: true},
			want: url.Values{"container": {"main"}, "command": {"sh", "-c", "echo hi"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}, "tty": {"true"}},
		},
		{
			name: "exec with stdout only leaves the other streams off",
			opts: &corev1.PodExecOptions{Container: "main", Command: []string{"date"}, Stdout: true},
			want: url.Values{"container": {"main"}, "command": {"date"}, "stdout": {"true"}},
		},
		{
			name: "attach has no command",
			opts: &corev1.PodAttachOptions{Container: "sidecar", Stdout: true},
			want: url.Values{"container": {"sidecar"}, "stdout": {"true"}},
		},
		{name: "port-forward's ports are repeated", opts: &corev1.PodPortForwardOptions{Ports: []int32{8080, 9090}}, want: url.Values{"ports": {"8080", "9090"}}},
		{name: "no ports (SPDY sends them per stream)", opts: &corev1.PodPortForwardOptions{}, want: url.Values{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := hostQuery(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("hostQuery (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigRequiresEverything(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); err == nil {
		t.Error("an empty Config is valid")
	}
}
