package devcluster

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	kwokinternal "sigs.k8s.io/kwok/pkg/apis/internalversion"
	kwokv1alpha1 "sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	kwokcontrollers "sigs.k8s.io/kwok/pkg/kwok/controllers"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
	"github.com/knest-dev/knest/pkg/devcluster/simkubelet"
	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/servicecidr"
)

const (
	// ReadyMessage is logged once the host cluster is ready.
	ReadyMessage = "Host cluster is ready"
	// KataRuntimeClass is the sandboxed RuntimeClass's name.
	KataRuntimeClass = "kata"
	// IngressClass is the host IngressClass dev tenants expose apps with
	// (devenv.DevIngressClass). No controller serves it: tests and users
	// play the controller by writing a host Ingress's status.
	IngressClass = "knest-dev"
	// ingressController is IngressClass's controller name.
	ingressController = "knest.io/dev-ingress"
	// kwokNodeAnnotation marks the nodes KWOK manages.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// nodeIP is every node's InternalIP: the API server reaches the nodes'
	// kubelet API (pkg/kubelet with the simkubelet backend) there.
	nodeIP = "127.0.0.1"
)

//go:embed stages/pod-complete.yaml
var podCompleteStage string

//go:embed stages/pod-delete.yaml
var podDeleteStage string

// Config configures a devcluster.
type Config struct {
	// Dir holds the cluster's data; admin.kubeconfig appears there when ready.
	Dir string
	// BindAddress and Port are where the API server listens; port 0 picks one.
	BindAddress string
	Port        int
	// KubeletPort is where the nodes' kubelet API (logs, exec, attach,
	// port-forward) listens on 127.0.0.1; 0 picks a free port at every start.
	KubeletPort int
	// ServiceCIDR and PodCIDR are the host's service and pod networks.
	ServiceCIDR string
	PodCIDR     string
	// Pools are the simulated nodes.
	Pools []pools.NodePool
}

// DefaultConfig returns a devcluster with general nodes and one sandboxed node.
func DefaultConfig(dir string, generalNodes int) Config {
	return Config{
		Dir:         dir,
		BindAddress: "127.0.0.1",
		Port:        0,
		// A /16 of services and a /14 of pods: room for thousands of pods.
		ServiceCIDR: "10.96.0.0/16",
		PodCIDR:     "10.244.0.0/14",
		Pools:       pools.Defaults(generalNodes, 1),
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("a data directory is required"))
	}
	if _, err := servicecidr.FirstIP(c.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("service CIDR %w", err))
	}
	if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
		errs = append(errs, fmt.Errorf("pod CIDR %q is not a CIDR", c.PodCIDR))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range", c.Port))
	}
	if c.KubeletPort < 0 || c.KubeletPort > 65535 {
		errs = append(errs, fmt.Errorf("kubelet port %d is out of range", c.KubeletPort))
	}
	if err := pools.Validate(c.Pools); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Cluster is a running devcluster.
type Cluster struct {
	inst       *controlplane.Instance
	Kubeconfig string
	failed     chan error
}

