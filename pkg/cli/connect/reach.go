package connect

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/tenant"
)

// TenantFlags name a tenant on a host, for the commands that reach a
// tenant's knestd by name (snapshot, certs): the host, the tenant's host
// namespace and, when knest cannot find the address itself, the tenant
// API's address.
type TenantFlags struct {
	Host      cli.HostFlags
	Namespace string
	Server    string
}

// AddFlags registers the host flags, -n and --server.
func (f *TenantFlags) AddFlags(fs *pflag.FlagSet) {
	f.Host.AddFlags(fs)
	cli.AddNamespaceFlag(fs, &f.Namespace)
	fs.StringVar(&f.Server, "server", "", "URL of the tenant API as reachable from here (default: the LoadBalancer's, else a port-forward)")
}

// Reach returns a client configuration for tenant name's API with the
// admin kubeconfig its knestd published on the host, the way `knest
// connect` reaches it: --server, else the tenant's LoadBalancer Service,
// else a port-forward through the host API server. The stop function ends
// the port-forward, if any.
func Reach(ctx context.Context, f TenantFlags, name string) (*rest.Config, func(), error) {
	hostConfig, err := f.Host.Config()
	if err != nil {
		return nil, nil, err
	}
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return nil, nil, err
	}
	ns := cli.TenantNamespace(name, f.Namespace)
	data, err := cli.PublishedKubeconfig(ctx, hostConfig, host, name, ns)
	if err != nil {
		return nil, nil, err
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("the kubeconfig tenant %s published is invalid: %w", name, err)
	}
	server, stop := f.Server, func() {}
	if server == "" {
		if server, err = loadBalancerServer(ctx, host, ns); err != nil {
			return nil, nil, err
		}
	}
	if server == "" {
		fctx, cancel := context.WithCancel(ctx)
		port, _, err := forward(fctx, hostConfig, host, ns, 0)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		server, stop = fmt.Sprintf("https://127.0.0.1:%d", port), cancel
	}
	kc, err = Retarget(kc, "knest-"+name, server, tenant.ServiceHost(ns))
	if err != nil {
		stop()
		return nil, nil, err
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		stop()
		return nil, nil, err
	}
	return cfg, stop, nil
}
