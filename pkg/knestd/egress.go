package knestd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/egress"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer"
)

// EgressSocket is the socket in the data dir through which the tenant API
// server opens its connections (pkg/egress).
const EgressSocket = "egress.sock"

// startEgress serves the tenant API server's egress socket and returns the
// rules, to be completed with the kubelet listener and the tenant's host
// addresses once they exist, the API server's egress selector
// configuration, and stop, which stops serving and removes the socket. It
// runs before the API server, which reads the configuration at start. A
// failure after the start is sent to failed.
func startEgress(ctx context.Context, o options.Options, pol *policy.Policy, failed chan<- error) (rules *egress.Rules, config []byte, stop func(), err error) {
	cidrs, err := egress.ParseCIDRs(pol.APIServerEgressCIDRs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("policy apiServerEgressCIDRs: %w", err)
	}
	rules = &egress.Rules{Tenant: o.Name, CIDRs: cidrs}
	// The socket goes where the control plane keeps its files; the data
	// dir may not exist yet.
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, nil, fmt.Errorf("data dir %s is not usable: %w", o.DataDir, err)
	}
	// A data dir in use is reported as the control plane reports it, with
	// the other process's PID, before its socket is looked at.
	lock, err := dirlock.Acquire(controlplane.LayoutOf(o.DataDir).Lock)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("data dir %s is in use: %w", o.DataDir, err)
	}
	lock.Release()
	socket, err := filepath.Abs(filepath.Join(o.DataDir, EgressSocket))
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := egress.Listen(socket)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := egress.NewServer(egress.Config{Listener: l, Rules: rules, Metrics: ctrlmetrics.Registry})
	if err == nil {
		config, err = egress.SelectorConfiguration(socket)
	}
	if err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	// Its own context: the socket must outlive the API server's shutdown,
	// and stop waits for it to be gone.
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(serveCtx); err != nil {
			failed <- err
		}
	}()
	return rules, config, func() { cancel(); <-done }, nil
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
