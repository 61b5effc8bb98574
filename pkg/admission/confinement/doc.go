// Package confinement is the admission plugin that keeps a tenant within
// what the host will run. It is compiled into the tenant kube-apiserver,
// registered in-process and enabled in every configuration: it is neither an
// object a tenant cluster-admin can delete nor a flag a tenant can reach.
//
// It works on the objects the tenant writes, at apply time, so a bad object
// fails with a message instead of sitting Pending:
//
//   - Pods (create, update, ephemeral containers) and the pod templates of
//     workload kinds (Deployments, ReplicaSets, StatefulSets, Jobs, CronJobs,
//     ReplicationControllers, PodTemplates): the profile's safe defaults are
//     set first (mutation), then pkg/policy's checks run (validation): Pod
//     Security at the profile's fixed level whatever the namespace says,
//     volume types, tolerations, runtime and priority classes (node
//     selection is decided by the syncer as the tenant's nodes see it,
//     policy.HostNodeSelection). DaemonSets are refused: tenant pods share host
//     nodes and cannot be pinned to one.
//   - pods/binding: only knestd binds pods (to virtual Nodes).
//   - Services: externalIPs and service types outside the policy.
//   - Namespaces: Pod Security labels that would loosen the profile.
//   - PriorityClasses: values above the policy's cap.
//   - CertificateSigningRequests: a subject naming a reserved identity
//     (pki.ReservedUser, pki.ReservedGroup).
//   - Every object: reserved label and annotation keys (knest.io/,
//     pod-security.kubernetes.io/).
//
// knestd's own clients (pki.InternalUser) and the API server's loopback
// client are exempt: they write virtual Nodes and pod status, which carry
// knest's own labels. Everyone else, the tenant's cluster-admin included, is
// checked. The syncer checks every host pod again before creating it
// (defence in depth).
package confinement
