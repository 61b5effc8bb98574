// Package devflags are the flags of the dev commands: `knest dev up|down`
// parses them for its help and forwards them, and the knest-dev binary
// (the devcluster, which those commands run) acts on them. It imports
// nothing that links the devcluster, so the portable knest CLI can use it.
package devflags

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/knest-dev/knest/pkg/policy"
)

// The host `knest dev up` starts without flags: two general nodes and one
// sandboxed, which the hard profile's pods need.
const (
	DefaultNodes          = 2
	DefaultSandboxedNodes = 1
	DefaultServiceCIDR    = "10.96.0.0/16"
	DefaultPodCIDR        = "10.244.0.0/14"
)

// Up are the flags of `knest dev up`.
type Up struct {
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
	SleepAfter     time.Duration
}

// UpLong is the long help of `knest dev up`.
const UpLong = `Starts the devcluster (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK-simulated nodes, one process of the knest-dev binary)
and one knestd per tenant, writes DIR/host.kubeconfig and
DIR/tenants/<tenant>.kubeconfig when they are ready, and stays in the
foreground. Ctrl-C (or 'knest dev down --dir DIR') stops every process it
started. Linux only; knest-dev and knestd are looked up next to knest, then
on PATH ('make build' puts both in bin/).`

// UpExample is the example of `knest dev up`.
const UpExample = `  # A host with tenant "demo" (hard isolation), data in ./_output/dev
  knest dev up --dir _output/dev

  # Two tenants with different profiles, four general nodes
  knest dev up --dir /tmp/dev --tenants team-a:hard,team-b:soft --nodes 4

  # Tenants that sleep after 5 idle minutes (knest-supervisor in front of knestd)
  knest dev up --dir /tmp/dev --sleep-after 5m`

// NewUp returns the defaults of `knest dev up`.
func NewUp() *Up {
	return &Up{Tenants: "demo", Nodes: DefaultNodes, SandboxedNodes: DefaultSandboxedNodes,
		ServiceCIDR: DefaultServiceCIDR, PodCIDR: DefaultPodCIDR, Isolation: policy.DefaultProfile}
}

// AddFlags registers the flags of `knest dev up`.
func (o *Up) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Dir, "dir", "", "directory for all data, logs and kubeconfigs (required)")
	f.StringVar(&o.Tenants, "tenants", o.Tenants, "comma-separated tenants, each NAME or NAME:PROFILE (soft or hard; NAME alone gets --isolation)")
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "number of general host nodes")
	f.IntVar(&o.SandboxedNodes, "sandboxed-nodes", o.SandboxedNodes, "number of host nodes in the sandboxed pool")
	f.IntVar(&o.Port, "port", 0, "host API server port (0 picks a free one)")
	f.StringVar(&o.ServiceCIDR, "service-cidr", o.ServiceCIDR, "host service CIDR (tenants use it too)")
	f.StringVar(&o.PodCIDR, "pod-cidr", o.PodCIDR, "host pod CIDR")
	f.StringVar(&o.PoolsFile, "pools", "", "YAML file of host node pools: name, count, labels, taints, cpu, memory, maxPods (replaces --nodes and --sandboxed-nodes)")
	f.Var(&o.Isolation, "isolation", "isolation profile of tenants listed without one: hard (kata RuntimeClass, sandboxed pool, images always pulled, Pod Security baseline) or soft (general nodes, baseline)")
	f.DurationVar(&o.SleepAfter, "sleep-after", 0, "run each tenant's knestd behind knest-supervisor, as the chart's sleep.enabled does, and let it sleep after this long without API requests from its users (knest sleep --tenant-kubeconfig puts it to sleep at once; the next request wakes it); 0: no supervisor")
	f.BoolVar(&o.HostNodeInfo, "host-node-info", false, "let every tenant's virtual nodes show their host node's zone, region, arch, OS, instance type and capacity (chart value hostNodeInfo)")
}

// Down are the flags of `knest dev down`.
type Down struct {
	Dir     string
	Timeout time.Duration
}

// DownExample is the example of `knest dev down`.
const DownExample = `  # Stop the environment 'knest dev up --dir _output/dev' runs
  knest dev down --dir _output/dev`

// NewDown returns the defaults of `knest dev down`.
func NewDown() *Down { return &Down{Timeout: time.Minute} }

// AddFlags registers the flags of `knest dev down`.
func (o *Down) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Dir, "dir", "", "directory of the environment (required)")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for it to stop")
}

// UpCommand returns the `up` command, with its help and flags, running run
// with the parsed flags: `knest dev up` forwards them, knest-dev acts.
func UpCommand(run func(cmd *cobra.Command, o *Up) error) *cobra.Command {
	o := NewUp()
	cmd := &cobra.Command{
		Use:     "up --dir DIR [--tenants a,b] [--nodes N]",
		Short:   "Start a local host cluster and tenant control planes (foreground)",
		Long:    UpLong,
		Example: UpExample,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return run(cmd, o) },
	}
	o.AddFlags(cmd.Flags())
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// DownCommand is UpCommand for `down`.
func DownCommand(run func(cmd *cobra.Command, o *Down) error) *cobra.Command {
	o := NewDown()
	cmd := &cobra.Command{
		Use:     "down --dir DIR",
		Short:   "Stop a knest dev environment started with 'knest dev up'",
		Example: DownExample,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return run(cmd, o) },
	}
	o.AddFlags(cmd.Flags())
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
