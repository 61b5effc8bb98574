package install

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restClientGetter gives Helm's Kubernetes client a *rest.Config and a
// namespace, where Helm expects kubeconfig flags.
type restClientGetter struct {
	config    *rest.Config
	namespace string

	once      sync.Once
	discovery discovery.CachedDiscoveryInterface
	err       error
}

var _ genericclioptions.RESTClientGetter = (*restClientGetter)(nil)

func newRESTClientGetter(config *rest.Config, namespace string) *restClientGetter {
	return &restClientGetter{config: rest.CopyConfig(config), namespace: namespace}
}

// ToRESTConfig returns a copy: Helm's factory may change what it gets.
func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

// ToDiscoveryClient returns one memory-cached discovery client for the
// getter's lifetime (one Helm action).
func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.once.Do(func() {
		var dc discovery.DiscoveryInterface
		dc, g.err = discovery.NewDiscoveryClientForConfig(rest.CopyConfig(g.config))
		if g.err == nil {
			g.discovery = memory.NewMemCacheClient(dc)
		}
	})
	return g.discovery, g.err
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(dc), dc, nil), nil
}

// ToRawKubeConfigLoader is where Helm reads the namespace from.
func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespacedConfig{g: g}
}

// namespacedConfig is a clientcmd.ClientConfig without a kubeconfig behind
// it: the getter's config and namespace.
type namespacedConfig struct{ g *restClientGetter }

func (c namespacedConfig) RawConfig() (clientcmdapi.Config, error) {
	return *clientcmdapi.NewConfig(), nil
}

func (c namespacedConfig) ClientConfig() (*rest.Config, error) { return c.g.ToRESTConfig() }

func (c namespacedConfig) Namespace() (string, bool, error) { return c.g.namespace, true, nil }

func (c namespacedConfig) ConfigAccess() clientcmd.ConfigAccess {
	return clientcmd.NewDefaultClientConfigLoadingRules()
}
