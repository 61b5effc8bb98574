// Package syncenv starts what a benchmark of the syncer measures, with
// devenv.Up as knest dev up does: a devcluster sized for N pods, a tenant
// whose knestd syncs with a given host budget and serves its metrics and
// profiles, and a second host namespace with the same kind of identity for
// pods created directly, without a syncer. It hands out the clients and
// marks the CPU time of the processes involved.
package syncenv

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/hack/bench/internal/metrics"
	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
	"github.com/knest-dev/knest/internal/freeport"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
)

const (
	// TenantName is the tenant's name, and so the marker label's value on
	// its host objects.
	TenantName = "bench"
	// directName is the stand-in tenant whose host namespace and identity
	// the direct creator uses; no knestd runs for it.
	directName = "bench-direct"
	// NodeMaxPods is the devcluster's default pod capacity of a node.
	NodeMaxPods = 1000
)

// Config says what to start.
type Config struct {
	// Dir holds the data and logs.
	Dir string
	// KnestDev and Knestd are the binaries.
	KnestDev, Knestd string
	// Pods is how many pods the host must hold at once.
	Pods int
	// QPS and Burst are the syncer's host budget (--host-qps,
	// --host-burst) and the direct creator's.
	QPS   float64
	Burst int
	// KnestdArgs are extra knestd flags.
	KnestdArgs []string
}

// Env is the running host and tenant of one benchmark.
type Env struct {
	Dev    *devenv.Env
	Knestd *devenv.Child
	// HostAdmin is for set-up, watches and clean-up, never the measured
	// creates; HostServer is the host API server's URL.
	HostAdmin  kubernetes.Interface
	HostServer string
	// Direct is the direct creator, with the syncer's budget, in
	// DirectNamespace; Tenant is the tenant's admin, unthrottled.
	Direct, Tenant                   kubernetes.Interface
	DirectNamespace, TenantNamespace string
	// MetricsURL is knestd's syncer metrics endpoint; ProfilingAddress
	// serves its pprof profiles.
	MetricsURL, ProfilingAddress string
	// Nodes is the host's nodes in each pool, PodCIDR its pod CIDR.
	Nodes   int
	PodCIDR string
}

// SizeHost returns the nodes of each pool and the pod CIDR for pods pods at
// a time. Both pools get the nodes: a tenant's isolation profile may force a
// sandboxed RuntimeClass onto its pods. Nodes have no pod CIDR of their own
// (the devcluster allocates none): KWOK hands out every node's pod IPs from
// the one --pod-cidr, so it needs an address per pod, with room to spare for
// IPs not yet reused.
func SizeHost(pods int) (nodes int, cidr string) {
	nodes = max(2, int(math.Ceil(float64(pods)/NodeMaxPods))+1)
	hostBits := max(16, bits.Len(uint(4*pods)))
	return nodes, "10.128.0.0/" + strconv.Itoa(32-hostBits)
}

// Start starts the host, the tenant and the direct creator's namespace,
// and waits until both sides can take pods and the syncer serves metrics.
// The direct creator is the same kind of identity as the syncer (a
// namespaced ServiceAccount token), so authentication and authorization
// cost the host the same. On an error after the processes started, Start
// returns the Env to stop along with the error.
func Start(ctx context.Context, c Config) (*Env, error) {
	e := &Env{}
	e.Nodes, e.PodCIDR = SizeHost(c.Pods)
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	e.MetricsURL, e.ProfilingAddress = "http://"+ports[0]+"/metrics", ports[1]
	// The chart as knest dev installs it, minus the quota and defaults a
	// benchmark of many pods would hit.
	values := map[string]any{"quota": map[string]any{"enabled": false}, "limitRange": map[string]any{"enabled": false}}
	host := devenv.DefaultHost()
	host.Nodes, host.SandboxedNodes, host.PodCIDR = e.Nodes, e.Nodes, e.PodCIDR
	e.Dev, err = devenv.Up(ctx, devenv.Options{
		Dir: c.Dir, KnestDev: c.KnestDev, Knestd: c.Knestd, Host: host, StopGrace: 30 * time.Second,
		Tenants: []devenv.TenantOptions{
			{Tenant: devenv.Tenant{Name: TenantName, Profile: policy.DefaultProfile}, Values: values, KnestdArgs: append([]string{
				"--host-qps=" + strconv.FormatFloat(c.QPS, 'f', -1, 32), "--host-burst=" + strconv.Itoa(c.Burst),
				"--syncer-metrics-address=" + ports[0], "--profiling-address=" + ports[1],
			}, c.KnestdArgs...)},
			{Tenant: devenv.Tenant{Name: directName, Profile: policy.DefaultProfile}, Values: values, Deferred: true},
		},
	})
	if err != nil {
		return nil, err
	}
	t := e.Dev.Tenant(TenantName)
	e.Knestd, e.TenantNamespace, e.DirectNamespace = t.Knestd, t.Namespace, e.Dev.Tenant(directName).Namespace
	return e, e.connect(ctx, c)
}

