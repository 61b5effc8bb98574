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

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
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
	h := devenv.DefaultHost()
	o := Options{Tenants: "demo", Nodes: h.Nodes, SandboxedNodes: h.SandboxedNodes, ServiceCIDR: h.ServiceCIDR, PodCIDR: h.PodCIDR, Isolation: policy.DefaultProfile}
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
	if o.PoolsFile != "" {
		// Checked here so a bad file fails in one line before anything starts.
		if _, err := pools.Load(o.PoolsFile); err != nil {
			return err
		}
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
	opts := devenv.Options{
		Dir: o.Dir, Knest: self, Knestd: knestd, Progress: streams.ErrOut,
		Host: devenv.HostOptions{Port: o.Port, Nodes: o.Nodes, SandboxedNodes: o.SandboxedNodes, PoolsFile: o.PoolsFile,
			ServiceCIDR: o.ServiceCIDR, PodCIDR: o.PodCIDR},
	}
	for _, t := range tenants {
		opts.Tenants = append(opts.Tenants, devenv.TenantOptions{Tenant: t, HostNodeInfo: o.HostNodeInfo})
	}
	env, err := devenv.Up(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(streams.ErrOut, "knest:", err)
		}
	}()

	fmt.Fprintf(streams.Out, "knest dev is up. Host cluster:\n    kubectl --kubeconfig %s get nodes\n", layout.HostKubeconfig())
	for _, t := range tenants {
		fmt.Fprintf(streams.Out, "Tenant %s (host namespace %s, %s isolation):\n    kubectl --kubeconfig %s get namespaces\n",
			t.Name, devenv.HostNamespace(t.Name), t.Profile, layout.TenantKubeconfig(t.Name))
	}
	fmt.Fprintf(streams.Out, "Press Ctrl-C or run 'knest dev down --dir %s' to stop.\n", o.Dir)

	children := env.Processes()
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
