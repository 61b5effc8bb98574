// Package policy decides what a tenant may run on the host: the isolation
// profiles, the operator's policy file, and pure functions that default,
// check and force tenant and host objects. It holds no client; the
// admission plugin of the tenant API server and the syncer call it.
//
// # Profiles
//
// A tenant has one isolation profile for its whole life (knestd
// --isolation, default hard).
//
// Both profiles hold tenant pods to a floor, Pod Security baseline by
// default (the operator can raise it to restricted in the policy, the
// tenant cannot): no privileged containers, host namespaces, host ports,
// host paths or added capabilities beyond the default set, whatever the
// labels of the pod's namespace say. Root images run as they are. A
// tenant's own Pod Security labels are its business: stricter ones apply
// as upstream Pod Security applies them, looser ones get a warning
// (NamespaceWarnings) and no effect below the floor.
//
// soft is for teams of one organisation. Pods run with the host's container
// runtime and share the host kernel: a kernel exploit from a tenant
// container reaches the node and every pod on it. soft guards against
// mistakes and curiosity, not against an attacker.
//
// hard is for untrusted tenants. The boundary is the VM, not the user ID:
// every host pod runs with a sandboxed RuntimeClass (kata by default), so a
// tenant's kernel is not the host's, and root inside it is allowed, as in
// sandboxed KaaS offerings. Images are always pulled, so a tenant cannot
// run an image another tenant's credentials brought onto the node. The
// tenant's pods are kept on its node pool by the policy's forced
// placement. What hard does not cover on its own: network isolation
// (NetworkPolicies, built from the policy's egress CIDRs), resource
// exhaustion (quota and LimitRange on the host namespace), and flaws in the
// sandbox itself.
//
// Forced fields (ForceHostPod) follow the profile, not the floor, and never
// break a root image: NET_RAW is dropped in both, nothing else.
//
// # Policy file
//
// The operator's allowlists and forced placement (Policy), in YAML, decoded
// strictly: Load fails on an unknown field, a bad profile, a malformed CIDR
// or an unknown toleration operator, naming the file and the field's path,
// so that knestd stops at start rather than run with half a policy. A field left out takes the profile's default, and each default
// is the safe choice; loosening is always written down.
//
// # What is refused, and where
//
// In the tenant API server, at apply time (DefaultPod, then CheckPod and
// the other checks), with a message naming the field, the value and the
// profile:
//
//   - Pods and the pod templates of workloads: Pod Security at the floor,
//     evaluated with k8s.io/pod-security-admission at its latest version,
//     after DefaultPod set what can be set safely (a RuntimeDefault seccomp
//     profile; at a restricted floor also allowPrivilegeEscalation: false
//     and dropping ALL capabilities). Volume types outside the allowlist
//     (the allowlist replaces Pod Security's volume rules) and projected
//     sources outside ProjectedSources. Tolerations, runtimeClassName and
//     priorityClassName outside the policy's allowlists. (A tenant's node
//     selection is not refused: HostNodeSelection decides it as the
//     tenant's virtual Nodes see it and translates what is left; a host
//     pod's is checked against the allowlist.) Localhost seccomp and AppArmor
//     profiles and SELinux options the policy does not list. Downward API
//     fields that show the host node. Claims of ephemeral volumes outside
//     the storage policy (CheckClaim). Fields whose disposition is Refused
//     (PodSpecFields: every pod and container field has one).
//   - PersistentVolumeClaims (CheckClaim): storage classes outside the
//     allowlist, the empty class, volume names, selectors, data sources.
//   - Services (CheckService): externalIPs; NodePort, LoadBalancer and
//     ExternalName unless allowed.
//   - Any object (CheckMeta): label and annotation keys under knest.io and
//     its subdomains.
//   - PriorityClasses (CheckPriorityClass): values above the policy's cap,
//     which stays below the host's system classes.
//
// On the way to the host (ForceHostPod, then CheckHostPod, both called by
// the syncer's one pod builder): the forced runtime class, the placement
// nodeSelector and tolerations, no host ServiceAccount token, a seccomp
// profile, NET_RAW dropped, and in hard imagePullPolicy Always; then every
// check again on the translated pod, as a last defence against translation
// bugs and objects admitted before the policy tightened.
package policy
