package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/etcd"
	"github.com/knest-dev/knest/pkg/kubeconfig"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/servicecidr"
)

// ProbeNamespacePrefix starts the name of the namespace created at every
// start to prove the controllers run.
const ProbeNamespacePrefix = "knest-readiness-probe-"

const (
	// componentStopBudget is how long each component may take to stop.
	componentStopBudget = 2 * time.Second
	// DefaultReadyTimeout bounds start-up.
	DefaultReadyTimeout = 2 * time.Minute
)

// Layout is where a control plane keeps its files in its data directory.
type Layout struct {
	Lock, PKI, Etcd, EncryptionKey, AdminKubeconfig, ControllerManagerKubeconfig string
}

// LayoutOf returns the layout of a data directory.
func LayoutOf(dataDir string) Layout {
	return Layout{
		Lock:                        filepath.Join(dataDir, "knestd.lock"),
		PKI:                         filepath.Join(dataDir, "pki"),
		Etcd:                        filepath.Join(dataDir, "etcd"),
		EncryptionKey:               filepath.Join(dataDir, "encryption.key"),
		AdminKubeconfig:             filepath.Join(dataDir, "admin.kubeconfig"),
		ControllerManagerKubeconfig: filepath.Join(dataDir, "controller-manager.kubeconfig"),
	}
}