// Start brings the devcluster up and returns once every node is Ready.
func Start(ctx context.Context, c Config) (*Cluster, error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	stages, err := loadStages()
	if err != nil {
		return nil, err
	}
	// Bound first: a port in use is reported before anything starts, and
	// KWOK needs the port for the nodes it initializes.
	kubeletAddress := net.JoinHostPort(nodeIP, strconv.Itoa(c.KubeletPort))
	kubeletListener, err := net.Listen("tcp", kubeletAddress)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for the nodes' kubelet API: %w", kubeletAddress, errors.Unwrap(err))
	}
	kubeletPort := kubeletListener.Addr().(*net.TCPAddr).Port
	// controlplane.Start creates the CA here; the internal CA signs both
	// ends of the kubelet connection.
	caFile := pki.FilesIn(controlplane.LayoutOf(c.Dir).PKI).InternalCACert

	inst, err := controlplane.Start(ctx, controlplane.Spec{
		Name: "knest-host", DataDir: c.Dir, BindAddress: c.BindAddress, Port: c.Port,
		AdvertiseAddress: net.ParseIP("127.0.0.1"), ServiceCIDR: c.ServiceCIDR,
		ClusterDomain: "cluster.local",
		// A host cluster runs every default controller, node lifecycle
		// included: KWOK keeps the nodes' leases fresh.
		Controllers: []string{"*"},
		APIServerFlags: []string{
			// Admin clients of this process create thousands of pods in the
			// benchmarks; the defaults would queue them.
			"--max-requests-inflight=2000", "--max-mutating-requests-inflight=1000",
			// A node's Hostname address (its name) does not resolve; its
			// InternalIP is where its kubelet API listens, with a
			// certificate from the internal CA.
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-certificate-authority=" + caFile,
		},
	})
	if err != nil {
		kubeletListener.Close()
		return nil, err
	}
	cl := &Cluster{inst: inst, Kubeconfig: filepath.Join(c.Dir, "admin.kubeconfig"), failed: make(chan error, 4)}
	fail := func(err error) (*Cluster, error) {
		kubeletListener.Close()
		inst.Stop("start failed")
		return nil, err
	}

	// The scheduler and KWOK use the admin identity: this is a local
	// development cluster, and both need cluster-wide access anyway.
	componentsKubeconfig := filepath.Join(c.Dir, "components.kubeconfig")
	if err := inst.WriteAdminKubeconfig(componentsKubeconfig); err != nil {
		return fail(err)
	}
	cfg := *inst.AdminConfig
	cfg.QPS, cfg.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return fail(err)
	}

	go func() {
		err := runScheduler(ctx, componentsKubeconfig)
		if ctx.Err() == nil {
			cl.failed <- fmt.Errorf("kube-scheduler stopped: %w", err)
		}
	}()

	simulated, err := simkubelet.New(simkubelet.Config{Dir: c.Dir, Pods: client.CoreV1()})
	if err != nil {
		return fail(err)
	}
	kubeletAPI, err := kubelet.New(kubelet.Config{
		Listener: kubeletListener, Pods: client.CoreV1(), Backend: simulated,
		CACertFile: inst.Files.InternalCACert, CAKeyFile: inst.Files.InternalCAKey, ClientCertFile: inst.Files.KubeletClientCert,
		Addresses: []net.IP{net.ParseIP(nodeIP)},
	})
	if err != nil {
		return fail(err)
	}
	go simulated.Run(ctx)
	go func() {
		err := kubeletAPI.Run(ctx)
		if ctx.Err() == nil {
			cl.failed <- err
		}
	}()

	id, err := kwokcontrollers.Identity()
	if err != nil {
		return fail(err)
	}
	kwok, err := kwokcontrollers.NewController(kwokcontrollers.Config{
		Clock:                             clock.RealClock{},
		TypedClient:                       client,
		ManageNodesWithAnnotationSelector: kwokNodeAnnotation + "=fake",
		CIDR:                              c.PodCIDR,
		NodeIP:                            nodeIP,
		NodePort:                          kubeletPort,
		LocalStages:                       stages,
		PodPlayStageParallelism:           8,
		NodePlayStageParallelism:          4,
		NodeLeaseDurationSeconds:          40,
		NodeLeaseParallelism:              4,
		PodsOnNodeSyncParallelism:         2,
		EnablePodsOnNodeSyncListPager:     true,
		ID:                                id,
	})
	if err != nil {
		return fail(fmt.Errorf("kwok: %w", err))
	}
	if err := kwok.Start(ctx); err != nil {
		return fail(fmt.Errorf("kwok: %w", err))
	}

	if err := ensureNodes(ctx, client, c.Pools, kubeletPort); err != nil {
		return fail(err)
	}
	if err := ensureRuntimeClass(ctx, client); err != nil {
		return fail(err)
	}
	if err := ensureIngressClass(ctx, client); err != nil {
		return fail(err)
	}
	if err := ensureGateway(ctx, &cfg); err != nil {
		return fail(err)
	}
	// What an operator installs once per host before tenants expose apps.
	if err := hostclaim.Install(ctx, client); err != nil {
		return fail(err)
	}
	if err := waitNodesReady(ctx, client, c.Pools); err != nil {
		return fail(err)
	}
	if err := inst.WriteAdminKubeconfig(cl.Kubeconfig); err != nil {
		return fail(err)
	}
	logger.Info(ReadyMessage, "server", inst.Server, "kubeconfig", cl.Kubeconfig,
		"nodes", totalNodes(c.Pools), "kubeletPort", kubeletPort, "elapsed", time.Since(start).Round(time.Millisecond).String())
	go func() {
		if err, ok := <-inst.Failed(); ok {
			cl.failed <- err
		}
	}()
	return cl, nil
}

