// Package connect is `knest connect`: a kubeconfig context for a tenant,
// merged into the user's kubeconfig or printed, reaching the tenant API
// directly when it is exposed, or through a port-forward over the host
// API server when it is not.
package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options are the flags of `knest connect`.
type Options struct {
	Host      cli.HostFlags
	Namespace string
	// Print writes the kubeconfig to stdout instead of merging it.
	Print bool
	// Server is the tenant API's address as seen from here, when it is
	// exposed in a way knest cannot discover (an ingress, a VPN, a local
	// knestd).
	Server string
	// LocalPort is the port-forward's local port; 0 picks a free one.
	LocalPort   int
	ContextName string
}

// NewCommand returns `knest connect`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "connect NAME [-n NAMESPACE] [--print]",
		Short: "Add a kubeconfig context for a tenant (or print it)",
		Long: `Reads the admin kubeconfig the tenant's knestd published in its host
namespace and points it at an address reachable from here: --server, else
the tenant's LoadBalancer Service (chart value expose.enabled), else a
port-forward to the knestd pod through the host API server, which runs
until Ctrl-C. The context (knest-NAME@HOST-CONTEXT unless --context-name) is added to the
kubeconfig the host came from, or printed with --print.`,
		Example: `  # Add context knest-team-a@<your host context> and port-forward until Ctrl-C
  knest connect team-a
  kubectl --context knest-team-a@kind-kind get namespaces

  # Choose the context's name; 'knest disconnect team-a --context-name team-a' removes it
  knest connect team-a --context-name team-a

  # Print a kubeconfig for a tenant exposed at a known address
  knest connect team-a --server https://team-a.example.com --print > team-a.kubeconfig`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cli.CompleteTenants(&o.Host, &o.Namespace),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), streams, args[0], o)
		},
	}
	f := cmd.Flags()
	o.Host.AddFlags(f)
	cli.AddNamespaceFlag(f, &o.Namespace)
	f.BoolVar(&o.Print, "print", false, "print the kubeconfig instead of adding it to yours")
	f.StringVar(&o.Server, "server", "", "URL of the tenant API as reachable from here (default: the LoadBalancer's, else a port-forward)")
	f.IntVar(&o.LocalPort, "local-port", 0, "local port of the port-forward (default: a free one)")
	f.StringVar(&o.ContextName, "context-name", "", "name of the context, cluster and user (default: knest-NAME@HOST-CONTEXT, the host's context in your kubeconfig)")
	return cmd
}

// Run connects to tenant name.
func Run(ctx context.Context, streams cli.Streams, name string, o Options) error {
	ctx, stop := cli.SignalContext(ctx)
	defer stop()
	hostConfig, err := o.Host.Config()
	if err != nil {
		return err
	}
	host, err := kubernetes.NewForConfig(hostConfig)
	if err != nil {
		return err
	}
	ns := cli.TenantNamespace(name, o.Namespace)
	data, err := cli.PublishedKubeconfig(ctx, hostConfig, host, name, ns)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fmt.Errorf("the kubeconfig tenant %s published is invalid: %w", name, err)
	}

	server := o.Server
	var forwarding <-chan error
	if server == "" {
		if server, err = loadBalancerServer(ctx, host, ns); err != nil {
			return err
		}
	}
	if server == "" {
		port, done, err := forward(ctx, hostConfig, host, ns, o.LocalPort)
		if err != nil {
			return err
		}
		server, forwarding = "https://127.0.0.1:"+strconv.Itoa(port), done
	}
	contextName := o.ContextName
	if contextName == "" {
		contextName = o.Host.TenantContextName(name)
	}
	cfg, err = Retarget(cfg, contextName, server, tenant.ServiceHost(ns))
	if err != nil {
		return err
	}
	if err := checkAnswers(ctx, cfg, server); err != nil {
		return err
	}
	if o.Print {
		out, err := clientcmd.Write(*cfg)
		if err != nil {
			return err
		}
		if _, err := streams.Out.Write(out); err != nil {
			return err
		}
	} else {
		file, err := Merge(o.Host.PathOptions(), cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(streams.ErrOut, "Added context %s to %s:\n    kubectl --context %s get namespaces\n", contextName, file, contextName)
	}
	if forwarding == nil {
		return nil
	}
	fmt.Fprintf(streams.ErrOut, "Forwarding %s to the tenant API (pod %s in host namespace %s); the context works while this runs. Ctrl-C stops it.\n",
		server, tenant.PodName, ns)
	select {
	case <-ctx.Done():
		return nil
	case err := <-forwarding:
		if err == nil {
			err = errors.New("the connection ended")
		}
		return fmt.Errorf("port-forward to tenant %s stopped: %w (is pod %s running?)", name, err, tenant.PodName)
	}
}

