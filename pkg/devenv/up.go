package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/pkg/devenv/devflags"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

const (
	// HostReadyMessage is the line the devcluster logs once it is ready.
	HostReadyMessage = "Host cluster is ready"
	// TenantReadyMessage is the line knestd logs once its API server is
	// ready; Up waits for more: /readyz (waitReadyz).
	TenantReadyMessage = "Tenant control plane is ready"
	// StartTimeout bounds the wait for each process to be ready.
	StartTimeout = 3 * time.Minute
	// DefaultStopGrace is how long Stop waits for a process after SIGTERM.
	DefaultStopGrace = 10 * time.Second
)

// Options say what Up starts.
type Options struct {
	// Dir holds everything: data, logs and kubeconfigs (see Layout).
	Dir string
	// KnestDev is the knest-dev binary, which runs the host (`knest-dev
	// host`); Knestd runs each tenant.
	KnestDev, Knestd string
	// Supervisor, if set, is the knest-supervisor binary that runs in
	// front of each tenant's knestd, as the chart's sleep.enabled runs
	// it: the tenant can sleep (knest sleep) and wakes on a connection.
	// SleepAfter is knestd's --sleep-after then (0: only on request).
	Supervisor string
	SleepAfter time.Duration
	Host       HostOptions
	Tenants    []TenantOptions
	// Progress, if not nil, gets a line as each process starts, naming
	// its log.
	Progress io.Writer
	// StopGrace is how long Stop waits for each process after SIGTERM
	// before it kills it; zero means DefaultStopGrace.
	StopGrace time.Duration
}

// HostOptions are the devcluster's flags.
type HostOptions struct {
	// Port is the API server's port; 0 picks a free one.
	Port int
	// Nodes and SandboxedNodes are the nodes of the general and the
	// sandboxed pool; PoolsFile, if set, replaces both.
	Nodes, SandboxedNodes int
	PoolsFile             string
	// ServiceCIDR is the host's, and every tenant's: tenant Services carry
	// host ClusterIPs.
	ServiceCIDR, PodCIDR string
}

// DefaultHost is the host `knest dev up` starts without flags: two general
// nodes and one sandboxed, which the hard profile's pods need.
func DefaultHost() HostOptions {
	return HostOptions{Nodes: devflags.DefaultNodes, SandboxedNodes: devflags.DefaultSandboxedNodes,
		ServiceCIDR: devflags.DefaultServiceCIDR, PodCIDR: devflags.DefaultPodCIDR}
}

// TenantOptions say how one tenant is set up.
type TenantOptions struct {
	Tenant
	// HostNodeInfo grants the tenant's host identity get on Nodes (chart
	// value hostNodeInfo) and starts knestd with --host-node-info.
	HostNodeInfo bool
	// Values go over the chart values of a dev tenant; tests and
	// benchmarks of many pods turn the quota off with them.
	Values map[string]any
	// KnestdArgs follow the flags Up gives knestd, so they win.
	KnestdArgs []string
	// Deferred tenants get their host namespace, chart and identity, but
	// no knestd until StartKnestd.
	Deferred bool
}

// Env is a running dev environment: a devcluster host and its tenants.
type Env struct {
	Layout Layout
	// Host is the devcluster process.
	Host *Child
	// Tenants are in the order of Options.Tenants.
	Tenants []*TenantEnv
	opts    Options
}

// TenantEnv is a tenant of an Env.
type TenantEnv struct {
	TenantOptions
	// Namespace is the tenant's host namespace.
	Namespace string
	// APIServiceIP is the ClusterIP of the host Service in front of
	// knestd: the tenant's kubernetes Service and its pods' nameserver.
	APIServiceIP string
	// Knestd is the tenant's knestd process; nil until it is started.
	Knestd *Child
}