// Spec describes one control plane: etcd, kube-apiserver and
// kube-controller-manager sharing a data directory.
type Spec struct {
	// Name names the cluster (CA subjects, kubeconfig context, etcd member).
	Name string
	// DataDir holds everything that must survive a restart.
	DataDir string
	// BindAddress and Port are where the API server listens; port 0 picks one.
	BindAddress string
	Port        int
	// AdvertiseAddress is the address the API server advertises.
	AdvertiseAddress net.IP
	// ServiceCIDR and ClusterDomain shape the service network.
	ServiceCIDR   string
	ClusterDomain string
	// KubernetesServiceIP overrides the "kubernetes" Service's ClusterIP.
	KubernetesServiceIP net.IP
	// SANs and SANIPs are added to the serving certificate.
	SANs   []string
	SANIPs []net.IP
	// EncryptionKeyFile holds the secrets key; empty means one generated
	// into the data directory.
	EncryptionKeyFile string
	// EtcdQuotaBytes caps the database; 0 is etcd's package default.
	EtcdQuotaBytes int64
	// APIServerFlags and ControllerManagerFlags are appended to the
	// generated flags; Controllers replaces the controller list when set.
	APIServerFlags         []string
	ControllerManagerFlags []string
	// AdmissionPlugins are compiled into the API server.
	AdmissionPlugins []AdmissionPlugin
	Controllers      []string
	// EgressSelectorConfig, if set, is the API server's
	// EgressSelectorConfiguration (YAML): where its outgoing connections go.
	EgressSelectorConfig []byte
	// ReadyTimeout bounds start-up; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Instance is a running control plane.
type Instance struct {
	// Server is the URL clients use.
	Server string
	// Files are the PKI files.
	Files pki.Files
	// Layout is the data directory layout.
	Layout Layout
	// AdminConfig is knestd's own cluster-admin client configuration (user
	// pki.InternalUser); the tenant's admin kubeconfig is another user.
	AdminConfig *rest.Config

	admin   kubeconfig.Client
	failed  chan error
	stopped chan struct{}
	stop    func(reason string)
	cleanup []func()
}

// Start brings a control plane up and returns once the API server is ready
// and the controllers have created the default ServiceAccount, or with the
// reason it could not. Errors before anything runs are single lines naming the
// problem; existing files are never removed or replaced.
func Start(ctx context.Context, s Spec) (_ *Instance, err error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	inst := &Instance{Layout: LayoutOf(s.DataDir), failed: make(chan error, 3), stopped: make(chan struct{})}
	defer func() {
		if err != nil {
			inst.runCleanup()
		}
	}()
	if err := prepareDataDir(s.DataDir); err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(inst.Layout.Lock)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is in use: %w", s.DataDir, err)
	}
	inst.cleanup = append(inst.cleanup, lock.Release)

	address := net.JoinHostPort(s.BindAddress, strconv.Itoa(s.Port))
	network := "tcp"
	if ip := net.ParseIP(s.BindAddress); ip != nil && ip.To4() != nil {
		// Otherwise 0.0.0.0 (a pod's bind address) listens on both stacks
		// and reports "::", and knestd's own clients dial ::1, which the
		// serving certificate does not cover.
		network = "tcp4"
	}
	listener, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", address, errors.Unwrap(err))
	}
	// The API server takes the listener over; closing it again is harmless.
	inst.cleanup = append(inst.cleanup, func() { listener.Close() })

	serviceIP, err := servicecidr.FirstIP(s.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %w", err)
	}
	sanIPs := append([]net.IP(nil), s.SANIPs...)
	if s.KubernetesServiceIP != nil {
		sanIPs = append(sanIPs, s.KubernetesServiceIP)
	}
	if !s.AdvertiseAddress.IsUnspecified() {
		sanIPs = append(sanIPs, s.AdvertiseAddress)
	}
	files, err := pki.Ensure(pki.Config{
		Dir: inst.Layout.PKI, ClusterName: s.Name, ServiceIP: serviceIP, ClusterDomain: s.ClusterDomain,
		ExtraSANs: s.SANs, ExtraIPs: sanIPs,
	}, time.Now())
	if err != nil {
		return nil, err
	}
	inst.Files = files

	var key []byte
	if s.EncryptionKeyFile == "" {
		key, err = encryption.EnsureKey(inst.Layout.EncryptionKey)
	} else {
		key, err = encryption.LoadKey(s.EncryptionKeyFile)
	}
	if err != nil {
		return nil, err
	}
	// Files that hold the key in clear, or only matter to this process, live
	// in a private runtime directory removed on exit, never on the data volume.
	runtimeDir, err := os.MkdirTemp("", "knest-"+s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("failed to create runtime directory: %w", err)
	}
	inst.cleanup = append(inst.cleanup, func() { os.RemoveAll(runtimeDir) })
	encryptionConfig := filepath.Join(runtimeDir, "encryption-config.yaml")
	if err := atomicfile.Write(encryptionConfig, encryption.Config(key), 0o600); err != nil {
		return nil, err
	}
	authnConfig := filepath.Join(runtimeDir, "authentication-config.yaml")
	if err := atomicfile.Write(authnConfig, []byte(AuthenticationConfig), 0o600); err != nil {
		return nil, err
	}
	var egressConfig string
	if s.EgressSelectorConfig != nil {
		egressConfig = filepath.Join(runtimeDir, "egress-selector-config.yaml")
		if err := atomicfile.Write(egressConfig, s.EgressSelectorConfig, 0o600); err != nil {
			return nil, err
		}
	}

	// Components run on contexts of their own, cancelled in order by stop,
	// so that the controllers go before the API server and the API server
	// before etcd.
	base := context.WithoutCancel(ctx)
	etcdCtx, stopEtcd := context.WithCancel(base)
	etcdServer, err := etcd.Run(etcdCtx, etcd.Options{Dir: inst.Layout.Etcd, Name: s.Name, QuotaBackendBytes: s.EtcdQuotaBytes})
	if err != nil {
		stopEtcd()
		return nil, err
	}
	logger.V(1).Info("etcd is ready", "url", etcdServer.ClientURL(), "elapsed", time.Since(start))

	inst.Server = (&url.URL{Scheme: "https", Host: dialAddress(listener.Addr().(*net.TCPAddr))}).String()
	inst.admin = kubeconfig.Client{Name: s.Name, Server: inst.Server, CAFile: files.CACert, CertFile: files.AdminCert, KeyFile: files.AdminKey}
	cm := kubeconfig.Client{Name: s.Name, Server: inst.Server, CAFile: files.CACert, CertFile: files.ControllerManagerCert, KeyFile: files.ControllerManagerKey}
	if err := cm.Write(inst.Layout.ControllerManagerKubeconfig); err != nil {
		stopEtcd()
		return nil, err
	}

	apiCtx, stopAPI := context.WithCancel(base)
	apiDone := make(chan error, 1)
	go func() {
		apiDone <- RunAPIServer(apiCtx, APIServer{
			Listener: listener, AdvertiseAddress: s.AdvertiseAddress, ServiceCIDR: s.ServiceCIDR,
			ClusterDomain: s.ClusterDomain, EtcdURL: etcdServer.ClientURL(), PKI: files,
			EncryptionConfigFile: encryptionConfig, AuthenticationConfigFile: authnConfig,
			AdmissionPlugins: s.AdmissionPlugins, ExtraFlags: s.APIServerFlags, KubernetesServiceIP: s.KubernetesServiceIP,
			EgressSelectorConfigFile: egressConfig,
		})
	}()
	kcmCtx, stopKCM := context.WithCancel(base)
	kcmDone := make(chan error, 1)
	inst.stop = func(reason string) {
		logger.Info("Stopping the control plane", "reason", reason)
		stopKCM()
		waitStopped(logger, "kube-controller-manager", kcmDone)
		stopAPI()
		waitStopped(logger, "kube-apiserver", apiDone)
		stopEtcd()
		select {
		case <-etcdServer.Stopped():
		case <-time.After(componentStopBudget):
			logger.Info("etcd did not stop in time")
		}
		inst.runCleanup()
		close(inst.stopped)
	}

	// knestd's own clients use the internal identity, never the tenant's
	// admin (admission tells them apart).
	internal := kubeconfig.Client{Name: s.Name, Server: inst.Server, CAFile: files.CACert, CertFile: files.InternalCert, KeyFile: files.InternalKey}
	adminCfg, err := internal.Build()
	if err == nil {
		inst.AdminConfig, err = clientcmd.NewDefaultClientConfig(*adminCfg, nil).ClientConfig()
	}
	var client kubernetes.Interface
	if err == nil {
		client, err = kubernetes.NewForConfig(inst.AdminConfig)
	}
	if err != nil {
		inst.stop("start failed")
		return nil, err
	}

	timeout := s.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, timeout)
	defer cancelReady()
	if err := waitFor(readyCtx, apiDone, func(ctx context.Context) bool {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}); err != nil {
		inst.stop("start failed")
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	logger.V(1).Info("kube-apiserver is ready", "elapsed", time.Since(start))

	go func() {
		kcmDone <- RunControllerManager(kcmCtx, ControllerManager{
			Kubeconfig: inst.Layout.ControllerManagerKubeconfig, ServiceCIDR: s.ServiceCIDR, PKI: files,
			Controllers: s.Controllers, ExtraFlags: s.ControllerManagerFlags,
		})
	}()
	if err := waitForControllers(readyCtx, client, kcmDone); err != nil {
		inst.stop("start failed")
		return nil, fmt.Errorf("kube-controller-manager did not start its controllers: %w", err)
	}
	logger.V(1).Info("kube-controller-manager is running", "elapsed", time.Since(start))

	// Failures after start-up are reported through Failed.
	go forward(apiDone, inst.failed, "kube-apiserver")
	go forward(kcmDone, inst.failed, "kube-controller-manager")
	go func() {
		if err, ok := <-etcdServer.Err(); ok && err != nil {
			inst.failed <- fmt.Errorf("etcd failed: %w", err)
		}
	}()
	return inst, nil
}

