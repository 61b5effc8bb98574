// Package controlplane runs the upstream kube-apiserver and
// kube-controller-manager in the calling process, against an embedded etcd.
//
// Both are configured the way their own binaries are: an ordinary flag list is
// parsed into the upstream option structs, which are completed, validated and
// run. This keeps the configuration readable (the flags are the documented
// interface of both components) without going through their cobra commands,
// whose signal handling may only be installed once per process.
//
// One control plane per OS process: feature gates, the metrics registry,
// logging and configz are process-global in both components.
//
// # Start-up
//
// Start runs the list of steps Steps returns with a pkg/lifecycle Runner:
// the data directory and its lock, the API server's listener, certificates,
// the encryption key, the private runtime files, etcd, the clients, the API
// server (until /readyz answers) and the controller-manager (until the
// controllers demonstrably run). They stop in the reverse order. knestd runs
// the same steps among its own.
//
// # API server
//
// Anonymous requests are refused everywhere except /livez, /readyz and
// /healthz, which kubelet probes call without credentials. Authorization is
// RBAC only (there are no real kubelets, so the Node authorizer has nobody to
// authorize). Secrets are encrypted at rest. The endpoint reconciler is off when
// the server advertises a loopback address: the tenant's "kubernetes" Service
// is the syncer's business, and the API server refuses to reconcile endpoints
// to a loopback address anyway.
//
// Client certificates of two CAs are accepted: the cluster CA (the tenant's
// admin, and whatever the tenant's CSR signer issues) and knestd's internal
// CA (knestd's own clients, the controller-manager). The identities knestd
// reserves (system:apiserver, system:knest:*) are guarded by pkg/identity
// around the upstream authenticator and authorizer: they cannot be
// impersonated, whatever RBAC says, and are only accepted from a
// certificate of the internal CA. Every server of the chain (aggregator,
// kube-apiserver, apiextensions) holds its own copy of the generic
// configuration, so RunAPIServer builds the chain itself instead of calling
// the upstream Run, and guards each copy before anything is built.
//
// # Bootstrap objects
//
// knestd disables upstream's rbac/bootstrap-roles and
// scheduling/bootstrap-system-priority-classes post-start hooks and installs
// its own (bootstrap.go): upstream's RBAC reconciliation on upstream's
// bootstrap policy and upstream's system PriorityClasses, run at once
// instead of after upstream's one-second initial sleep, against one LIST per
// kind, writing only what differs. A start whose objects match writes
// nothing; a changed or deleted default is repaired, as upstream does.
//
// # OpenAPI
//
// The kube-apiserver's /openapi/v2 spec is built on its first request
// instead of before the server serves (openapi.go): upstream's builder on
// the same routes, once; /openapi/v3 serves upstream's documents and
// hashes, each document built when first asked for (openapiv3.go). The
// OpenAPI configurations keep no builder and, once the servers are built,
// no definitions (keepNoOpenAPIBuilder, releaseOpenAPIDefinitions).
//
// # Controllers
//
// The controller-manager runs the controllers that act on API objects alone:
// workloads (deployment, replicaset, replicationcontroller, statefulset,
// daemonset, job, cronjob, ttl-after-finished, disruption, pod garbage
// collection), namespaces and the garbage collector, service accounts and their
// tokens, the root CA publisher, endpoints and endpoint slices (including
// mirroring), resource quota, cluster-role aggregation, certificate signing
// requests, PVC/PV and VolumeAttributesClass protection (the API server adds
// their finalizers; without the controller a deleted class never goes),
// ephemeral volumes, the horizontal pod
// autoscaler, ServiceCIDR bookkeeping, validating admission policy status and
// the legacy token cleaner.
//
// Left out, because the tenant has no nodes or cloud of its own and the syncer
// owns what they would touch: cloud and node lifecycle, node IPAM, routes,
// taint eviction, the TTL controller (it annotates nodes), attach/detach, the
// PersistentVolume binder and expander (the host binds and expands the
// volumes behind synced claims; the syncer brings their status back), and
// the alpha and opt-in controllers (bootstrap tokens, storage version GC and
// migration, DRA, pod groups, SELinux warnings).
package controlplane
