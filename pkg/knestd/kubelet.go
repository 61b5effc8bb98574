package knestd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/kubelet/hostproxy"
)

// startKubelet binds the virtual Nodes' kubelet API on the bind address,
// so a port in use fails the start and the port is known before any Node
// advertises it, then serves it until ctx ends. A failure after the start
// is sent to failed.
func startKubelet(ctx context.Context, o options.Options, inst *controlplane.Instance, hostConfig *rest.Config, failed chan<- error) (int32, error) {
	address := net.JoinHostPort(o.BindAddress, strconv.Itoa(o.KubeletPort))
	l, err := net.Listen("tcp", address)
	if err != nil {
		return 0, fmt.Errorf("cannot listen on %s for the kubelet API: %w", address, errors.Unwrap(err))
	}
	tenantClient, err := kubernetes.NewForConfig(tenantConfig(inst.LocalConfig()))
	if err != nil {
		l.Close()
		return 0, err
	}
	backend, err := hostproxy.New(hostproxy.Config{Tenant: o.Name, HostNamespace: o.HostNamespace, HostConfig: hostConfig})
	if err != nil {
		l.Close()
		return 0, err
	}
	s, err := kubelet.New(kubelet.Config{
		Listener: l, Pods: tenantClient.CoreV1(), Backend: backend,
		CACertFile: inst.Files.InternalCACert, CAKeyFile: inst.Files.InternalCAKey, ClientCertFile: inst.Files.KubeletClientCert,
		// The tenant API server dials the virtual Nodes' InternalIP.
		Addresses: []net.IP{o.Advertise()},
	})
	if err != nil {
		l.Close()
		return 0, err
	}
	go func() {
		if err := s.Run(ctx); err != nil {
			failed <- err
		}
	}()
	return int32(s.Port()), nil
}
