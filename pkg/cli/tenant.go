package cli

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/tenant"
)

// PublishedKubeconfig returns the admin kubeconfig that tenant name's knestd
// published in host namespace ns. It fails saying where to look when ns
// holds no such tenant, or when its knestd has not published one yet.
func PublishedKubeconfig(ctx context.Context, hostConfig *rest.Config, host kubernetes.Interface, name, ns string) ([]byte, error) {
	releases, err := install.New(hostConfig, ns, nil)
	if err != nil {
		return nil, err
	}
	if _, err := releases.Get(name); errors.Is(err, install.ErrNotFound) {
		return nil, fmt.Errorf("no tenant %s in namespace %s ('knest list' shows the tenants and their namespaces)", name, ns)
	} else if err != nil {
		return nil, err
	}
	data, err := tenant.Kubeconfig(ctx, host, ns)
	if errors.Is(err, tenant.ErrNotPublished) {
		return nil, fmt.Errorf("tenant %s is not ready: its knestd has not published its kubeconfig yet ('knest list' shows its state)", name)
	}
	return data, err
}