// Retarget renames the kubeconfig's one cluster, user and context to name
// and points the cluster at server. The serving certificate is checked
// against serverName, a name it always covers, whatever address reaches it.
func Retarget(in *clientcmdapi.Config, name, server, serverName string) (*clientcmdapi.Config, error) {
	kctx, ok := in.Contexts[in.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("the tenant's kubeconfig has no current context")
	}
	cluster, user := in.Clusters[kctx.Cluster], in.AuthInfos[kctx.AuthInfo]
	if cluster == nil || user == nil {
		return nil, fmt.Errorf("the tenant's kubeconfig context %q lacks its cluster or user", in.CurrentContext)
	}
	cluster = cluster.DeepCopy()
	cluster.Server = server
	if u, err := url.Parse(server); err == nil && u.Hostname() != serverName {
		cluster.TLSServerName = serverName
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[name] = cluster
	out.AuthInfos[name] = user.DeepCopy()
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	out.CurrentContext = name
	return out, nil
}

// Merge adds the context of cfg, its cluster and its user (replacing
// entries of the same names) to the kubeconfig files of po, without
// changing the current context: knest's own commands use that one as the
// host. It returns the file written.
func Merge(po *clientcmd.PathOptions, cfg *clientcmdapi.Config) (string, error) {
	existing, err := po.GetStartingConfig()
	if err != nil {
		return "", fmt.Errorf("failed to read your kubeconfig: %w", err)
	}
	for n, c := range cfg.Clusters {
		existing.Clusters[n] = c
	}
	for n, u := range cfg.AuthInfos {
		existing.AuthInfos[n] = u
	}
	for n, c := range cfg.Contexts {
		existing.Contexts[n] = c
	}
	if err := clientcmd.ModifyConfig(po, *existing, true); err != nil {
		return "", fmt.Errorf("failed to write your kubeconfig: %w", err)
	}
	return po.GetDefaultFilename(), nil
}

// Unmerge removes from the kubeconfig files of po the context name that
// Merge added for the tenant API served as serviceHost (its cluster and
// user too), and reports whether it did. A context of that name that is not
// one connect wrote for this tenant (its cluster and user are named after
// it, and the cluster checks the tenant's serving name) is left alone.
func Unmerge(po *clientcmd.PathOptions, name, serviceHost string) (bool, error) {
	existing, err := po.GetStartingConfig()
	if err != nil {
		return false, fmt.Errorf("failed to read your kubeconfig: %w", err)
	}
	kctx, cluster := existing.Contexts[name], existing.Clusters[name]
	if kctx == nil || cluster == nil || kctx.Cluster != name || kctx.AuthInfo != name {
		return false, nil
	}
	serverName := cluster.TLSServerName
	if serverName == "" {
		if u, err := url.Parse(cluster.Server); err == nil {
			serverName = u.Hostname()
		}
	}
	if serverName != serviceHost {
		return false, nil
	}
	delete(existing.Contexts, name)
	delete(existing.Clusters, name)
	delete(existing.AuthInfos, name)
	if existing.CurrentContext == name {
		existing.CurrentContext = ""
	}
	if err := clientcmd.ModifyConfig(po, *existing, true); err != nil {
		return false, fmt.Errorf("failed to write your kubeconfig: %w", err)
	}
	return true, nil
}

// Disconnect removes the contexts `knest connect` added for tenant name in
// host namespace ns from the kubeconfig the host comes from: contextName, or
// by default the host-qualified name and the one older versions used. Only
// contexts that point at this tenant are removed (Unmerge). It returns the
// names it removed.
func Disconnect(host cli.HostFlags, name, ns, contextName string) ([]string, error) {
	names := []string{contextName}
	if contextName == "" {
		names = []string{host.TenantContextName(name), cli.LegacyTenantContextName(name)}
	}
	var removed []string
	for _, n := range names {
		if slices.Contains(removed, n) {
			continue
		}
		ok, err := Unmerge(host.PathOptions(), n, tenant.ServiceHost(ns))
		if err != nil {
			return removed, err
		}
		if ok {
			removed = append(removed, n)
		}
	}
	return removed, nil
}

// loadBalancerServer is the tenant API's URL through its LoadBalancer
// Service, or "" when there is none with an address.
func loadBalancerServer(ctx context.Context, host kubernetes.Interface, ns string) (string, error) {
	svc, err := host.CoreV1().Services(ns).Get(ctx, tenant.ExternalServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("failed to read Service %s/%s in host cluster: %w", ns, tenant.ExternalServiceName, err)
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		switch {
		case ing.Hostname != "":
			return "https://" + ing.Hostname + ":443", nil
		case ing.IP != "":
			return "https://" + ing.IP + ":443", nil
		}
	}
	return "", nil
}

// forward port-forwards a local port to the knestd pod's API port through
// the host API server, until ctx ends. It returns the local port and a
// channel that delivers the forward's end.
func forward(ctx context.Context, hostConfig *rest.Config, host kubernetes.Interface, ns string, localPort int) (int, <-chan error, error) {
	pod, err := host.CoreV1().Pods(ns).Get(ctx, tenant.PodName, metav1.GetOptions{})
	if err != nil {
		return 0, nil, fmt.Errorf("cannot port-forward to the tenant API: failed to read pod %s/%s in host cluster: %w", ns, tenant.PodName, err)
	}
	remote := apiPort(pod)
	u := host.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(tenant.PodName).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(hostConfig)
	if err != nil {
		return 0, nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(u, hostConfig)
	if err != nil {
		return 0, nil, err
	}
	// WebSockets first, as kubectl does; SPDY for older hosts and proxies.
	dialer := portforward.NewFallbackDialer(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("%d:%d", localPort, remote)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-done:
		return 0, nil, fmt.Errorf("cannot port-forward to pod %s/%s through the host API server: %w", ns, tenant.PodName, err)
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s has no local port: %v", ns, tenant.PodName, err)
	}
	return int(ports[0].Local), done, nil
}

// apiPort is the knestd container's API port.
func apiPort(pod *corev1.Pod) int {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if c.Name == tenant.ContainerName && p.Name == tenant.APIPortName {
				return int(p.ContainerPort)
			}
		}
	}
	return 6443
}

