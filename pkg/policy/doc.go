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
// soft is for teams of one organisation. Tenant pods are held to Pod
// Security baseline: no privileged containers, host namespaces, host ports,
// host paths or added capabilities beyond the default set. Pods run with the
// host's container runtime and share the host kernel: a kernel exploit from
// a tenant container reaches the node and every pod on it. soft guards
// against mistakes and curiosity, not against an attacker.
//
// hard is for untrusted tenants. Pods are held to Pod Security restricted
// (non-root, no privilege escalation, all capabilities dropped, a seccomp
// profile) and every host pod runs with a sandboxed RuntimeClass (kata by
// default), so a tenant's kernel is not the host's. Images are always
// pulled, so a tenant cannot run an image another tenant's credentials
// brought onto the node. The tenant's pods are kept on its node pool by the
// policy's forced placement; without one they share nodes with other
// workloads, sandboxed. What hard does not cover on its own: network
// isolation (NetworkPolicies, built from the policy's egress CIDRs),
// resource exhaustion (quota and LimitRange on the host namespace), and
// flaws in the sandbox itself.
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
//   - Pods and the pod templates of workloads: Pod Security at the
//     profile's level evaluated with k8s.io/pod-security-admission at its
//     latest version, whatever the namespace labels say, after DefaultPod
//     set what can be set safely (a RuntimeDefault seccomp profile; in hard
//     also allowPrivilegeEscalation: false and dropping ALL capabilities).
//     What cannot be defaulted (runAsNonRoot, which depends on the image) is
//     refused with what to set. Volume types outside the allowlist
//     (configMap, secret, projected, downwardAPI, emptyDir,
//     persistentVolumeClaim, ephemeral, and what the operator adds; the
//     allowlist replaces Pod Security's volume rules). nodeName.
//     Tolerations, runtimeClassName, priorityClassName and nodeSelector and
//     node affinity keys outside the policy's allowlists.
//   - Services (CheckService): externalIPs; NodePort, LoadBalancer and
//     ExternalName unless allowed.
//   - Any object (CheckMeta): label and annotation keys under knest.io (and
//     its subdomains) and pod-security.kubernetes.io. Namespaces
//     (CheckNamespace) may carry Pod Security labels that tighten the
//     profile's level, never ones that loosen it.
//   - PriorityClasses (CheckPriorityClass): values above the policy's cap,
//     which stays below the host's system classes.
//
// On the way to the host (ForceHostPod, then CheckHostPod): the forced
// runtime class, the placement nodeSelector and tolerations, no host
// ServiceAccount token, a seccomp profile, and in hard no privilege
// escalation and imagePullPolicy Always; then every check again on the
// translated pod, as a last defence against translation bugs and objects
// admitted before the policy tightened.
//
// Not checked here: pod affinity and topology spread keys (they spread pods
// over nodes but select none), and what translation already drops or
// rewrites (service accounts, selectors, names).
package policy