// WriteAdminKubeconfig writes a self-contained cluster-admin kubeconfig.
func (i *Instance) WriteAdminKubeconfig(path string) error { return i.admin.Write(path) }

// Failed delivers the first component failure after start-up.
func (i *Instance) Failed() <-chan error { return i.failed }

// Stop stops the components in reverse order, each within a fixed budget.
func (i *Instance) Stop(reason string) {
	select {
	case <-i.stopped:
	default:
		i.stop(reason)
	}
}

func (i *Instance) runCleanup() {
	for j := len(i.cleanup) - 1; j >= 0; j-- {
		i.cleanup[j]()
	}
	i.cleanup = nil
}

func forward(done chan error, failed chan error, name string) {
	err := <-done
	done <- err
	if err == nil {
		err = errors.New("exited")
	}
	select {
	case failed <- fmt.Errorf("%s stopped: %w", name, err):
	default:
	}
}

// waitForControllers proves the controllers run: it creates a probe
// namespace and waits for the service-account controller to give it its
// default ServiceAccount. Objects that already exist prove nothing after a
// restart, so the probe is new every time; it is deleted afterwards (the
// namespace controller finishes that in the background).
func waitForControllers(ctx context.Context, client kubernetes.Interface, kcmDone chan error) error {
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: ProbeNamespacePrefix, Labels: map[string]string{"knest.io/probe": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to create the readiness probe namespace: %w", err)
	}
	err = waitFor(ctx, kcmDone, func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	if delErr := client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); delErr != nil && err == nil {
		return fmt.Errorf("failed to delete the readiness probe namespace: %w", delErr)
	}
	return err
}

// waitFor polls cond until it holds, the component behind done exits, or ctx ends.
func waitFor(ctx context.Context, done chan error, cond func(context.Context) bool) error {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if cond(ctx) {
			return nil
		}
		select {
		case err := <-done:
			done <- err
			if err == nil {
				err = errors.New("exited")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

func waitStopped(logger klog.Logger, name string, done chan error) {
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error(err, "Component stopped with an error", "component", name)
		}
		done <- err
	case <-time.After(componentStopBudget):
		logger.Info("Component did not stop in time", "component", name)
	}
}

// prepareDataDir creates the data directory and proves it is writable before
// anything is started, so the failure is one clear line.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not usable: %w", dir, unwrapPathError(err))
	}
	probe, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, unwrapPathError(err))
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dialAddress turns a listener address into one clients can dial: an
// unspecified address becomes loopback.
func dialAddress(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip.IsUnspecified() {
		if ip.To4() != nil {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
}
