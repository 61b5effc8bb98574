package simkubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/kubelet/kubelettest"
	"github.com/knest-dev/knest/pkg/pki"
)

var started = kubelettest.Started

// testPod is kubelettest's pod, changed by tweaks.
func testPod(tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := kubelettest.Pod()
	for _, tweak := range tweaks {
		tweak(p)
	}
	return p
}

func TestBackendChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "pods", "default", "app", "main.log")
	kubelettest.RunBackendChecks(t, kubelettest.Backend{
		New: func(t *testing.T, pods corev1client.PodsGetter) kubelet.Backend {
			b, err := New(Config{Dir: dir, Pods: pods})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		MainLog: "knest devcluster: default/app/main started\n" +
			"knest devcluster: the container is simulated, no process runs in it\n" +
			"knest devcluster: lines appended to " + logFile + ` as "<RFC 3339 time> stdout F <text>" show up here` + "\n",
	})
}

func newPKI(t *testing.T) pki.Files {
	t.Helper()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "test", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type testServer struct {
	url  string
	dir  string
	pki  pki.Files
	pods *fake.Clientset
}

func startServer(t *testing.T, objects ...runtime.Object) *testServer {
	t.Helper()
	files := newPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{dir: t.TempDir(), pki: files, pods: fake.NewClientset(objects...)}
	backend, err := New(Config{Dir: ts.dir, Pods: ts.pods.CoreV1()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := kubelet.New(kubelet.Config{
		Listener: l, Pods: ts.pods.CoreV1(), Backend: backend,
		CACertFile: files.InternalCACert, CAKeyFile: files.InternalCAKey, ClientCertFile: files.KubeletClientCert,
		Addresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ts.url = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
	return ts
}

// client is an HTTPS client trusting the CA and presenting cert and key, if
// set.
func client(t *testing.T, caFile, certFile, keyFile string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{RootCAs: roots}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
}

func (ts *testServer) apiServer(t *testing.T) *http.Client {
	return client(t, ts.pki.InternalCACert, ts.pki.KubeletClientCert, ts.pki.KubeletClientKey)
}

func TestContainerLogs(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPod())
	logFile := filepath.Join(ts.dir, "pods", "default", "app", "main.log")
	lines := []string{
		"knest devcluster: default/app/main started\n",
		"knest devcluster: the container is simulated, no process runs in it\n",
		"knest devcluster: lines appended to " + logFile + ` as "<RFC 3339 time> stdout F <text>" show up here` + "\n",
	}
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "the log holds three lines", path: "/containerLogs/default/app/main", wantStatus: 200, wantBody: strings.Join(lines, "")},
		{name: "tailLines picks the last lines", path: "/containerLogs/default/app/main?tailLines=1", wantStatus: 200, wantBody: lines[2]},
		{name: "tail, as older API servers send it, too", path: "/containerLogs/default/app/main?tail=2", wantStatus: 200, wantBody: lines[1] + lines[2]},
		{name: "limitBytes cuts the log", path: "/containerLogs/default/app/main?limitBytes=10", wantStatus: 200, wantBody: lines[0][:10]},
		{
			name: "timestamps are the container's start", path: "/containerLogs/default/app/main?tailLines=1&timestamps=true",
			wantStatus: 200, wantBody: started.Format("2006-01-02T15:04:05.000000000Z07:00") + " " + lines[2],
		},
		{name: "a container not in the pod is not found", path: "/containerLogs/default/app/nope", wantStatus: 404},
		{name: "a pod that does not exist is not found", path: "/containerLogs/default/gone/main", wantStatus: 404},
		{name: "previous logs do not exist", path: "/containerLogs/default/app/main?previous=true", wantStatus: 400},
		{name: "a negative tailLines is a bad request", path: "/containerLogs/default/app/main?tailLines=-1", wantStatus: 400},
	}
	c := ts.apiServer(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := c.Get(ts.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				if diff := cmp.Diff(tc.wantBody, string(body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// execThrough runs cmd in default/app's main container over SPDY, as the API
// server does, until ctx ends.
func execThrough(ctx context.Context, ts *testServer, cmd string, stdout io.Writer) error {
	u, err := url.Parse(ts.url + "/exec/default/app/main")
	if err != nil {
		return err
	}
	u.RawQuery = url.Values{"command": {"sh", "-c", cmd}, "output": {"1"}}.Encode()
	cfg := &rest.Config{Host: ts.url, TLSClientConfig: rest.TLSClientConfig{
		CAFile: ts.pki.InternalCACert, CertFile: ts.pki.KubeletClientCert, KeyFile: ts.pki.KubeletClientKey,
	}}
	executor, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return err
	}
	return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout})
}

func TestExecOverSPDY(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPod())

	t.Run("the output comes back", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		if err := execThrough(t.Context(), ts, "echo hello", &out); err != nil || out.String() != "hello\n" {
			t.Errorf("got %q, %v; want %q", out.String(), err, "hello\n")
		}
	})

	t.Run("the command and its children die with the connection", func(t *testing.T) {
		t.Parallel()
		out := &lockedBuffer{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- execThrough(ctx, ts, "sleep 300 & echo $!; wait", out) }()
		var pid int
		for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no pid printed: %q", out.String())
			}
			pid, _ = strconv.Atoi(strings.TrimSpace(out.String()))
		}
		cancel()
		<-done
		for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the command's child %d still runs after the client went away", pid)
			}
		}
	})
}

