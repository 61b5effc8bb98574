package dev

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

// hostSecret is set in the test's environment, which the devcluster
// inherits; commands run by exec must not see it.
const hostSecret = "KNEST_TEST_HOST_SECRET"

// TestIntegrationDevHostKubeletAPI drives kubectl's logs, exec, attach and
// port-forward for a simulated pod through the devcluster's API server, with
// client-go as kubectl uses it.
func TestIntegrationDevHostKubeletAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Setenv(hostSecret, "leaked")
	dir := t.TempDir()
	h := framework.StartHost(t, dir)
	h.WaitReady(t, 90*time.Second)
	cfg := framework.AdminConfig(t, h.AdminKubeconfig())
	client := framework.Client(t, cfg)
	ctx := t.Context()

	const ns, name = "default", "app"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
			{Name: "sidecar", Image: "sidecar"},
		}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not Running: %v", ns, name, err)
	}
	podDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	podDir = filepath.Join(podDir, "pods", ns, name)
	logOf := func(container string) string { return filepath.Join(podDir, container+".log") }
	initialLog := func(container string) string {
		return fmt.Sprintf("knest devcluster: %s/%s/%s started\n"+
			"knest devcluster: the container is simulated, no process runs in it\n"+
			"knest devcluster: lines appended to %s as \"<RFC 3339 time> stdout F <text>\" show up here\n",
			ns, name, container, logOf(container))
	}
	// As kubectl logs reads them: a failure's error carries the kubelet's message.
	logs := func(opts *corev1.PodLogOptions) (string, error) {
		stream, err := client.CoreV1().Pods(ns).GetLogs(name, opts).Stream(ctx)
		if err != nil {
			return "", err
		}
		defer stream.Close()
		out, err := io.ReadAll(stream)
		return string(out), err
	}

	t.Run("logs show the container's log file", func(t *testing.T) {
		got, err := logs(&corev1.PodLogOptions{Container: "main"})
		if err != nil || got != initialLog("main") {
			t.Errorf("logs -c main: %v\ngot:\n%s\nwant:\n%s", err, got, initialLog("main"))
		}
	})

	t.Run("logs --tail=1 shows the last line only", func(t *testing.T) {
		lines := strings.SplitAfter(initialLog("main"), "\n")
		want := lines[len(lines)-2]
		got, err := logs(&corev1.PodLogOptions{Container: "main", TailLines: ptr.To[int64](1)})
		if err != nil || got != want {
			t.Errorf("logs --tail=1: %v\ngot:  %q\nwant: %q", err, got, want)
		}
	})

	t.Run("logs -c shows the other container's log", func(t *testing.T) {
		got, err := logs(&corev1.PodLogOptions{Container: "sidecar"})
		if err != nil || got != initialLog("sidecar") {
			t.Errorf("logs -c sidecar: %v\ngot:\n%s\nwant:\n%s", err, got, initialLog("sidecar"))
		}
	})

	t.Run("logs --previous fails: simulated containers never restart", func(t *testing.T) {
		got, err := logs(&corev1.PodLogOptions{Container: "main", Previous: true})
		if err == nil || !strings.Contains(err.Error(), "previous terminated container") {
			t.Errorf("logs --previous: want the kubelet's 'previous terminated container ... not found', got %v (output %q)", err, got)
		}
	})

	t.Run("logs -f follows lines appended to the log file", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		stream, err := client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: "sidecar", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		r := bufio.NewReader(stream)
		for range 3 {
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatalf("reading the initial lines: %v", err)
			}
		}
		appendLogLine(t, logOf("sidecar"), "followed line")
		line, err := r.ReadString('\n')
		if err != nil || line != "followed line\n" {
			t.Errorf("logs -f: after appending a line got %q, %v", line, err)
		}
	})

	t.Run("a container not in the pod is refused", func(t *testing.T) {
		if out, err := logs(&corev1.PodLogOptions{Container: "nope"}); err == nil {
			t.Errorf("logs -c nope succeeded: %q", out)
		}
		for _, transport := range []string{"SPDY", "WebSocket"} {
			if out, err := framework.Exec(ctx, cfg, ns, name, "nope", []string{"echo", "hello"}, false, transport); err == nil {
				t.Errorf("exec -c nope over %s succeeded: %q", transport, out)
			}
		}
	})

	t.Run("exec echo hello, with and without a TTY", func(t *testing.T) {
		for _, transport := range []string{"SPDY", "WebSocket"} {
			for _, tty := range []bool{false, true} {
				want := "hello\n"
				if tty {
					// The terminal turns newlines into CRLF: proof of a TTY.
					want = "hello\r\n"
				}
				got, err := framework.Exec(ctx, cfg, ns, name, "main", []string{"echo", "hello"}, tty, transport)
				if err != nil || got != want {
					t.Errorf("exec over %s, tty=%v: got %q, %v; want %q", transport, tty, got, err, want)
				}
			}
		}
	})

	t.Run("exec runs in the pod's workdir with a minimal environment", func(t *testing.T) {
		workDir := filepath.Join(podDir, "workdir")
		got, err := framework.Exec(ctx, cfg, ns, name, "main", []string{"pwd"}, false, "SPDY")
		if err != nil || got != workDir+"\n" {
			t.Errorf("pwd: got %q, %v; want %q", got, err, workDir)
		}
		got, err = framework.Exec(ctx, cfg, ns, name, "main", []string{"env"}, false, "SPDY")
		want := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOME=" + workDir + "\nHOSTNAME=" + name + "\n"
		if err != nil || got != want {
			t.Errorf("env (the devcluster has %s set): got %v\n%s\nwant:\n%s", hostSecret, err, got, want)
		}
	})

	t.Run("exec passes the command's exit code on", func(t *testing.T) {
		_, err := framework.Exec(ctx, cfg, ns, name, "main", []string{"sh", "-c", "exit 3"}, false, "SPDY")
		var exit utilexec.CodeExitError
		if !errors.As(err, &exit) || exit.Code != 3 {
			t.Errorf("exec exit 3: got %v, want exit code 3", err)
		}
	})

	t.Run("exec kills the command and its children when the client goes away", func(t *testing.T) {
		req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"sh", "-c", "sleep 300 & echo $$ $!; wait"}, Stdout: true}, scheme.ParameterCodec)
		out := &framework.Buffer{}
		execCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		executor := executorFor(t, cfg, req, framework.SPDY)
		done := make(chan error, 1)
		go func() { done <- executor.StreamWithContext(execCtx, remotecommand.StreamOptions{Stdout: out}) }()
		var pids []int
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			fields := strings.Fields(out.String())
			if len(fields) < 2 {
				return false, nil
			}
			pids = nil
			for _, f := range fields[:2] {
				pid, err := strconv.Atoi(f)
				if err != nil {
					return false, fmt.Errorf("not a pid: %q", out.String())
				}
				pids = append(pids, pid)
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("the shell and its sleep did not report their pids: %v", err)
		}
		for _, pid := range pids {
			if !running(pid) {
				t.Fatalf("process %d is not running before the client left", pid)
			}
		}
		cancel()
		<-done
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return !running(pids[0]) && !running(pids[1]), nil
		})
		if err != nil {
			t.Errorf("processes %v still run after the client went away", pids)
		}
	})

	t.Run("attach follows the container's log and ends with the client", func(t *testing.T) {
		for _, transport := range []string{"SPDY", "WebSocket"} {
			req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("attach").
				VersionedParams(&corev1.PodAttachOptions{Container: "sidecar", Stdout: true}, scheme.ParameterCodec)
			executor := executorFor(t, cfg, req, transport)
			out := &framework.Buffer{}
			attachCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- executor.StreamWithContext(attachCtx, remotecommand.StreamOptions{Stdout: out}) }()
			// Attach starts at the log's end, once the stream is up: append
			// until a line comes through.
			line := "attached over " + transport
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
				appendLogLine(t, logOf("sidecar"), line)
				return strings.Contains(out.String(), line+"\n"), nil
			})
			if err != nil {
				t.Errorf("attach over %s: %q never came through; got %q", transport, line, out.String())
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("attach over %s did not end after the client cancelled", transport)
			}
		}
	})

	t.Run("port-forward echoes the bytes sent", func(t *testing.T) {
		for _, transport := range []string{"SPDY", "WebSocket"} {
			want := "ping over " + transport + "\n"
			got, err := framework.ForwardAndSend(ctx, cfg, ns, name, 8080, transport, want)
			if err != nil || got != want {
				t.Errorf("port-forward over %s: got %q, %v; want %q", transport, got, err, want)
			}
		}
	})

	t.Run("the kubelet port serves the API server's kubelet client only", func(t *testing.T) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		port := nodes.Items[0].Status.DaemonEndpoints.KubeletEndpoint.Port
		for _, n := range nodes.Items {
			if n.Status.DaemonEndpoints.KubeletEndpoint.Port != port || port == 0 {
				t.Errorf("node %s advertises kubelet port %d, node %s %d", n.Name, n.Status.DaemonEndpoints.KubeletEndpoint.Port, nodes.Items[0].Name, port)
			}
		}
		pkiDir := filepath.Join(dir, "pki")
		url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) + "/healthz"
		tests := []struct {
			name     string
			cert     string
			accepted bool
		}{
			{name: "the API server's kubelet client certificate", cert: "apiserver-kubelet-client", accepted: true},
			{name: "no client certificate"},
			{name: "the admin's certificate, from the cluster CA", cert: "admin"},
		}
		for _, tc := range tests {
			// The internal CA signs both ends of the kubelet connection.
			err := getHealthz(t, url, filepath.Join(pkiDir, "internal-ca.crt"), pkiDir, tc.cert)
			if tc.accepted && err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			if !tc.accepted && err == nil {
				t.Errorf("%s: served, want the connection refused", tc.name)
			}
		}
		resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP: served")
			}
		}
	})

	t.Run("after a restart the nodes kept in etcd advertise the new port", func(t *testing.T) {
		node, err := client.CoreV1().Nodes().Get(ctx, "kwok-general-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldPort := node.Status.DaemonEndpoints.KubeletEndpoint.Port
		h.Stop(t, 30*time.Second)
		// Held through the restart, so the new port must differ.
		hold, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(oldPort))))
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		restarted := framework.StartHost(t, dir)
		restarted.WaitReady(t, 90*time.Second)
		client := framework.Client(t, framework.AdminConfig(t, restarted.AdminKubeconfig()))
		stream, err := client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: "main"}).Stream(ctx)
		if err != nil {
			t.Fatalf("logs after the restart: %v", err)
		}
		defer stream.Close()
		if got, err := io.ReadAll(stream); err != nil || string(got) != initialLog("main") {
			t.Errorf("logs after the restart: %v\ngot:\n%s\nwant:\n%s", err, got, initialLog("main"))
		}
	})
}

// running says whether a process exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command, which is in parentheses.
	after := stat[bytes.LastIndexByte(stat, ')')+1:]
	return !bytes.HasPrefix(bytes.TrimSpace(after), []byte("Z"))
}

// getHealthz calls url trusting caFile and presenting pkiDir's <cert>.crt
// and .key if cert is set.
func getHealthz(t *testing.T, url, caFile, pkiDir, cert string) error {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	conf := &tls.Config{RootCAs: roots}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, cert+".crt"), filepath.Join(pkiDir, cert+".key"))
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

// appendLogLine appends a line to a container's log file in the CRI format.
func appendLogLine(t *testing.T, path, text string) {
	t.Helper()
	if err := framework.AppendCRILog(path, text); err != nil {
		t.Fatal(err)
	}
}

func executorFor(t *testing.T, cfg *rest.Config, req *rest.Request, transport string) remotecommand.Executor {
	t.Helper()
	executor, err := framework.Executor(cfg, req, transport)
	if err != nil {
		t.Fatal(err)
	}
	return executor
}
