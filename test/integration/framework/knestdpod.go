package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/kubeconfig"
)

// KnestdPod is knestd started as a local process the way a kubelet would
// start the container of a pod the chart's StatefulSet made: the
// devcluster's pods run no containers.
type KnestdPod struct {
	*Process
	// Ports maps the container's ports to the local ports used instead.
	Ports map[int32]int
	// Args are the arguments knestd got.
	Args []string
}

// Server is the URL of the tenant API server.
func (p *KnestdPod) Server(apiPort int32) string {
	return "https://127.0.0.1:" + strconv.Itoa(p.Ports[apiPort])
}

// StartKnestdAsPod waits until pod name in namespace runs (what a kubelet
// waits for: scheduled, volumes bound), then starts bin/knestd (or
// bin/knest-supervisor, when the container runs it) with its container's
// arguments and environment. What a pod would provide
// differently is provided locally, and only that:
//   - each volume the container mounts is a local directory holding what
//     the volume would: nothing for a claim or an emptyDir, the keys of a
//     ConfigMap or Secret as files; paths in arguments are rewritten;
//   - $(VAR) references resolve from the container's env, with 127.0.0.1
//     as the pod's IP;
//   - each container port is a free local port in the arguments (other
//     knestd processes may run on this machine);
//   - the host credentials are a token of the pod's ServiceAccount in a
//     kubeconfig (--host-kubeconfig), where a pod has that token mounted
//     for its in-cluster configuration.
//
// When the pod is deleted the process gets SIGTERM, as from a kubelet.
func StartKnestdAsPod(t testing.TB, hostCfg *rest.Config, hostCAFile, namespace, name string) *KnestdPod {
	t.Helper()
	ctx := context.Background()
	host := Client(t, hostCfg)
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := host.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s does not run (last seen: %+v): %v", namespace, name, podStatus(pod), err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("pod %s/%s has %d containers, want 1", namespace, name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken {
		t.Fatalf("pod %s/%s mounts no ServiceAccount token: knestd could not reach the host", namespace, name)
	}

	env := podEnv(t, pod, c)
	mounts := localVolumes(t, host, pod, c)
	ports := map[int32]int{}
	for _, p := range c.Ports {
		if _, ok := ports[p.ContainerPort]; !ok {
			ports[p.ContainerPort] = FreePort(t)
		}
	}
	// The image's entrypoint is knestd; the chart's sleep.enabled runs
	// knest-supervisor from the same image, which finds knestd next to
	// itself (here: given with --knestd).
	bin, args := KnestdPath(), make([]string, 0, len(c.Args)+2)
	switch {
	case len(c.Command) == 0:
	case slices.Equal(c.Command, []string{"/usr/local/bin/knest-supervisor"}):
		bin = SupervisorPath()
		args = append(args, "--knestd="+KnestdPath())
	default:
		t.Fatalf("pod %s/%s runs %v, neither knestd (the image's entrypoint) nor knest-supervisor", namespace, name, c.Command)
	}
	for _, a := range c.Args {
		args = append(args, localArg(expand(a, env), mounts, ports))
	}

	tr, err := host.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of ServiceAccount %s/%s: %v", namespace, pod.Spec.ServiceAccountName, err)
	}
	identity := filepath.Join(t.TempDir(), "in-cluster.kubeconfig")
	if err := (kubeconfig.Client{Name: "in-cluster", Server: hostCfg.Host, CAFile: hostCAFile, Token: tr.Status.Token}).Write(identity); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--host-kubeconfig="+identity)

	dataDir := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dataDir = v
		}
	}
	proc := start(t, bin, "", dataDir, ReadyMessage, args)
	kp := &KnestdPod{Process: proc, Ports: ports, Args: args}
	uid := pod.UID
	go func() {
		// The kubelet's part: SIGTERM when the pod goes.
		for {
			select {
			case <-proc.exited:
				return
			case <-time.After(200 * time.Millisecond):
			}
			p, err := host.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || err == nil && (p.DeletionTimestamp != nil || p.UID != uid) {
				_ = proc.cmd.Process.Signal(syscall.SIGTERM)
				return
			}
		}
	}()
	return kp
}

func podStatus(p *corev1.Pod) any {
	if p == nil {
		return "no pod"
	}
	return p.Status
}

// podEnv resolves the container's environment: values and the downward API.
func podEnv(t testing.TB, pod *corev1.Pod, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.podIP", "status.hostIP":
				env[e.Name] = "127.0.0.1"
			case "metadata.name":
				env[e.Name] = pod.Name
			case "metadata.namespace":
				env[e.Name] = pod.Namespace
			default:
				t.Fatalf("env %s: field %s is not provided locally", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		default:
			t.Fatalf("env %s: only values and pod fields are provided locally", e.Name)
		}
	}
	return env
}

// expand resolves $(VAR) as the kubelet does; unknown references stay.
func expand(s string, env map[string]string) string {
	for k, v := range env {
		s = strings.ReplaceAll(s, "$("+k+")", v)
	}
	return s
}

// localVolumes makes a local directory for each volume the container
// mounts and returns them by mount path.
func localVolumes(t testing.TB, host kubernetes.Interface, pod *corev1.Pod, c corev1.Container) map[string]string {
	t.Helper()
	ctx := context.Background()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("mount %s names no volume", m.Name)
		}
		dir := t.TempDir()
		files := map[string][]byte{}
		switch {
		case v.PersistentVolumeClaim != nil, v.EmptyDir != nil:
		case v.ConfigMap != nil:
			cm, err := host.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("volume %s: %v", m.Name, err)
			}
			for k, s := range cm.Data {
				files[k] = []byte(s)
			}
		case v.Secret != nil:
			s, err := host.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("volume %s: %v", m.Name, err)
			}
			files = s.Data
		case v.Projected != nil:
			// The ServiceAccount token: replaced by --host-kubeconfig.
			continue
		default:
			t.Fatalf("volume %s: its type is not provided locally", m.Name)
		}
		for k, data := range files {
			if err := os.WriteFile(filepath.Join(dir, k), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mounts[m.MountPath] = dir
	}
	return mounts
}

// localArg rewrites a --flag=value argument whose value is a path under a
// mount, a container port, or host:port with a container port.
func localArg(arg string, mounts map[string]string, ports map[int32]int) string {
	flag, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	for path, dir := range mounts {
		if value == path || strings.HasPrefix(value, path+"/") {
			return flag + "=" + dir + strings.TrimPrefix(value, path)
		}
	}
	for container, local := range ports {
		p := strconv.Itoa(int(container))
		switch {
		case value == p:
			return fmt.Sprintf("%s=%d", flag, local)
		case strings.HasSuffix(value, ":"+p):
			return fmt.Sprintf("%s=%s:%d", flag, strings.TrimSuffix(value, ":"+p), local)
		}
	}
	return arg
}