// alive says whether a process exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	after := stat[bytes.LastIndexByte(stat, ')')+1:]
	return !bytes.HasPrefix(bytes.TrimSpace(after), []byte("Z"))
}

func TestLocalExec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cmd      []string
		tty      bool
		want     string
		wantCode int
	}{
		{name: "the environment is minimal", cmd: []string{"env"}, want: "PATH=" + execPath + "\nHOME=<dir>\nHOSTNAME=app\n"},
		{name: "a TTY adds TERM", cmd: []string{"env"}, tty: true, want: "PATH=" + execPath + "\r\nHOME=<dir>\r\nHOSTNAME=app\r\nTERM=xterm\r\n"},
		{name: "the command runs in the workdir", cmd: []string{"pwd"}, want: "<dir>\n"},
		{name: "stderr is kept apart", cmd: []string{"sh", "-c", "echo out; echo err >&2"}, want: "out\n[stderr]err\n"},
		{name: "the exit code is passed on", cmd: []string{"sh", "-c", "exit 3"}, wantCode: 3},
		{name: "the exit code is passed on with a TTY", cmd: []string{"sh", "-c", "exit 4"}, tty: true, wantCode: 4},
		{name: "a program missing from PATH is an error", cmd: []string{"no-such-program-knest"}, wantCode: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			out, errOut := &lockedBuffer{}, &lockedBuffer{}
			var stderr io.WriteCloser = errOut
			if tc.tty {
				stderr = nil
			}
			err = localExec{workDir: dir, podName: "app"}.ExecInContainer(t.Context(), "app", "uid", "main", tc.cmd, nil, out, stderr, tc.tty, nil, 0)
			var exit utilexec.ExitError
			switch {
			case tc.wantCode > 0:
				if !errors.As(err, &exit) || exit.ExitStatus() != tc.wantCode {
					t.Errorf("error %v, want exit code %d", err, tc.wantCode)
				}
				return
			case tc.wantCode < 0:
				if err == nil {
					t.Error("succeeded, want an error")
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			got := out.String()
			if e := errOut.String(); e != "" {
				got += "[stderr]" + e
			}
			if diff := cmp.Diff(strings.ReplaceAll(tc.want, "<dir>", dir), got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodFiles(t *testing.T) {
	t.Parallel()

	t.Run("a new pod of the same name starts afresh", func(t *testing.T) {
		t.Parallel()
		f := &podFiles{root: t.TempDir()}
		logFile, workDir, err := f.prepare(testPod(), "main", started)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(logFile, []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(workDir, "left-over"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		again, _, err := f.prepare(testPod(), "main", started)
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(again); string(data) != "old\n" {
			t.Errorf("the same pod's log was rewritten: %q", data)
		}
		newPod := testPod(func(p *corev1.Pod) { p.UID = "uid-2" })
		if _, _, err := f.prepare(newPod, "main", started); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), "default/app/main started") {
			t.Errorf("a new pod got the old pod's log: %q", data)
		}
		if _, err := os.Stat(filepath.Join(workDir, "left-over")); err == nil {
			t.Error("a new pod got the old pod's workdir")
		}
	})

	t.Run("names that would leave the directory are refused", func(t *testing.T) {
		t.Parallel()
		f := &podFiles{root: t.TempDir()}
		for _, container := range []string{"..", "a/b", ""} {
			if _, _, err := f.prepare(testPod(), container, started); err == nil {
				t.Errorf("container %q accepted", container)
			}
		}
	})

	t.Run("the sweep removes the files of deleted and replaced pods only", func(t *testing.T) {
		t.Parallel()
		kept := testPod()
		replaced := testPod(func(p *corev1.Pod) { p.Name, p.UID = "replaced", "uid-new" })
		f := &podFiles{root: t.TempDir()}
		for _, p := range []*corev1.Pod{
			kept,
			testPod(func(p *corev1.Pod) { p.Name, p.UID = "replaced", "uid-old" }),
			testPod(func(p *corev1.Pod) { p.Namespace, p.Name, p.UID = "gone", "deleted", "uid-3" }),
		} {
			if _, _, err := f.prepare(p, "main", started); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.sweep(t.Context(), fake.NewClientset(kept, replaced).CoreV1()); err != nil {
			t.Fatal(err)
		}
		var left []string
		err := filepath.WalkDir(f.root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && path != f.root {
				rel, _ := filepath.Rel(f.root, path)
				left = append(left, rel)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"default", "default/app", "default/app/workdir"}
		if diff := cmp.Diff(want, left); diff != "" {
			t.Errorf("directories left (-want +got):\n%s", diff)
		}
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Close() error { return nil }

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
