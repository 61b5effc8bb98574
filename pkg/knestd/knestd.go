package knestd

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
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/etcd"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/kubeconfig"
	"github.com/knest-dev/knest/pkg/pki"
)

const (
	// componentStopBudget is how long each component may take to stop.
	componentStopBudget = 2 * time.Second
	readyTimeout        = 2 * time.Minute
)

// Run runs the control plane until ctx ends, then shuts it down. It returns
// an error if the control plane cannot start or fails.
func Run(ctx context.Context, o options.Options) error {
	start := time.Now()
	logger := klog.FromContext(ctx)
	if err := o.Validate(); err != nil {
		return err
	}
	paths := options.PathsIn(o.DataDir)
	if err := prepareDataDir(o.DataDir); err != nil {
		return err
	}
	unlock, err := lockDataDir(paths.Lock)
	if err != nil {
		return err
	}
	defer unlock()

	listener, err := net.Listen("tcp", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.SecurePort)))
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.SecurePort)), errors.Unwrap(err))
	}
	// The API server takes the listener over; closing it here is for the
	// failure paths before that.
	defer listener.Close()

	serviceIP, _ := o.ServiceIP()
	sanNames, sanIPs := o.SANs()
	if adv := o.Advertise(); !adv.IsUnspecified() {
		sanIPs = append(sanIPs, adv)
	}
	files, err := pki.Ensure(pki.Config{
		Dir: paths.PKI, ClusterName: o.Name, ServiceIP: serviceIP, ClusterDomain: o.ClusterDomain,
		ExtraSANs: sanNames, ExtraIPs: sanIPs,
	}, time.Now())
	if err != nil {
		return err
	}

	keyFile := o.EncryptionKeyFile
	var key []byte
	if keyFile == "" {
		key, err = encryption.EnsureKey(paths.EncryptionKey)
	} else {
		key, err = encryption.LoadKey(keyFile)
	}
	if err != nil {
		return err
	}

	// Files that hold the key in clear or only matter to this process live in
	// a private runtime directory, removed on exit, never on the data volume.
	runtimeDir, err := os.MkdirTemp("", "knestd-"+o.Name+"-")
	if err != nil {
		return fmt.Errorf("failed to create runtime directory: %w", err)
	}
	defer os.RemoveAll(runtimeDir)
	encryptionConfig := filepath.Join(runtimeDir, "encryption-config.yaml")
	if err := atomicfile.Write(encryptionConfig, encryption.Config(key), 0o600); err != nil {
		return err
	}
	authnConfig := filepath.Join(runtimeDir, "authentication-config.yaml")
	if err := atomicfile.Write(authnConfig, []byte(controlplane.AuthenticationConfig), 0o600); err != nil {
		return err
	}

	etcdCtx, stopEtcd := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEtcd()
	etcdServer, err := etcd.Run(etcdCtx, etcd.Options{Dir: paths.Etcd, Name: o.Name, QuotaBackendBytes: o.EtcdQuotaBytes})
	if err != nil {
		return err
	}
	logger.V(1).Info("etcd is ready", "url", etcdServer.ClientURL(), "elapsed", time.Since(start))

	serverURL := (&url.URL{Scheme: "https", Host: dialAddress(listener.Addr().(*net.TCPAddr))}).String()
	admin := kubeconfig.Client{Name: o.Name, Server: serverURL, CAFile: files.CACert, CertFile: files.AdminCert, KeyFile: files.AdminKey}
	cm := kubeconfig.Client{Name: o.Name, Server: serverURL, CAFile: files.CACert, CertFile: files.ControllerManagerCert, KeyFile: files.ControllerManagerKey}
	if err := cm.Write(paths.ControllerManagerKubeconfig); err != nil {
		return err
	}

	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	apiDone := make(chan error, 1)
	go func() {
		apiDone <- controlplane.RunAPIServer(apiCtx, controlplane.APIServer{
			Listener: listener, AdvertiseAddress: o.Advertise(), ServiceCIDR: o.ServiceCIDR,
			ClusterDomain: o.ClusterDomain, EtcdURL: etcdServer.ClientURL(), PKI: files,
			EncryptionConfigFile: encryptionConfig, AuthenticationConfigFile: authnConfig,
		})
	}()

	adminCfg, err := admin.Build()
	if err != nil {
		return err
	}
	restCfg, err := clientcmd.NewDefaultClientConfig(*adminCfg, nil).ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	kcmCtx, stopKCM := context.WithCancel(context.WithoutCancel(ctx))
	defer stopKCM()
	kcmDone := make(chan error, 1)
	stop := func(reason string) {
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
	}

	readyCtx, cancelReady := context.WithTimeout(ctx, readyTimeout)
	defer cancelReady()
	if err := waitFor(readyCtx, apiDone, func(ctx context.Context) bool {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}); err != nil {
		stop("start failed")
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	logger.V(1).Info("kube-apiserver is ready", "elapsed", time.Since(start))

	go func() {
		kcmDone <- controlplane.RunControllerManager(kcmCtx, controlplane.ControllerManager{
			Kubeconfig: paths.ControllerManagerKubeconfig, ServiceCIDR: o.ServiceCIDR, PKI: files,
		})
	}()
	if err := waitFor(readyCtx, kcmDone, func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		stop("start failed")
		return fmt.Errorf("kube-controller-manager did not start its controllers: %w", err)
	}

	if err := admin.Write(paths.AdminKubeconfig); err != nil {
		stop("start failed")
		return err
	}
	logger.Info("Tenant control plane is ready", "name", o.Name, "server", serverURL,
		"kubeconfig", paths.AdminKubeconfig, "elapsed", time.Since(start).Round(time.Millisecond).String())

	var runErr error
	select {
	case <-ctx.Done():
		stop("signal")
	case err := <-apiDone:
		runErr = fmt.Errorf("kube-apiserver stopped: %w", err)
		apiDone <- err
		stop("kube-apiserver stopped")
	case err := <-kcmDone:
		runErr = fmt.Errorf("kube-controller-manager stopped: %w", err)
		kcmDone <- err
		stop("kube-controller-manager stopped")
	case err := <-etcdServer.Err():
		runErr = fmt.Errorf("etcd failed: %w", err)
		stop("etcd failed")
	}
	return runErr
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
			return wait.ErrorInterrupted(ctx.Err())
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

// lockDataDir takes an exclusive lock so two knestd processes never share a
// data directory (etcd's own WAL lock would make the second one hang).
func lockDataDir(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock %s: %w", path, unwrapPathError(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another knestd (pid %s)", filepath.Dir(path), string(pid))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	}
	return func() { f.Close() }, nil
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
