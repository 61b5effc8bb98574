package knestd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/knest-dev/knest/pkg/egress"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer"
)

// EgressSocket is the socket in the data dir through which the tenant API
// server opens its connections (pkg/egress).
const EgressSocket = "egress.sock"

// startEgress serves the tenant API server's egress socket until ctx ends
// and returns the rules, to be completed with the kubelet listener and the
// tenant's host addresses once they exist, and the API server's egress
// selector configuration. It runs before the API server, which reads the
// configuration at start. A failure after the start is sent to failed.
func startEgress(ctx context.Context, o options.Options, pol *policy.Policy, failed chan<- error) (*egress.Rules, []byte, error) {
	cidrs, err := egress.ParseCIDRs(pol.APIServerEgressCIDRs)
	if err != nil {
		return nil, nil, fmt.Errorf("policy apiServerEgressCIDRs: %w", err)
	}
	rules := &egress.Rules{Tenant: o.Name, CIDRs: cidrs}
	// The socket goes where the control plane keeps its files; the data
	// dir may not exist yet.
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir %s is not usable: %w", o.DataDir, err)
	}
	socket, err := filepath.Abs(filepath.Join(o.DataDir, EgressSocket))
	if err != nil {
		return nil, nil, err
	}
	l, err := egress.Listen(socket)
	if err != nil {
		return nil, nil, err
	}
	s, err := egress.NewServer(egress.Config{Listener: l, Rules: rules, Metrics: ctrlmetrics.Registry})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	config, err := egress.SelectorConfiguration(socket)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	go func() {
		if err := s.Serve(ctx); err != nil {
			failed <- err
		}
	}()
	return rules, config, nil
}

// allowKubelet lets the tenant API server reach knestd's kubelet API at the
// virtual Nodes' InternalIP.
func allowKubelet(rules *egress.Rules, o options.Options, port int32) {
	ip, ok := netip.AddrFromSlice(o.Advertise())
	if !ok {
		return
	}
	rules.SetKubelet(netip.AddrPortFrom(ip.Unmap(), uint16(port)))
}

// allowTenantAddresses lets the tenant API server reach the tenant's host
// pods and Services once the syncer's host cache has them.
func allowTenantAddresses(ctx context.Context, rules *egress.Rules, s *syncer.Syncer) {
	addrs, ok := s.WaitForHostAddresses(ctx)
	if !ok {
		return
	}
	rules.SetTenantAddresses(addrs)
	klog.FromContext(ctx).V(1).Info("The tenant API server may reach the tenant's host pods and Services")
}
