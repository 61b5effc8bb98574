// Package egress is the dialer of the tenant API server: every connection
// the API server opens on a tenant's behalf is checked here, when it is
// dialled and after name resolution, so the API server in knestd (which runs
// inside the host network) is not a proxy into the host network.
//
// # How the connections get here
//
// Through the API server's own mechanism: an EgressSelectorConfiguration
// (SelectorConfiguration, given to kube-apiserver as
// --egress-selector-config-file) routes the "cluster" and "controlplane"
// egress types as HTTP CONNECT over a unix socket in knestd's data
// directory, which Server serves; "etcd" (knestd's embedded etcd) is dialled
// directly. In Kubernetes v1.37 the egress types carry these connections
// (read in k8s.io/kubernetes and k8s.io/apiserver; grep for
// egressselector.Cluster and egressselector.ControlPlane):
//
// cluster:
//   - the kubelet client: pods/log, exec, attach, portforward, and
//     nodes/proxy on the kubelet port (pkg/kubelet/client makeTransport,
//     given the selector's Lookup by cmd/kube-apiserver/app
//     CreateKubeAPIServerConfig). The target is a Node's address, which the
//     tenant can write.
//   - the proxy transport of pods/proxy, services/proxy and nodes/proxy on
//     other ports (the ProxyTransport's DialContext, set in the same
//     function). Targets are pod status IPs, Endpoints, Node addresses: all
//     tenant-written.
//   - admission webhooks and CRD conversion webhooks that name a service
//     (k8s.io/apiserver pkg/util/webhook ClientConfigForService), resolved
//     to the Service's ClusterIP (--enable-aggregator-routing=false).
//   - the aggregator: requests proxied to APIServices and its availability
//     checks (kube-aggregator pkg/apiserver, proxyTransportDial).
//
// controlplane:
//   - admission webhooks and CRD conversion webhooks that name a url
//     (ClientConfigFor): tenant-written, so routed here too; the tenant's
//     webhook urls are also refused at admission unless the operator lists
//     their host (pkg/policy CheckWebhookURL).
//   - authentication and authorization webhooks, OIDC issuers that ask for
//     an egress type, the audit webhook and tracing: none is configured in
//     knestd; an operator who adds one must allow its network in
//     apiServerEgressCIDRs.
//
// Not here: the API server's loopback client (kubernetes.default.svc:443
// is resolved to the loopback address before any egress lookup), and etcd.
//
// # What is allowed
//
// Rules decides. A target is host:port; a name is resolved here, every
// address it resolves to must be allowed, and only those checked addresses
// are dialled (no second lookup). An address is allowed when it is:
//
//   - knestd's kubelet listener, exactly: the virtual Nodes' InternalIP and
//     the kubelet port;
//   - in the operator's apiServerEgressCIDRs (pkg/policy);
//   - the IP of one of the tenant's running host pods or the ClusterIP of
//     one of its host Services, as knestd's host informers see them
//     (TenantAddresses): never from the tenant's own pod status, Nodes or
//     Endpoints, which a tenant cluster-admin writes freely.
//
// Until knestd's host caches have synced, and in a knestd without a host,
// only the first two are allowed. The unspecified address and multicast are
// never allowed.
//
// # What a refusal looks like
//
// A refused CONNECT is answered 403 with the reason as the status text and
// the body. The API server's HTTP CONNECT client puts the status line (not
// the body) in its dial error, which reaches the tenant, e.g.:
//
//	proxy error from <socket> while dialing 192.0.2.2:6443, code 403: 403 knest refused the tenant API server's connection to 192.0.2.2:6443: 192.0.2.2 is not a running pod or a Service of tenant acme on the host, knestd's kubelet API, nor in the operator's apiServerEgressCIDRs
//
// Each refusal is logged with its target and reason and counted in
// knest_apiserver_egress_refusals_total{reason}.
package egress
