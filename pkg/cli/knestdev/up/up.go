// Package up is `knest dev up` (the knest-dev binary's `up`, which knest
// runs): start a devcluster host and one knestd per
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
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/devenv/devflags"
)

// Options are the flags of `knest dev up`.
type Options = devflags.Up

// NewCommand returns the `up` command of knest-dev, which `knest dev up`
// runs.
func NewCommand(streams cli.Streams) *cobra.Command {
	return devflags.UpCommand(func(cmd *cobra.Command, o *devflags.Up) error {
		return Run(cmd.Context(), streams, *o)
	})
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

	if o.SleepAfter < 0 {
		return fmt.Errorf("--sleep-after %s is negative", o.SleepAfter)
	}
	supervisor := ""
	if o.SleepAfter > 0 {
		if supervisor, err = findBeside(knestd, "knest-supervisor"); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := devenv.Options{
		Dir: o.Dir, KnestDev: self, Knestd: knestd, Supervisor: supervisor, SleepAfter: o.SleepAfter, Progress: streams.ErrOut,
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

	kubectl := KubectlCommand(self)
	fmt.Fprintf(streams.Out, "knest dev is up. Host cluster:\n    %s --kubeconfig %s get nodes\n", kubectl, layout.HostKubeconfig())
	for _, t := range tenants {
		fmt.Fprintf(streams.Out, "Tenant %s (host namespace %s, %s isolation):\n    %s --kubeconfig %s get namespaces\n",
			t.Name, devenv.HostNamespace(t.Name), t.Profile, kubectl, layout.TenantKubeconfig(t.Name))
	}
	if o.SleepAfter > 0 {
		fmt.Fprintf(streams.Out, "Tenants run behind %s and sleep after %s without requests from their users; the next request wakes them.\n", supervisor, o.SleepAfter)
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

// KubectlCommand is the kubectl to suggest: the one `make build` puts next
// to knest-dev (built from the Kubernetes release the clusters run, so
// within the supported version skew), relative to the working directory
// when it is below it, else plain kubectl from PATH.
func KubectlCommand(self string) string {
	beside := filepath.Join(filepath.Dir(self), "kubectl")
	if st, err := os.Stat(beside); err != nil || st.IsDir() {
		return "kubectl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, beside); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return beside
}

// findBeside looks for the binary name next to knestd (the supervisor runs
// knestd from there), then on PATH.
func findBeside(knestd, name string) (string, error) {
	beside := filepath.Join(filepath.Dir(knestd), name)
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("--sleep-after needs %s, not found next to %s or on PATH: run 'make build', which puts it in bin/", name, knestd)
}

// findKnestd looks for knestd next to the knest-dev binary, then on PATH.
func findKnestd(self string) (string, error) {
	beside := filepath.Join(filepath.Dir(self), "knestd")
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	if p, err := exec.LookPath("knestd"); err == nil {
		return p, nil
	}
	return "", errors.New("knestd binary not found next to knest-dev or on PATH: run 'make build', which puts both in bin/")
}
