package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
)

const (
	hostReadyMessage   = "Host cluster is ready"
	tenantReadyMessage = "Tenant control plane is ready"
	// nodeMaxPods is the devcluster's default pod capacity of a node.
	nodeMaxPods = 1000
	// serviceCIDR is the devcluster's default; the tenant shares it.
	serviceCIDR  = "10.96.0.0/16"
	startTimeout = 3 * time.Minute
	stopGrace    = 30 * time.Second
)

// env is the running host and tenant of one benchmark.
type env struct {
	host, knestd   *devenv.Child
	hostAdmin      kubernetes.Interface
	hostServer     string
	direct         kubernetes.Interface
	tenant         kubernetes.Interface
	metricsAddress string
	// profilingAddress serves knestd's pprof profiles.
	profilingAddress string
	nodes            int
	podCIDR          string
	directNamespace  string
	tenantNamespace  string
}

// stop stops knestd, then the host it syncs with.
func (e *env) stop() error {
	var errs []error
	for _, c := range []*devenv.Child{e.knestd, e.host} {
		if c != nil {
			errs = append(errs, c.Stop(stopGrace))
		}
	}
	return errors.Join(errs...)
}

// sizeHost returns the nodes of each pool and the pod CIDR for pods pods at
// a time. Both pools get the nodes: a tenant's isolation profile may force a
// sandboxed RuntimeClass onto its pods. Nodes have no pod CIDR of their own (the devcluster allocates none):
// KWOK hands out every node's pod IPs from the one --pod-cidr, so it needs
// an address per pod, with room to spare for IPs not yet reused.
func sizeHost(pods int) (nodes int, cidr string) {
	nodes = max(2, int(math.Ceil(float64(pods)/nodeMaxPods))+1)
	hostBits := max(16, bits.Len(uint(4*pods)))
	return nodes, "10.128.0.0/" + strconv.Itoa(32-hostBits)
}

type envConfig struct {
	dir, knest, knestd string
	pods               int
	qps                float32
	burst              int
	knestdArgs         []string
}

// startEnv starts a devcluster sized for the pods, a host namespace for the
// direct run and one for the tenant, each with a namespaced identity, and
// knestd syncing into the tenant's with the QPS/burst budget.
func startEnv(ctx context.Context, c envConfig) (*env, error) {
	e := &env{directNamespace: "bench-direct", tenantNamespace: "bench-tenant"}
	e.nodes, e.podCIDR = sizeHost(c.pods)
	hostDir := filepath.Join(c.dir, "host")
	var err error
	e.host, err = devenv.StartChild("devcluster", filepath.Join(c.dir, "host.log"), hostReadyMessage, c.knest,
		"dev", "host", "--dir="+hostDir, "--nodes="+strconv.Itoa(e.nodes), "--sandboxed-nodes="+strconv.Itoa(e.nodes),
		"--pod-cidr="+e.podCIDR, "--service-cidr="+serviceCIDR)
	if err != nil {
		return e, err
	}
	if err := waitReady(ctx, e.host); err != nil {
		return e, err
	}
	adminConfig, err := clientcmd.BuildConfigFromFlags("", filepath.Join(hostDir, "admin.kubeconfig"))
	if err != nil {
		return e, err
	}
	e.hostServer = adminConfig.Host
	// Set-up, watches and clean-up only: never the measured creates.
	adminConfig.QPS, adminConfig.Burst = 1000, 2000
	if e.hostAdmin, err = kubernetes.NewForConfig(adminConfig); err != nil {
		return e, err
	}
	identity := func(ns string) (string, error) {
		if _, err := e.hostAdmin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("failed to create namespace %s in host cluster: %w", ns, err)
		}
		// The chart's identity and policies, as knest dev installs them,
		// minus the quota and defaults a benchmark of many pods would hit.
		values := map[string]any{"quota": map[string]any{"enabled": false}, "limitRange": map[string]any{"enabled": false}}
		if err := devenv.InstallPolicies(ctx, adminConfig, ns, ns, policy.DefaultProfile, values); err != nil {
			return "", err
		}
		path := filepath.Join(c.dir, ns+".kubeconfig")
		return path, devenv.GrantHostIdentity(ctx, e.hostAdmin, adminConfig, filepath.Join(hostDir, "pki", "ca.crt"), ns, path)
	}
	// The direct creator gets the same kind of identity as the syncer (a
	// namespaced ServiceAccount token), so authentication and authorization
	// cost the host the same.
	directKubeconfig, err := identity(e.directNamespace)
	if err != nil {
		return e, err
	}
	tenantKubeconfig, err := identity(e.tenantNamespace)
	if err != nil {
		return e, err
	}
	directConfig, err := clientcmd.BuildConfigFromFlags("", directKubeconfig)
	if err != nil {
		return e, err
	}
	directConfig.QPS, directConfig.Burst = c.qps, c.burst
	if e.direct, err = kubernetes.NewForConfig(directConfig); err != nil {
		return e, err
	}
	// Pods of the direct run need the namespace's default ServiceAccount,
	// which the host's controller-manager creates shortly after the
	// namespace.
	if err := waitServiceAccount(ctx, e.hostAdmin, e.directNamespace); err != nil {
		return e, fmt.Errorf("host cluster: %w", err)
	}

	port, err := freePort()
	if err != nil {
		return e, err
	}
	e.metricsAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if port, err = freePort(); err != nil {
		return e, err
	}
	e.profilingAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tenantDir := filepath.Join(c.dir, "tenant")
	args := append([]string{
		"--data-dir=" + tenantDir, "--name=" + tenantName, "--secure-port=0", "--service-cidr=" + serviceCIDR,
		"--host-kubeconfig=" + tenantKubeconfig, "--host-namespace=" + e.tenantNamespace,
		"--host-qps=" + strconv.FormatFloat(float64(c.qps), 'f', -1, 32), "--host-burst=" + strconv.Itoa(c.burst),
		"--syncer-metrics-address=" + e.metricsAddress,
		"--profiling-address=" + e.profilingAddress,
		// Free ports: other knestd processes may run on this machine.
		"--kubelet-port=0", "--dns-address=127.0.0.1:0",
	}, c.knestdArgs...)
	e.knestd, err = devenv.StartChild("knestd", filepath.Join(c.dir, "knestd.log"), tenantReadyMessage, c.knestd, args...)
	if err != nil {
		return e, err
	}
	if err := waitReady(ctx, e.knestd); err != nil {
		return e, err
	}
	tenantConfig, err := clientcmd.BuildConfigFromFlags("", filepath.Join(tenantDir, "admin.kubeconfig"))
	if err != nil {
		return e, err
	}
	// Unthrottled: the tenant API server is local and serves only this
	// benchmark; its clients would otherwise set the pace of the tenant run.
	tenantConfig.QPS = -1
	if e.tenant, err = kubernetes.NewForConfig(tenantConfig); err != nil {
		return e, err
	}
	if err := waitServiceAccount(ctx, e.tenant, tenantNamespace); err != nil {
		return e, fmt.Errorf("tenant cluster: %w", err)
	}
	// The syncer serves metrics once its manager runs.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := scrape(ctx, e.metricsAddress)
		return err == nil, nil
	})
	if err != nil {
		return e, fmt.Errorf("syncer metrics not served at %s: %w", e.metricsAddress, err)
	}
	return e, nil
}

func waitReady(ctx context.Context, c *devenv.Child) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return c.WaitReady(ctx)
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