// Stop stops knestd, then the host.
func (e *Env) Stop() error { return e.Dev.Stop() }

// connect makes the clients and waits until both sides can take pods.
func (e *Env) connect(ctx context.Context, c Config) error {
	l := e.Dev.Layout
	client := func(kubeconfig string, qps float32, burst int) (kubernetes.Interface, string, error) {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, "", err
		}
		cfg.QPS, cfg.Burst = qps, burst
		c, err := kubernetes.NewForConfig(cfg)
		return c, cfg.Host, err
	}
	var err error
	// Set-up, watches and clean-up only: never the measured creates.
	if e.HostAdmin, e.HostServer, err = client(l.HostKubeconfig(), 1000, 2000); err != nil {
		return err
	}
	if e.Direct, _, err = client(l.TenantHostKubeconfig(directName), float32(c.QPS), c.Burst); err != nil {
		return err
	}
	// Unthrottled: the tenant API server is local and serves only this
	// benchmark; its clients would otherwise set the pace of the tenant run.
	if e.Tenant, _, err = client(l.TenantKubeconfig(TenantName), -1, 0); err != nil {
		return err
	}
	// Pods need their namespace's default ServiceAccount, which a
	// controller-manager creates shortly after the namespace.
	if err := waitServiceAccount(ctx, e.HostAdmin, e.DirectNamespace); err != nil {
		return fmt.Errorf("host cluster: %w", err)
	}
	if err := waitServiceAccount(ctx, e.Tenant, "default"); err != nil {
		return fmt.Errorf("tenant cluster: %w", err)
	}
	// The syncer serves metrics once its manager runs.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := metrics.Scrape(ctx, e.MetricsURL)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("syncer metrics not served at %s: %w", e.MetricsURL, err)
	}
	return nil
}

func waitServiceAccount(ctx context.Context, client kubernetes.Interface, ns string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("no default ServiceAccount in %s: %w", ns, err)
	}
	return nil
}

// freePorts returns n loopback addresses whose ports were free a moment
// ago (internal/freeport).
func freePorts(n int) ([]string, error) {
	ports, err := freeport.Loopback(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for _, p := range ports {
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return out, nil
}

// MarkCPU marks the CPU seconds of the host, knestd and this process.
func (e *Env) MarkCPU() proccpu.Mark {
	return proccpu.Take(e.Dev.Host.Pid(), e.Knestd.Pid(), os.Getpid())
}

// CPUUse is the cores each process kept busy during a run; other is the
// rest of the machine (other engineers' builds, and perf if it runs).
type CPUUse struct {
	WallSeconds float64 `json:"wall_seconds"`
	HostCores   float64 `json:"host_cores"`
	KnestdCores float64 `json:"knestd_cores"`
	BenchCores  float64 `json:"bench_cores"`
	OtherCores  float64 `json:"other_cores"`
	// *MSPerPod is the CPU time each process spent per pod of the run.
	HostMSPerPod   float64 `json:"host_cpu_ms_per_pod"`
	KnestdMSPerPod float64 `json:"knestd_cpu_ms_per_pod"`
}

// CPUBetween returns the CPU use between two of MarkCPU's marks, per pod
// of the n pods of a run.
func CPUBetween(a, b proccpu.Mark, n int) (CPUUse, error) {
	cores, other, wall, err := proccpu.Cores(a, b)
	if err != nil {
		return CPUUse{}, err
	}
	msPerPod := func(c float64) float64 { return stats.Round(1000 * c * wall.Seconds() / float64(n)) }
	return CPUUse{
		WallSeconds: stats.Round(wall.Seconds()),
		HostCores:   stats.Round(cores[0]), KnestdCores: stats.Round(cores[1]), BenchCores: stats.Round(cores[2]),
		OtherCores:   stats.Round(other),
		HostMSPerPod: msPerPod(cores[0]), KnestdMSPerPod: msPerPod(cores[1]),
	}, nil
}
