package synctest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/knest-dev/knest/pkg/controlplane"
)

const (
	// envServe makes a re-executed test binary serve the named control
	// plane ("host" or "tenant") instead of running tests.
	envServe = "KNEST_SYNCTEST_SERVE"
	// envDir is the child's data directory.
	envDir = "KNEST_SYNCTEST_DIR"
	// readyPrefix starts the line a child prints once it serves, followed
	// by the path of its admin kubeconfig.
	readyPrefix = "synctest: ready "
	// startTimeout bounds a control plane's start on a busy machine.
	startTimeout = 3 * time.Minute
	// stopTimeout is how long a child may take to stop before it is killed.
	stopTimeout = 10 * time.Second
)

// Clusters are the API servers a test package's tests share; both nil
// under -short.
type Clusters struct {
	Host, Tenant *rest.Config
}

// Main runs a test package's tests against a host and a tenant API server
// started for them, and exits; call it from TestMain. In a child process
// re-executed by Main it serves a control plane instead.
func Main(m *testing.M, c *Clusters) {
	if name := os.Getenv(envServe); name != "" {
		if err := serve(name, os.Getenv(envDir)); err != nil {
			fmt.Fprintf(os.Stderr, "synctest: %s control plane: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	// The controllers under test log through klog; controller-runtime's
	// own logger would otherwise complain it was never set.
	ctrllog.SetLogger(klog.Background())
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m, c))
}

func run(m *testing.M, c *Clusters) int {
	start := time.Now()
	host, tenant := make(chan result, 1), make(chan result, 1)
	go func() { host <- startChild("host") }()
	go func() { tenant <- startChild("tenant") }()
	h, t := <-host, <-tenant
	defer h.child.stop()
	defer t.child.stop()
	if err := errors.Join(h.err, t.err); err != nil {
		fmt.Fprintf(os.Stderr, "synctest: the API servers did not start: %v\n", err)
		return 1
	}
	c.Host, c.Tenant = h.config, t.config
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "synctest: host %s and tenant %s API servers ready in %s\n",
			c.Host.Host, c.Tenant.Host, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

type result struct {
	child  *child
	config *rest.Config
	err    error
}

// child is a control plane served by a copy of the test binary.
type child struct {
	name  string
	dir   string
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
}

// startChild re-executes the test binary to serve control plane name and
// returns a client configuration once it serves.
func startChild(name string) result {
	dir, err := os.MkdirTemp("", "knest-synctest-"+name+"-")
	if err != nil {
		return result{err: err}
	}
	c := &child{name: name, dir: dir, done: make(chan struct{})}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return result{err: err}
	}
	defer logFile.Close()
	// No arguments: the copy never reaches the tests.
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), envServe+"="+name, envDir+"="+dir)
	c.cmd.Stderr = logFile
	stdout, err := c.cmd.StdoutPipe()
	if err == nil {
		c.stdin, err = c.cmd.StdinPipe()
	}
	if err == nil {
		err = c.cmd.Start()
	}
	if err != nil {
		os.RemoveAll(dir)
		return result{err: fmt.Errorf("%s: %w", name, err)}
	}
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if path, ok := strings.CutPrefix(s.Text(), readyPrefix); ok {
				ready <- path
			}
		}
		close(ready)
		c.cmd.Wait()
		close(c.done)
	}()
	fail := func(err error) result {
		c.stop()
		return result{err: fmt.Errorf("%s: %w; its log:\n%s", name, err, c.logTail())}
	}
	select {
	case path, ok := <-ready:
		if !ok {
			return fail(errors.New("exited before serving"))
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return fail(err)
		}
		// The tests' clients are the only ones: no client-side throttling.
		cfg.QPS, cfg.Burst = -1, 0
		return result{child: c, config: cfg}
	case <-time.After(startTimeout):
		return fail(fmt.Errorf("not serving after %s", startTimeout))
	}
}

// stop asks the child to stop (its standard input closes), kills it if it
// does not, and removes its files.
func (c *child) stop() {
	if c == nil {
		return
	}
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		c.cmd.Process.Kill()
		<-c.done
	}
	os.RemoveAll(c.dir)
}

// logTail is the end of the child's log, for a start-up failure.
func (c *child) logTail() string {
	data, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	const max = 4000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// serve runs control plane name in dir until standard input closes (the
// test binary is done, or died) or a signal arrives.
func serve(name, dir string) error {
	if dir == "" {
		return errors.New(envDir + " is not set")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	inst, err := controlplane.Start(ctx, controlplane.Spec{
		Name: "synctest-" + name, DataDir: filepath.Join(dir, "data"),
		BindAddress: "127.0.0.1", AdvertiseAddress: net.IPv4(127, 0, 0, 1),
		// One range for both, as knestd takes the host's: a tenant
		// Service's ClusterIP is its host copy's.
		ServiceCIDR: "10.96.0.0/16", ClusterDomain: "cluster.local",
		// Start-up waits for the default ServiceAccount; no other
		// controller may act behind a test's back (the pod garbage
		// collector would delete pods bound to Nodes that do not exist).
		Controllers:  []string{"serviceaccount-controller"},
		ReadyTimeout: startTimeout,
	})
	if err != nil {
		return err
	}
	defer inst.Stop("test binary done")
	path := filepath.Join(dir, "admin.kubeconfig")
	if err := inst.WriteAdminKubeconfig(path); err != nil {
		return err
	}
	fmt.Println(readyPrefix + path)
	select {
	case <-ctx.Done():
		return nil
	case err := <-inst.Failed():
		return err
	}
}
