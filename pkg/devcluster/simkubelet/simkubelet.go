package simkubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
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

	"github.com/knest-dev/knest/pkg/kubelet"
)

const (
	// idleTimeout ends a stream nothing went through for this long, as the
	// kubelet's default --streaming-connection-idle-timeout does.
	idleTimeout = 4 * time.Hour
	// sweepInterval is how often the files of deleted pods are removed.
	sweepInterval = time.Minute
)

// Config configures a Backend.
type Config struct {
	// Dir is the data directory; the pods' files live in Dir/pods.
	Dir string
	// Pods reads the pods, to tell which pods' files are left over.
	Pods corev1client.PodsGetter
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("simulated kubelet: a data directory is required"))
	}
	if c.Pods == nil {
		errs = append(errs, errors.New("simulated kubelet: a pods client is required"))
	}
	return errors.Join(errs...)
}

// Backend serves logs, exec, attach and port-forward for simulated pods.
type Backend struct {
	pods  corev1client.PodsGetter
	files *podFiles
}

var _ kubelet.Backend = (*Backend)(nil)

// New checks the configuration.
func New(c Config) (*Backend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Backend{pods: c.Pods, files: &podFiles{root: filepath.Join(c.Dir, "pods")}}, nil
}

// Run removes the files of deleted pods now and every sweepInterval until
// ctx ends.
func (b *Backend) Run(ctx context.Context) {
	ticker := time.NewTicker(sweepInterval)
	defer ticker.Stop()
	for {
		if err := b.files.sweep(ctx, b.pods); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Failed to remove the files of deleted pods")
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Logs reads the container's log file.
func (b *Backend) Logs(ctx context.Context, pod *corev1.Pod, opts *corev1.PodLogOptions, out io.Writer) error {
	if opts.Previous {
		// What the kubelet answers for a container that never restarted.
		return apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", opts.Container, pod.Name))
	}
	kwok, err := b.kwokFor(pod, opts.Container)
	if err != nil {
		return err
	}
	return kwok.GetContainerLogs(ctx, pod.Name, pod.Namespace, opts.Container, opts, out, out)
}

// Exec runs the command on this machine, in the pod's workdir.
func (b *Backend) Exec(_ context.Context, pod *corev1.Pod, opts *corev1.PodExecOptions) (http.Handler, error) {
	_, workDir, err := b.files.prepare(pod, opts.Container, time.Now())
	if err != nil {
		return nil, err
	}
	streams := &remotecommand.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotecommand.ServeExec(w, r, localExec{workDir: workDir, podName: pod.Name}, pod.Name, string(pod.UID), opts.Container,
			opts.Command, streams, idleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}), nil
}

// Attach follows the container's log file from its end.
func (b *Backend) Attach(_ context.Context, pod *corev1.Pod, opts *corev1.PodAttachOptions) (http.Handler, error) {
	kwok, err := b.kwokFor(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	streams := &remotecommand.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// KWOK's runtime methods take the pod as "<name>/<namespace>".
		remotecommand.ServeAttach(w, r, kwok, pod.Name+"/"+pod.Namespace, string(pod.UID), opts.Container, streams,
			idleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}), nil
}

// PortForward connects every port to an echo.
func (b *Backend) PortForward(_ context.Context, pod *corev1.Pod, opts *corev1.PodPortForwardOptions) (http.Handler, error) {
	ports := &portforward.V4Options{Ports: opts.Ports}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		portforward.ServePortForward(w, r, echo{}, pod.Name, string(pod.UID), ports,
			idleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
	}), nil
}

// kwokFor prepares the container's files and returns a KWOK server that
// knows this one container: in-memory ClusterLogs and ClusterAttach point
// its logs and attach at the container's log file. KWOK's configurations
// are static and name one file for all pods they select, so each request
// gets its own.
func (b *Backend) kwokFor(pod *corev1.Pod, container string) (*kwokserver.Server, error) {
	logFile, _, err := b.files.prepare(pod, container, time.Now())
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("failed to set up KWOK's logs and attach for %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return kwok, nil
}

// echo is port-forward's target: every port sends back what it receives.
type echo struct{}

func (echo) PortForward(_ context.Context, _, _ string, _ int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	_, err := io.Copy(stream, stream)
	return err
}
