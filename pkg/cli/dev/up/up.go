// Package up is `knest dev up`: start a devcluster host and one knestd per
// tenant as child processes, write their kubeconfigs, and stay in the
// foreground until interrupted, then stop every child.
package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

const (
	hostReadyMessage   = "Host cluster is ready"
	tenantReadyMessage = "Tenant control plane is ready"
	startTimeout       = 3 * time.Minute
	stopGrace          = 10 * time.Second
)

// Options are the flags of `knest dev up`.
type Options struct {
	Dir            string
	Tenants        string
	Nodes          int
	SandboxedNodes int
	Port           int
	ServiceCIDR    string
	PodCIDR        string
	PoolsFile      string
	Isolation      policy.Profile
	HostNodeInfo   bool
}

// NewCommand returns `knest dev up`.
func NewCommand(streams cli.Streams) *cobra.Command {
	o := Options{Tenants: "demo", Nodes: 2, SandboxedNodes: 1, ServiceCIDR: "10.96.0.0/16", PodCIDR: "10.244.0.0/14", Isolation: policy.DefaultProfile}
	cmd := &cobra.Command{
		Use:   "up --dir DIR [--tenants a,b] [--nodes N]",
		Short: "Start a local host cluster and tenant control planes (foreground)",
		Long: `Starts the devcluster (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK-simulated nodes, one process) and one knestd per tenant,
writes DIR/host.kubeconfig and DIR/tenants/<tenant>.kubeconfig when they are
ready, and stays in the foreground. Ctrl-C (or 'knest dev down --dir DIR') stops
every process it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), streams, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "directory for all data, logs and kubeconfigs (required)")
	f.StringVar(&o.Tenants, "tenants", o.Tenants, "comma-separated tenants, each NAME or NAME:PROFILE (soft or hard; NAME alone gets --isolation)")
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "number of general host nodes")
	f.IntVar(&o.SandboxedNodes, "sandboxed-nodes", o.SandboxedNodes, "number of host nodes in the sandboxed pool")
	f.IntVar(&o.Port, "port", 0, "host API server port (0 picks a free one)")
	f.StringVar(&o.ServiceCIDR, "service-cidr", o.ServiceCIDR, "host service CIDR (tenants use it too)")
	f.StringVar(&o.PodCIDR, "pod-cidr", o.PodCIDR, "host pod CIDR")
	f.StringVar(&o.PoolsFile, "pools", "", "YAML file of host node pools: name, count, labels, taints, cpu, memory, maxPods (replaces --nodes and --sandboxed-nodes)")
	f.Var(&o.Isolation, "isolation", "isolation profile of tenants listed without one: hard (kata RuntimeClass, sandboxed pool, images always pulled, Pod Security baseline) or soft (general nodes, baseline)")
	f.BoolVar(&o.HostNodeInfo, "host-node-info", false, "let every tenant's virtual nodes show their host node's zone, region, arch, OS, instance type and capacity (chart value hostNodeInfo)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// Run runs `knest dev up` until ctx ends or a signal arrives.
func Run(ctx context.Context, streams cli.Streams, o Options) error {
	tenants, err := devenv.ParseTenants(o.Tenants, o.Isolation)
	if err != nil {
		return err
	}
	if o.Nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1, got %d", o.Nodes)
	}
	var poolsArgs []string
	if o.PoolsFile != "" {
		// Checked here so a bad file fails in one line before anything starts.
		if _, err := pools.Load(o.PoolsFile); err != nil {
			return err
		}
		abs, err := filepath.Abs(o.PoolsFile)
		if err != nil {
			return err
		}
		poolsArgs = []string{"--pools=" + abs}
	}
	if o.SandboxedNodes < 0 {
		return fmt.Errorf("--sandboxed-nodes must not be negative, got %d", o.SandboxedNodes)
	}
	if o.Port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
		if err != nil {
			return fmt.Errorf("port %d is not available: %w", o.Port, errors.Unwrap(err))
		}
		l.Close()
	}
	layout := devenv.Layout{Dir: o.Dir}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("cannot use --dir %s: %w", o.Dir, err)
	}
	lock, err := dirlock.Acquire(layout.Lock())
	if err != nil {
		if errors.Is(err, dirlock.ErrLocked) {
			return fmt.Errorf("--dir %s holds a running knest dev environment (%w); stop it with 'knest dev down --dir %s'", o.Dir, err, o.Dir)
		}
		return err
	}
	defer lock.Release()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	knestd, err := findKnestd(self)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var children []*devenv.Child
	stopAll := func() {
		// Tenants first: they are clients of nothing on the host yet, but
		// their syncers will be, and the host should outlive them.
		for i := len(children) - 1; i >= 0; i-- {
			if err := children[i].Stop(stopGrace); err != nil {
				fmt.Fprintln(streams.ErrOut, "knest:", err)
			}
		}
	}
	defer stopAll()

	fmt.Fprintf(streams.ErrOut, "Starting the host cluster (log: %s)\n", layout.Log("host"))
	host, err := devenv.StartChild("host cluster", layout.Log("host"), hostReadyMessage, self, append([]string{"dev", "host",
		"--dir=" + layout.HostDir(), "--port=" + strconv.Itoa(o.Port), "--nodes=" + strconv.Itoa(o.Nodes),
		"--sandboxed-nodes=" + strconv.Itoa(o.SandboxedNodes), "--service-cidr=" + o.ServiceCIDR, "--pod-cidr=" + o.PodCIDR}, poolsArgs...)...)
	if err != nil {
		return err
	}
	children = append(children, host)
	if err := waitReady(ctx, host); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(layout.HostDir(), "admin.kubeconfig"), layout.HostKubeconfig()); err != nil {
		return err
	}
	hostConfig, err := clientcmd.BuildConfigFromFlags("", layout.HostKubeconfig())
	if err != nil {
		return err
	}
	hostClient, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	hostCA := filepath.Join(layout.HostDir(), "pki", "ca.crt")

	for _, tt := range tenants {
		t := tt.Name
		ns := devenv.HostNamespace(t)
		// The namespace as `knest create` makes it (Pod Security at the
		// profile's level), then the chart without knestd, which runs here.
		if _, err := tenant.EnsureNamespace(ctx, hostClient, ns, t, tt.Profile); err != nil {
			return err
		}
		// Pool nodes, the chart's default, grant list and watch on Nodes.
		values := map[string]any{"poolNodes": true}
		if o.HostNodeInfo {
			values["hostNodeInfo"] = true
		}
		if err := devenv.InstallPolicies(ctx, hostConfig, t, ns, tt.Profile, values); err != nil {
			return err
		}
		if err := devenv.GrantHostIdentity(ctx, hostClient, hostConfig, hostCA, ns, layout.TenantHostKubeconfig(t)); err != nil {
			return err
		}
		apiIP, err := devenv.EnsureAPIService(ctx, hostClient, ns)
		if err != nil {
			return err
		}
		fmt.Fprintf(streams.ErrOut, "Starting tenant %s (log: %s)\n", t, layout.Log("tenant-"+t))
		args := []string{
			"--data-dir=" + layout.TenantDir(t), "--name=" + t, "--secure-port=0", "--service-cidr=" + o.ServiceCIDR,
			"--host-kubeconfig=" + layout.TenantHostKubeconfig(t), "--host-namespace=" + ns, "--kubernetes-service-ip=" + apiIP,
			// Tenants share this machine: free ports for each one's kubelet
			// API and DNS server; host pods resolve through the Service.
			"--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=" + apiIP,
			"--isolation=" + tt.Profile.String(), "--pool-nodes",
		}
		if o.HostNodeInfo {
			args = append(args, "--host-node-info")
		}
		child, err := devenv.StartChild("tenant "+t, layout.Log("tenant-"+t), tenantReadyMessage, knestd, args...)
		if err != nil {
			return err
		}
		children = append(children, child)
	}
	for i, tt := range tenants {
		t := tt.Name
		if err := waitReady(ctx, children[i+1]); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(layout.TenantDir(t), "admin.kubeconfig"), layout.TenantKubeconfig(t)); err != nil {
			return err
		}
	}

	fmt.Fprintf(streams.Out, "knest dev is up. Host cluster:\n    kubectl --kubeconfig %s get nodes\n", layout.HostKubeconfig())
	for _, t := range tenants {
		fmt.Fprintf(streams.Out, "Tenant %s (host namespace %s, %s isolation):\n    kubectl --kubeconfig %s get namespaces\n",
			t.Name, devenv.HostNamespace(t.Name), t.Profile, layout.TenantKubeconfig(t.Name))
	}
	fmt.Fprintf(streams.Out, "Press Ctrl-C or run 'knest dev down --dir %s' to stop.\n", o.Dir)

	exited := make(chan *devenv.Child, len(children))
	for _, c := range children {
		go func() {
			<-c.Exited()
			exited <- c
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(streams.ErrOut, "Stopping")
		return nil
	case c := <-exited:
		return fmt.Errorf("%s exited unexpectedly: %s (log: %s)", c.Name, c.LastLine(), c.LogPath)
	}
}

func waitReady(ctx context.Context, c *devenv.Child) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// findKnestd looks for knestd next to the knest binary, then on PATH.
func findKnestd(self string) (string, error) {
	beside := filepath.Join(filepath.Dir(self), "knestd")
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	if p, err := exec.LookPath("knestd"); err == nil {
		return p, nil
	}
	return "", errors.New("knestd binary not found next to knest or on PATH: run 'make build'")
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}