// readyWait bounds how long connect waits for an answering tenant API to
// become ready: right after `knest create` the API serves before the parts
// its /readyz also covers (the syncer's caches, DNS) are up, and on a
// devcluster the knestd pod's readiness is simulated, so create does not
// wait for them.
var readyWait = 30 * time.Second

// checkAnswers asks the tenant API for /readyz with the kubeconfig's
// credentials, so a wrong address fails here and not in kubectl. An API
// that answers but is not ready yet is asked again until readyWait has
// passed (its /readyz fails with a server error until then); one that
// does not answer, or refuses the credentials, fails at once.
func checkAnswers(ctx context.Context, cfg *clientcmdapi.Config, server string) error {
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		return err
	}
	rc.Timeout = 10 * time.Second
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(readyWait)
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		var status apierrors.APIStatus
		switch {
		case err == nil && string(body) == "ok":
			return nil
		case err != nil && (!errors.As(err, &status) || status.Status().Code < http.StatusInternalServerError):
			// No answer, or one that waiting does not change (a
			// refused credential).
			return fmt.Errorf("the tenant API at %s does not answer: %w", server, err)
		case time.Now().After(deadline):
			if err != nil {
				return fmt.Errorf("the tenant API at %s answers but is not ready after %s: %w", server, readyWait, err)
			}
			return fmt.Errorf("the tenant API at %s answers but is not ready after %s: %s", server, readyWait, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
