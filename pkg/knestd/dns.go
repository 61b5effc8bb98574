package knestd

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/knest-dev/knest/pkg/dns"
	"github.com/knest-dev/knest/pkg/knestd/options"
)

// startDNS starts the tenant's DNS server unless --dns-address is empty:
// its sockets are bound now, so a port in use fails the start, and it
// answers once its cache of the tenant's Services and EndpointSlices has
// synced (before that every Service name would be NXDOMAIN). It runs until
// ctx ends; a failure after the start is sent to failed. It returns the
// UDP address it listens on, to dial.
func startDNS(ctx context.Context, o options.Options, tenant *rest.Config, failed chan<- error) (string, error) {
	if o.DNSAddress == "" {
		return "", nil
	}
	upstreams, err := dns.UpstreamsFromResolvConf(o.DNSUpstreamResolvConf)
	if err != nil {
		return "", fmt.Errorf("--dns-upstream-resolv-conf: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return "", err
	}
	// Its own cache, not the syncer's: DNS keeps answering whatever the
	// syncer's reconcilers are doing, and needs only these two kinds.
	c, err := cache.New(tenant, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return "", fmt.Errorf("failed to set up the DNS server's tenant cache: %w", err)
	}
	if err := dns.RegisterIndexes(ctx, c); err != nil {
		return "", err
	}
	address := o.DNSListenAddress()
	srv, err := dns.New(dns.Config{
		Addr: address, ClusterDomain: o.ClusterDomain, HostClusterDomain: o.HostClusterDomain,
		Upstreams: upstreams, Source: dns.ClientSource{Reader: c},
	})
	if err != nil {
		return "", err
	}
	pc, l, err := dns.Listen(address)
	if err != nil {
		return "", err
	}
	logger := klog.FromContext(ctx)
	go func() {
		go func() {
			if err := c.Start(ctx); err != nil {
				failed <- fmt.Errorf("the DNS server's tenant cache stopped: %w", err)
			}
		}()
		if !c.WaitForCacheSync(ctx) {
			pc.Close()
			l.Close()
			if ctx.Err() == nil {
				failed <- errors.New("the DNS server's tenant cache did not sync")
			}
			return
		}
		logger.Info("Serving DNS", "address", l.Addr().String(), "clusterDomain", o.ClusterDomain,
			"hostClusterDomain", o.HostClusterDomain, "upstreams", upstreams)
		if err := srv.Serve(ctx, pc, l); err != nil {
			failed <- err
		}
	}()
	return dialable(pc.LocalAddr()), nil
}
