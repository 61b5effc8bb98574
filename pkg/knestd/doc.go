// Package knestd runs one tenant control plane in the calling process:
// embedded etcd, kube-apiserver and kube-controller-manager, with the PKI,
// encryption key and kubeconfigs they need, all kept in one data directory.
//
// Start-up order is etcd, then the API server, then (once /readyz answers) the
// controller-manager. The control plane counts as ready when the API server is
// ready and the controllers demonstrably run: a probe namespace, created at
// every start, got its default ServiceAccount (without it a tenant's first pod
// would be refused). Only then is admin.kubeconfig written.
//
// Before any of them, knestd serves the API server's egress socket
// (EgressSocket in the data directory, pkg/egress): the API server is
// configured to open every connection it makes for the tenant through it.
// Its rules gain knestd's kubelet listener once that listens, and the
// tenant's host pods and Services once the syncer's host cache has synced;
// the socket goes last at shutdown.
//
// All of it is one list of named steps run by a pkg/lifecycle Runner:
// the host cluster (syncing only), the egress socket, the control plane's
// steps (controlplane.Steps), the admin kubeconfig and its Secret, the ready
// message (ReadyMessage), then, when syncing, the kubelet API, DNS and the
// syncer. Adding a part is adding a step. Each step's duration is logged at
// -v=1, which is where to look when start-up gets slower.
//
// Shutdown stops the steps in the reverse order, on a signal, on the failure
// of any part, or when a step fails to start, each component within a fixed
// budget, so a pod's termination grace period is never the thing that stops
// knestd.
package knestd