// Server is the API server URL.
func (c *Cluster) Server() string { return c.inst.Server }

// Failed delivers the first component failure after start-up.
func (c *Cluster) Failed() <-chan error { return c.failed }

// Stop stops the control plane. The scheduler and KWOK stop with the
// context passed to Start, which the caller cancels first.
func (c *Cluster) Stop(reason string) { c.inst.Stop(reason) }

// WriteKubeconfig writes a cluster-admin kubeconfig to path.
func (c *Cluster) WriteKubeconfig(path string) error { return c.inst.WriteAdminKubeconfig(path) }

// NewClient returns an admin client for the cluster.
func (c *Cluster) NewClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.inst.AdminConfig)
}

func totalNodes(ps []pools.NodePool) int {
	n := 0
	for _, p := range ps {
		n += p.Count
	}
	return n
}

// NodeName is the name of the i-th node of a pool.
func NodeName(pool string, i int) string { return "kwok-" + pool + "-" + strconv.Itoa(i) }

// ensureNodes creates the pools' nodes. KWOK initializes a new node's
// status, kubelet port included; a node kept from an earlier start is Ready
// already, so KWOK leaves it alone and it is told this start's port here.
func ensureNodes(ctx context.Context, client kubernetes.Interface, ps []pools.NodePool, kubeletPort int) error {
	for _, p := range ps {
		for i := 0; i < p.Count; i++ {
			name := NodeName(p.Name, i)
			labels := map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok", pools.Label: p.Name,
			}
			for k, v := range p.Labels {
				labels[k] = v
			}
			capacity := corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(p.CPU),
				corev1.ResourceMemory: resource.MustParse(p.Memory),
				corev1.ResourcePods:   *resource.NewQuantity(int64(p.MaxPods), resource.DecimalSI),
			}
			node := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name: name, Labels: labels,
					Annotations: map[string]string{kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
				},
				Spec:   corev1.NodeSpec{Taints: p.Taints},
				Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
			}
			_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				patch := fmt.Sprintf(`{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, kubeletPort)
				_, err = client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
				if err != nil {
					return fmt.Errorf("failed to set the kubelet port of node %s: %w", name, err)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("failed to create node %s: %w", name, err)
			}
		}
	}
	return nil
}

func ensureRuntimeClass(ctx context.Context, client kubernetes.Interface) error {
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: KataRuntimeClass},
		Handler:    "kata",
		Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{pools.Label: pools.Sandboxed},
			Tolerations: []corev1.Toleration{{
				Key: pools.Label, Operator: corev1.TolerationOpEqual, Value: pools.Sandboxed, Effect: corev1.TaintEffectNoSchedule,
			}},
		},
	}
	_, err := client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create RuntimeClass %s: %w", KataRuntimeClass, err)
	}
	return nil
}

func ensureIngressClass(ctx context.Context, client kubernetes.Interface) error {
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: IngressClass},
		Spec:       networkingv1.IngressClassSpec{Controller: ingressController},
	}
	_, err := client.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create IngressClass %s: %w", IngressClass, err)
	}
	return nil
}

func waitNodesReady(ctx context.Context, client kubernetes.Interface, ps []pools.NodePool) error {
	want := totalNodes(ps)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := 0
			for _, n := range nodes.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			if ready >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes did not become Ready: %w", ctx.Err())
		case <-ticker.C:
		}
	}
}

// loadStages returns the KWOK stages: KWOK's own for node start-up,
// heartbeats and pod readiness, the devcluster's for completion and deletion.
func loadStages() (map[kwokinternal.StageResourceRef][]*kwokinternal.Stage, error) {
	out := map[kwokinternal.StageResourceRef][]*kwokinternal.Stage{}
	for _, doc := range []string{
		nodefast.DefaultNodeInit, nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podCompleteStage, podDeleteStage,
	} {
		var s kwokv1alpha1.Stage
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			return nil, fmt.Errorf("kwok stage: %w", err)
		}
		kwokv1alpha1.SetObjectDefaults_Stage(&s)
		in, err := kwokinternal.ConvertToInternalStage(&s)
		if err != nil {
			return nil, fmt.Errorf("kwok stage %s: %w", s.Name, err)
		}
		out[in.Spec.ResourceRef] = append(out[in.Spec.ResourceRef], in)
	}
	return out, nil
}