// Up starts a devcluster host, prepares each tenant's host namespace the
// way `knest create` would (labelled namespace, the chart without the
// knestd workload, a namespaced identity, the Service in front of knestd),
// starts a knestd per tenant syncing with that identity, and waits until
// all are ready. The host's kubeconfig and each tenant's are then in the
// Layout. On an error Up stops whatever it started.
func Up(ctx context.Context, o Options) (*Env, error) {
	if o.Host.Nodes < 1 && o.Host.PoolsFile == "" {
		return nil, fmt.Errorf("the host needs at least one node, got %d", o.Host.Nodes)
	}
	if o.Host.SandboxedNodes < 0 {
		return nil, fmt.Errorf("the host's sandboxed nodes must not be negative, got %d", o.Host.SandboxedNodes)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.StopGrace == 0 {
		o.StopGrace = DefaultStopGrace
	}
	e := &Env{Layout: Layout{Dir: o.Dir}, opts: o}
	if err := e.up(ctx); err != nil {
		if stopErr := e.Stop(); stopErr != nil {
			return nil, errors.Join(err, stopErr)
		}
		return nil, err
	}
	return e, nil
}

func (e *Env) up(ctx context.Context) error {
	if err := e.startHost(ctx); err != nil {
		return err
	}
	hostConfig, err := clientcmd.BuildConfigFromFlags("", e.Layout.HostKubeconfig())
	if err != nil {
		return err
	}
	hostClient, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	hostCA := filepath.Join(e.Layout.HostDir(), "pki", "ca.crt")
	for _, to := range e.opts.Tenants {
		if to.Profile == "" {
			to.Profile = policy.DefaultProfile
		}
		t := &TenantEnv{TenantOptions: to, Namespace: HostNamespace(to.Name)}
		e.Tenants = append(e.Tenants, t)
		// The namespace as `knest create` makes it (Pod Security at the
		// profile's level), then the chart without knestd, which runs here.
		if _, err := tenant.EnsureNamespace(ctx, hostClient, t.Namespace, t.Name, t.Profile); err != nil {
			return err
		}
		values := map[string]any{}
		if t.HostNodeInfo {
			values["hostNodeInfo"] = true
		}
		for k, v := range t.Values {
			values[k] = v
		}
		if err := InstallPolicies(ctx, hostConfig, t.Name, t.Namespace, t.Profile, values); err != nil {
			return err
		}
		if err := GrantHostIdentity(ctx, hostClient, hostConfig, hostCA, t.Namespace, e.Layout.TenantHostKubeconfig(t.Name)); err != nil {
			return err
		}
		if t.APIServiceIP, err = EnsureAPIService(ctx, hostClient, t.Namespace); err != nil {
			return err
		}
		if !t.Deferred {
			if err := e.startKnestd(t, t.KnestdArgs); err != nil {
				return err
			}
		}
	}
	// The tenants start side by side; then each is waited for.
	for _, t := range e.Tenants {
		if t.Knestd != nil {
			if err := e.waitKnestd(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Env) startHost(ctx context.Context) error {
	h := e.opts.Host
	args := []string{"host", "--dir=" + e.Layout.HostDir(), "--port=" + strconv.Itoa(h.Port),
		"--nodes=" + strconv.Itoa(h.Nodes), "--sandboxed-nodes=" + strconv.Itoa(h.SandboxedNodes)}
	if h.ServiceCIDR != "" {
		args = append(args, "--service-cidr="+h.ServiceCIDR)
	}
	if h.PodCIDR != "" {
		args = append(args, "--pod-cidr="+h.PodCIDR)
	}
	if h.PoolsFile != "" {
		abs, err := filepath.Abs(h.PoolsFile)
		if err != nil {
			return err
		}
		args = append(args, "--pools="+abs)
	}
	log := e.Layout.Log("host")
	fmt.Fprintf(e.opts.Progress, "Starting the host cluster (log: %s)\n", log)
	var err error
	if e.Host, err = StartChild("host cluster", log, HostReadyMessage, e.opts.KnestDev, args...); err != nil {
		return err
	}
	if err := waitReady(ctx, e.Host); err != nil {
		return err
	}
	return copyFile(filepath.Join(e.Layout.HostDir(), "admin.kubeconfig"), e.Layout.HostKubeconfig())
}

// Tenant returns the tenant named name, or nil.
func (e *Env) Tenant(name string) *TenantEnv {
	i := slices.IndexFunc(e.Tenants, func(t *TenantEnv) bool { return t.Name == name })
	if i < 0 {
		return nil
	}
	return e.Tenants[i]
}

// KnestdArgs are the flags Up starts t's knestd with: its data directory,
// its namespaced host identity, the host's service CIDR and the Service in
// front of it, then t.KnestdArgs.
func (e *Env) KnestdArgs(t *TenantEnv) []string {
	args := []string{
		"--data-dir=" + e.Layout.TenantDir(t.Name), "--name=" + t.Name, "--secure-port=0",
		"--host-kubeconfig=" + e.Layout.TenantHostKubeconfig(t.Name), "--host-namespace=" + t.Namespace,
		"--kubernetes-service-ip=" + t.APIServiceIP,
		// Tenants share this machine: free ports for each one's kubelet
		// API and DNS server; host pods resolve through the Service.
		"--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=" + t.APIServiceIP,
		"--isolation=" + t.Profile.String(),
	}
	if e.opts.Host.ServiceCIDR != "" {
		args = append(args, "--service-cidr="+e.opts.Host.ServiceCIDR)
	}
	if t.HostNodeInfo {
		args = append(args, "--host-node-info")
	}
	// Pool nodes are the chart's default, which grants what they need.
	if pool, ok := t.Values["poolNodes"].(bool); !ok || pool {
		args = append(args, "--pool-nodes")
	}
	// The dev policy (DevPolicy, written when Up starts the tenant), unless
	// the caller brings its own policy or profile, which a policy file must
	// match.
	if _, err := os.Stat(e.Layout.TenantPolicy(t.Name)); err == nil && !bringsPolicy(t.KnestdArgs) {
		args = append(args, "--policy-file="+e.Layout.TenantPolicy(t.Name))
	}
	return append(args, t.KnestdArgs...)
}

// bringsPolicy reports whether knestd arguments name a policy file or a
// profile of their own.
func bringsPolicy(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--policy-file") || strings.HasPrefix(a, "--isolation")
	})
}

// DevIngressClass is the host IngressClass a dev host has, which every dev
// tenant may use (under the same name) for the hostnames its policy allows:
// *.<tenant>.apps.example.com by default.
const DevIngressClass = "knest-dev"

// DevPolicy is the policy file of a dev tenant: the profile's defaults,
// Ingresses of class DevIngressClass (the default class) allowed, and
// HTTPRoutes and GRPCRoutes attached to the dev host's shared Gateway
// (devcluster.GatewayNamespace/GatewayName), whose CRDs the tenant then
// serves.
func DevPolicy(profile policy.Profile) ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"profile": profile.String(),
		"exposure": map[string]any{
			"ingressClasses":      map[string]string{DevIngressClass: DevIngressClass},
			"defaultIngressClass": DevIngressClass,
			"gateway":             map[string]string{"namespace": DevGatewayNamespace, "name": DevGatewayName},
		},
	})
}

