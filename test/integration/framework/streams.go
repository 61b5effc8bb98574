package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// The stream transports kubectl speaks to an API server.
const (
	SPDY      = "SPDY"
	WebSocket = "WebSocket"
)

// Transports are both stream transports, for tests that try each.
var Transports = []string{SPDY, WebSocket}

// Buffer is a bytes.Buffer that one goroutine writes while another reads.
type Buffer = syncBuffer

// Executor returns a remotecommand executor for a pods/exec or pods/attach
// request, over SPDY (a POST upgrade) or WebSocket (a GET upgrade).
func Executor(cfg *rest.Config, req *rest.Request, transport string) (remotecommand.Executor, error) {
	if transport == WebSocket {
		return remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	}
	return remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
}

// ExecRequest is the pods/exec request kubectl exec makes.
func ExecRequest(client kubernetes.Interface, namespace, pod string, opts *corev1.PodExecOptions) *rest.Request {
	return client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(opts, scheme.ParameterCodec)
}

// AttachRequest is the pods/attach request kubectl attach makes.
func AttachRequest(client kubernetes.Interface, namespace, pod string, opts *corev1.PodAttachOptions) *rest.Request {
	return client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("attach").
		VersionedParams(opts, scheme.ParameterCodec)
}

// Exec runs cmd in a container as kubectl exec does and returns what it
// wrote: stdout, and stderr too without a TTY. The error carries a
// non-zero exit code as a k8s.io/client-go/util/exec.CodeExitError.
func Exec(ctx context.Context, cfg *rest.Config, namespace, pod, container string, cmd []string, tty bool, transport string) (string, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	req := ExecRequest(client, namespace, pod, &corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: !tty, TTY: tty})
	executor, err := Executor(cfg, req, transport)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := &Buffer{}
	opts := remotecommand.StreamOptions{Stdout: out, Tty: tty}
	if !tty {
		opts.Stderr = out
	}
	err = executor.StreamWithContext(ctx, opts)
	return out.String(), err
}

// ForwardAndSend forwards a free local port to port of the pod as kubectl
// port-forward does, sends msg through it and returns as many bytes as came
// back, up to len(msg).
func ForwardAndSend(ctx context.Context, cfg *rest.Config, namespace, pod string, port int, transport, msg string) (string, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	u := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	var dialer httpstream.Dialer
	if transport == WebSocket {
		if dialer, err = portforward.NewSPDYOverWebsocketDialer(u, cfg); err != nil {
			return "", err
		}
	} else {
		rt, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return "", err
		}
		dialer = spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", err
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		return "", fmt.Errorf("port-forward ended before it was ready: %w", err)
	case <-time.After(30 * time.Second):
		return "", errors.New("port-forward not ready within 30s")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil {
		return "", err
	}
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, msg); err != nil {
		return "", err
	}
	got := make([]byte, len(msg))
	n, err := io.ReadFull(conn, got)
	return string(got[:n]), err
}

// AppendCRILog appends a stdout line to a container log file in the CRI
// format, as a container runtime writes it; the devcluster serves such
// files as its simulated containers' logs.
func AppendCRILog(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
