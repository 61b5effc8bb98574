package knestd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/internal/atomicfile"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/tenant"
)

// hostRESTConfig is how knestd reaches the host: --host-kubeconfig, or, in
// a pod, the pod's ServiceAccount (the chart's StatefulSet).
func hostRESTConfig(o options.Options) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.HostKubeconfig != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", o.HostKubeconfig); err != nil {
			return nil, fmt.Errorf("--host-kubeconfig %s: %w", o.HostKubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("--host-namespace without --host-kubeconfig reaches the host with the pod's ServiceAccount, but knestd does not run in a pod: %w", err)
	}
	// One budget for every host client knestd makes (controller-runtime
	// builds one REST client per resource type, each with its own limiter
	// unless they share this one).
	cfg.QPS, cfg.Burst = o.HostQPS, o.HostBurst
	cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(o.HostQPS, o.HostBurst)
	return cfg, nil
}

// resolveFromHost completes o with what its host namespace holds, before
// the control plane starts: the ClusterIP of --host-service, and the key of
// --encryption-key-secret, which goes to a private file (on the pod's
// memory volume) that cleanup removes.
func resolveFromHost(ctx context.Context, o *options.Options, host kubernetes.Interface) (cleanup func(), err error) {
	cleanup = func() {}
	if o.HostService != "" {
		ip, err := hostServiceIP(ctx, *o, host)
		if err != nil {
			return cleanup, err
		}
		o.TLSSANs = append(o.TLSSANs, ip)
		if o.KubernetesServiceIP == "" {
			o.KubernetesServiceIP = ip
		}
		if o.DNSServiceIP == "" && o.DNSAddress != "" {
			o.DNSServiceIP = ip
		}
	}
	if o.EncryptionKeySecret != "" {
		key, err := tenant.EnsureEncryptionKey(ctx, host, o.HostNamespace, o.EncryptionKeySecret, o.Name, newKeyFor(ctx, *o))
		if err != nil {
			return cleanup, err
		}
		dir, err := os.MkdirTemp("", "knestd-key-")
		if err != nil {
			return cleanup, fmt.Errorf("failed to create a directory for the encryption key: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		o.EncryptionKeyFile = filepath.Join(dir, "encryption.key")
		if err := atomicfile.Write(o.EncryptionKeyFile, tenant.EncodeKey(key), 0o600); err != nil {
			return cleanup, err
		}
	}
	return cleanup, nil
}

// hostServiceIP reads the ClusterIP of the host Service in front of knestd.
// The chart installs the Service before the StatefulSet, so it exists; its
// IP must lie in the tenant's service CIDR, which is the host's.
func hostServiceIP(ctx context.Context, o options.Options, host kubernetes.Interface) (string, error) {
	svc, err := host.CoreV1().Services(o.HostNamespace).Get(ctx, o.HostService, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("--host-service: failed to read Service %s/%s in host cluster: %w", o.HostNamespace, o.HostService, err)
	}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if ip == nil {
		return "", fmt.Errorf("--host-service: Service %s/%s in host cluster has no ClusterIP (%q)", o.HostNamespace, o.HostService, svc.Spec.ClusterIP)
	}
	if _, cidr, err := net.ParseCIDR(o.ServiceCIDR); err == nil && !cidr.Contains(ip) {
		return "", fmt.Errorf("--host-service: Service %s/%s has ClusterIP %s, outside --service-cidr %s: set it (chart value knestd.serviceCIDR) to the host's service CIDR",
			o.HostNamespace, o.HostService, ip, o.ServiceCIDR)
	}
	return ip.String(), nil
}

// checkHostNodeAccess makes sure the host identity may read host Nodes as
// --host-node-info (get) and --pool-nodes (list, watch) need, by asking
// the host (SelfSubjectAccessReview): without the grant virtual Nodes
// would stay bare or missing with an error a minute, so knestd does not
// start.
func checkHostNodeAccess(ctx context.Context, host kubernetes.Interface, o options.Options) error {
	type need struct{ flag, value, verb string }
	var needs []need
	if o.HostNodeInfo {
		needs = append(needs, need{"--host-node-info", "hostNodeInfo", "get"})
	}
	if o.PoolNodes {
		needs = append(needs, need{"--pool-nodes", "poolNodes", "list"}, need{"--pool-nodes", "poolNodes", "watch"})
	}
	for _, n := range needs {
		review, err := host.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: n.verb, Resource: "nodes"},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("%s: failed to ask the host cluster whether knestd may %s Nodes: %w", n.flag, n.verb, err)
		}
		if !review.Status.Allowed {
			why := ""
			if review.Status.Reason != "" {
				why = " (" + review.Status.Reason + ")"
			}
			return fmt.Errorf("%s: knestd's host identity may not %s Nodes in the host cluster%s; set chart value %s=true, which grants it, or turn %s off", n.flag, n.verb, why, n.value, n.flag)
		}
	}
	return nil
}

// newKeyFor decides the key of a tenant whose key Secret does not exist:
// the key of a data directory that has one (a tenant moving its key off the
// volume), a new one for a new tenant, and none for a data directory that
// holds a tenant but lost its key: a new key would leave every Secret in
// its etcd unreadable.
func newKeyFor(ctx context.Context, o options.Options) func() ([]byte, error) {
	return func() ([]byte, error) {
		layout := controlplane.LayoutOf(o.DataDir)
		if key, err := encryption.LoadKey(layout.EncryptionKey); err == nil {
			klog.FromContext(ctx).Info("Moving the encryption key of the data directory into its host Secret",
				"secret", klog.KRef(o.HostNamespace, o.EncryptionKeySecret), "file", layout.EncryptionKey)
			return key, nil
		}
		entries, err := os.ReadDir(layout.Etcd)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("failed to read %s: %w", layout.Etcd, err)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("--encryption-key-secret: host Secret %s/%s is gone, but data dir %s holds a tenant whose Secrets only its key can read: restore the Secret, or start from an empty data dir",
				o.HostNamespace, o.EncryptionKeySecret, o.DataDir)
		}
		key := make([]byte, encryption.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// publishKubeconfig publishes the admin kubeconfig in --kubeconfig-secret,
// with --kubeconfig-server as its server.
func publishKubeconfig(ctx context.Context, o options.Options, inst *controlplane.Instance, host kubernetes.Interface) error {
	if o.KubeconfigSecret == "" {
		return nil
	}
	cfg, err := clientcmd.LoadFromFile(inst.Layout.AdminKubeconfig)
	if err != nil {
		return fmt.Errorf("failed to read the admin kubeconfig: %w", err)
	}
	if o.KubeconfigServer != "" {
		for _, c := range cfg.Clusters {
			c.Server = o.KubeconfigServer
		}
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return tenant.PublishKubeconfig(ctx, host, o.HostNamespace, o.KubeconfigSecret, o.Name, data)
}
