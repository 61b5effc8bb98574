// Package framework starts real knestd and knest processes for integration
// tests and hands out clients for them. The binaries are built once per test
// binary, or taken from $KNEST_BIN_DIR, which the Makefile sets to bin/.
package framework

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/internal/freeport"
)

// ReadyMessage is the line knestd logs once the control plane is ready.
const ReadyMessage = "Tenant control plane is ready"

// binDir holds knestd and knest for the tests.
var binDir string

// KnestdPath is the knestd binary the tests run.
func KnestdPath() string { return filepath.Join(binDir, "knestd") }

// KnestPath is the knest CLI binary the tests run.
func KnestPath() string { return filepath.Join(binDir, "knest") }

// KnestDevPath is the knest-dev binary (the devcluster) the tests run.
func KnestDevPath() string { return filepath.Join(binDir, "knest-dev") }

// SupervisorPath is the knest-supervisor binary the tests run.
func SupervisorPath() string { return filepath.Join(binDir, "knest-supervisor") }

// KubectlPath is the kubectl `make build` builds from the Kubernetes release
// knest embeds.
func KubectlPath() string { return filepath.Join(binDir, "kubectl") }

// binaries are what BuildBinaries builds: a name in bin/ and its package.
var binaries = []struct{ name, pkg string }{
	{"knestd", "./cmd/knestd"},
	{"knest", "./cmd/knest"},
	{"knest-dev", "./cmd/knest-dev"},
	{"knest-supervisor", "./cmd/knest-supervisor"},
	{"kubectl", "k8s.io/kubernetes/cmd/kubectl"},
}

// RepoRoot returns the repository root, found from this package's directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// BuildBinaries builds knestd, knest, knest-dev and kubectl with the version ldflags into a
// temporary directory, unless $KNEST_BIN_DIR names a directory that holds
// them already (the Makefile builds them once for every test package).
func BuildBinaries() (cleanup func(), err error) {
	if dir := os.Getenv("KNEST_BIN_DIR"); dir != "" {
		binDir = dir
		return func() {}, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	ldflags, err := exec.Command("bash", filepath.Join(root, "hack", "ldflags.sh")).Output()
	if err != nil {
		return nil, fmt.Errorf("hack/ldflags.sh: %w", err)
	}
	binDir, err = os.MkdirTemp("", "knest-bin-")
	if err != nil {
		return nil, err
	}
	for _, b := range binaries {
		cmd := exec.Command("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", filepath.Join(binDir, b.name), b.pkg)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			os.RemoveAll(binDir)
			return nil, fmt.Errorf("building %s: %w", b.name, err)
		}
	}
	dir := binDir
	return func() { os.RemoveAll(dir) }, nil
}

// RunTests is the TestMain of every integration test package: under -short
// the tests skip themselves; otherwise the binaries are built (or taken from
// $KNEST_BIN_DIR) once for the package.
func RunTests(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	cleanup, err := BuildBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	return m.Run()
}

// Process is a knestd or devcluster process started by a test.
type Process struct {
	DataDir string
	Args    []string
	ready   string
	cmd     *exec.Cmd
	output  *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a loopback port that was free a moment ago, outside the
// range outgoing connections take their ports from (internal/freeport).
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freeport.Loopback(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// Start starts knestd with the given data directory and extra flags, and
// stops it (SIGKILL if it must) when the test ends.
func Start(t testing.TB, dataDir string, args ...string) *Process {
	t.Helper()
	return start(t, KnestdPath(), "", dataDir, ReadyMessage, append([]string{"--data-dir=" + dataDir}, args...))
}

// StartIn is Start with workDir as knestd's working directory, for a
// dataDir relative to it.
func StartIn(t testing.TB, workDir, dataDir string, args ...string) *Process {
	t.Helper()
	return start(t, KnestdPath(), workDir, dataDir, ReadyMessage, append([]string{"--data-dir=" + dataDir}, args...))
}

// HostReadyMessage is the line the devcluster logs once it is ready.
const HostReadyMessage = "Host cluster is ready"

// StartHost starts a devcluster (knest-dev host) on dir.
func StartHost(t testing.TB, dir string, args ...string) *Process {
	t.Helper()
	return start(t, KnestDevPath(), "", dir, HostReadyMessage, append([]string{"host", "--dir=" + dir}, args...))
}

func start(t testing.TB, bin, workDir, dataDir, ready string, args []string) *Process {
	t.Helper()
	k := &Process{DataDir: filepath.Join(workDir, dataDir), Args: args, ready: ready, output: &syncBuffer{}, exited: make(chan struct{})}
	k.cmd = exec.Command(bin, k.Args...)
	k.cmd.Dir = workDir
	k.cmd.Stdout = k.output
	k.cmd.Stderr = k.output
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		k.exitErr = k.cmd.Wait()
		close(k.exited)
	}()
	t.Cleanup(func() {
		k.Kill()
		if t.Failed() {
			t.Logf("%s output (%s):\n%s", filepath.Base(bin), dataDir, tail(k.Output(), 60))
		}
	})
	return k
}

// Run runs a binary to completion (for start-up failures) and returns its
// output and exit error.
func Run(t testing.TB, timeout time.Duration, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// Output is everything the process printed so far.
func (k *Process) Output() string { return k.output.String() }

// WaitReady waits for the ready line and returns how long it took.
func (k *Process) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(k.Output(), k.ready) {
		select {
		case <-k.exited:
			t.Fatalf("process exited before it was ready (%v):\n%s", k.exitErr, tail(k.Output(), 40))
		case <-deadline:
			t.Fatalf("process not ready within %s:\n%s", timeout, tail(k.Output(), 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the process to exit, returning how long it took.
func (k *Process) Stop(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.exited:
	case <-time.After(timeout):
		t.Fatalf("process did not exit within %s of SIGTERM", timeout)
	}
	return time.Since(start)
}

// Kill kills the process if it still runs.
func (k *Process) Kill() {
	select {
	case <-k.exited:
	default:
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
}

// ExitErr is the process's exit error once it has exited.
func (k *Process) ExitErr() error {
	<-k.exited
	return k.exitErr
}

// AdminKubeconfig is the admin kubeconfig path in the data directory.
func (k *Process) AdminKubeconfig() string { return filepath.Join(k.DataDir, "admin.kubeconfig") }

// AdminConfig loads the admin kubeconfig into a rest.Config.
func AdminConfig(t testing.TB, path string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	return cfg
}

// Client returns a clientset for cfg.
func Client(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tail(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailOnFailure logs the last lines of each file (the logs of processes
// the test started some other way) when the test has failed.
func TailOnFailure(t testing.TB, paths ...string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		TailNow(t, paths...)
	})
}

// TailNow logs the last lines of each file.
func TailNow(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Logf("%s: %v", p, err)
			continue
		}
		t.Logf("%s:\n%s", p, tail(string(data), 60))
	}
}

// Pid is the process's ID.
func (k *Process) Pid() int { return k.cmd.Process.Pid }

// Exited says whether the process has exited.
func (k *Process) Exited() bool {
	select {
	case <-k.exited:
		return true
	default:
		return false
	}
}