// DevGatewayNamespace and DevGatewayName name the dev host's shared
// Gateway (devcluster.GatewayNamespace and GatewayName).
const (
	DevGatewayNamespace = "knest-gateway"
	DevGatewayName      = "knest-dev"
)

// StartKnestd starts t's knestd with KnestdArgs and then extraArgs, waits
// until it is ready and writes the tenant's kubeconfig. It is for deferred
// tenants and for restarts, once the previous knestd has exited.
func (e *Env) StartKnestd(ctx context.Context, t *TenantEnv, extraArgs ...string) error {
	if t.Knestd != nil {
		select {
		case <-t.Knestd.Exited():
		default:
			return fmt.Errorf("knestd of tenant %s still runs", t.Name)
		}
	}
	if err := e.startKnestd(t, extraArgs); err != nil {
		return err
	}
	return e.waitKnestd(ctx, t)
}

func (e *Env) startKnestd(t *TenantEnv, extraArgs []string) error {
	pol, err := DevPolicy(t.Profile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(e.Layout.TenantPolicy(t.Name)), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(e.Layout.TenantPolicy(t.Name), pol, 0o600); err != nil {
		return err
	}
	log := e.Layout.Log("tenant-" + t.Name)
	fmt.Fprintf(e.opts.Progress, "Starting tenant %s (log: %s)\n", t.Name, log)
	args := e.KnestdArgs(t)
	if bringsPolicy(extraArgs) {
		args = slices.DeleteFunc(args, func(a string) bool { return strings.HasPrefix(a, "--policy-file=") })
	}
	bin, args := e.knestdCommand(append(args, extraArgs...))
	child, err := StartChild("tenant "+t.Name, log, TenantReadyMessage, bin, args...)
	if err != nil {
		return err
	}
	t.Knestd = child
	return nil
}

// knestdCommand is the binary and arguments that run a tenant's knestd
// with args: knestd itself, or knest-supervisor in front of it.
func (e *Env) knestdCommand(args []string) (string, []string) {
	if e.opts.Supervisor == "" {
		return e.opts.Knestd, args
	}
	sup := append([]string{"--knestd", e.opts.Knestd, "--wake-timeout", "3m", "--"}, args...)
	if e.opts.SleepAfter > 0 {
		sup = append(sup, "--sleep-after="+e.opts.SleepAfter.String())
	}
	return e.opts.Supervisor, sup
}

func (e *Env) waitKnestd(ctx context.Context, t *TenantEnv) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	admin := filepath.Join(e.Layout.TenantDir(t.Name), "admin.kubeconfig")
	if err := waitReadyz(ctx, t.Knestd, admin); err != nil {
		return err
	}
	return copyFile(admin, e.Layout.TenantKubeconfig(t.Name))
}

