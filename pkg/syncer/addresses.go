package syncer

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/policy"
)

// indexHostAddress indexes the host cache's pods by their IPs and Services
// by their ClusterIPs, in netip's canonical form.
const indexHostAddress = "knest.io/host-address"

// indexHostAddresses registers indexHostAddress; the host cache must not
// have started.
func indexHostAddresses(ctx context.Context, c cache.Cache) error {
	if err := c.IndexField(ctx, &corev1.Pod{}, indexHostAddress, func(o client.Object) []string {
		p := o.(*corev1.Pod)
		// A host-network pod's IP is its node's: never the tenant's,
		// should a policy ever let one through.
		if p.Spec.HostNetwork {
			return nil
		}
		return canonicalIPs(policy.PodAddresses(p))
	}); err != nil {
		return fmt.Errorf("failed to index host pods by address: %w", err)
	}
	if err := c.IndexField(ctx, &corev1.Service{}, indexHostAddress, func(o client.Object) []string {
		s := o.(*corev1.Service)
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		// "None" (headless) is no address and drops out.
		return canonicalIPs(ips)
	}); err != nil {
		return fmt.Errorf("failed to index host Services by address: %w", err)
	}
	return nil
}

func canonicalIPs(ips []string) []string {
	var out []string
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap().String())
		}
	}
	return out
}

// HostAddresses answers which host addresses are the tenant's from the
// syncer's host cache, which holds only the marker-labelled objects of the
// tenant's host namespace: the IPs of its running host pods and the
// ClusterIPs of its host Services. The tenant writes none of them (it
// writes its own pods' status, not the host pods'). It implements
// egress.TenantAddresses.
type HostAddresses struct {
	reader        client.Reader
	hostNamespace string
}

// TenantAddress names the host pod or Service of the tenant that has ip, or
// returns "".
func (h *HostAddresses) TenantAddress(ctx context.Context, ip netip.Addr) (string, error) {
	key := client.MatchingFields{indexHostAddress: ip.Unmap().String()}
	var pods corev1.PodList
	if err := h.reader.List(ctx, &pods, client.InNamespace(h.hostNamespace), key); err != nil {
		return "", fmt.Errorf("failed to list pods by address in host cluster: %w", err)
	}
	if len(pods.Items) > 0 {
		return "pod " + client.ObjectKeyFromObject(&pods.Items[0]).String(), nil
	}
	var services corev1.ServiceList
	if err := h.reader.List(ctx, &services, client.InNamespace(h.hostNamespace), key); err != nil {
		return "", fmt.Errorf("failed to list Services by address in host cluster: %w", err)
	}
	if len(services.Items) > 0 {
		return "service " + client.ObjectKeyFromObject(&services.Items[0]).String(), nil
	}
	return "", nil
}

// WaitForHostAddresses waits until the host cache has synced the tenant's
// host pods and Services, then returns what answers from it; false if ctx
// ended first. Before that, the cache would answer "not the tenant's" for
// every address.
func (s *Syncer) WaitForHostAddresses(ctx context.Context) (*HostAddresses, bool) {
	c := s.host.GetCache()
	var informers []cache.Informer
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Service{}} {
		// Without blocking: the cache may not have started yet, and its
		// informers only sync once it has.
		i, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, false
		}
		informers = append(informers, i)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, i := range informers {
			if !i.HasSynced() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, false
	}
	return &HostAddresses{reader: c, hostNamespace: s.hostNamespace}, true
}