// ReadyzPoll is how often waitReadyz asks.
const ReadyzPoll = 250 * time.Millisecond

// waitReadyz waits until knestd's /readyz answers ok: its API server is
// ready, and, when it syncs, the syncer's caches have synced and its DNS
// server answers (the checks readyzcheck.Syncer and readyzcheck.DNS); and until the
// default kubernetes Service exists. knestd writes
// kubeconfig once its API server is ready; a file from an earlier run
// only reaches this run's API server, as the previous knestd has exited.
func waitReadyz(ctx context.Context, c *Child, kubeconfig string) error {
	last, lastNamedChecks := "no admin kubeconfig yet", false
	for {
		select {
		case <-c.Exited():
			// Let the log pump catch up with the last line.
			time.Sleep(50 * time.Millisecond)
			return fmt.Errorf("%s exited before it was ready: %s (log: %s)", c.Name, c.LastLine(), c.LogPath)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("interrupted while waiting for %s to start", c.Name)
			}
			return fmt.Errorf("%s was not ready in time (%s; log: %s): %w", c.Name, last, c.LogPath, ctx.Err())
		case <-time.After(ReadyzPoll):
		}
		ok, why, checks := readyz(ctx, kubeconfig)
		if ok {
			return nil
		}
		// Once /readyz has named failing checks, a later poll that only
		// timed out does not hide them.
		if checks || !lastNamedChecks {
			last, lastNamedChecks = why, checks
		}
	}
}

// readyz asks /readyz once; when not ready it says why, and whether that
// names failing checks.
func readyz(ctx context.Context, kubeconfig string) (ok bool, why string, checks bool) {
	if _, err := os.Stat(kubeconfig); err != nil {
		return false, "no admin kubeconfig yet", false
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false, err.Error(), false
	}
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err.Error(), false
	}
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "").DoRaw(ctx)
	if err != nil {
		failed := lastFailed(string(body), "")
		if failed == "" {
			return false, "/readyz: " + err.Error(), false
		}
		return false, "/readyz: " + failed, true
	}
	// The API server makes the default kubernetes Service (which pods and
	// the tenant's DNS name) only once its own /readyz is ok, so it can be
	// missing for a moment after: ready means it is there too.
	if _, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{}); err != nil {
		return false, "the API server has not made the default/kubernetes Service yet: " + err.Error(), false
	}
	return true, "", false
}

// lastFailed picks the failed checks out of a verbose /readyz body.
func lastFailed(body, fallback string) string {
	var failed []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, strings.TrimPrefix(line, "[-]"))
		}
	}
	if len(failed) == 0 {
		return fallback
	}
	return strings.Join(failed, "; ")
}

// Processes are the host and every tenant's knestd that was started.
func (e *Env) Processes() []*Child {
	var out []*Child
	if e.Host != nil {
		out = append(out, e.Host)
	}
	for _, t := range e.Tenants {
		if t.Knestd != nil {
			out = append(out, t.Knestd)
		}
	}
	return out
}

// Stop stops every process, the tenants before the host they sync with.
func (e *Env) Stop() error {
	procs := e.Processes()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		errs = append(errs, procs[i].Stop(e.opts.StopGrace))
	}
	return errors.Join(errs...)
}

func waitReady(ctx context.Context, c *Child) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	return c.WaitReady(ctx)
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
