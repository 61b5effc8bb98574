// Package pods translates tenant pods to host pods.
//
// Build is the one place a host pod is made, on every path that writes
// one: creation, metadata and image updates, ephemeral containers (kubectl
// debug) and in-place resizes. It checks the tenant pod as admission does
// (policy.CheckPod), translates it (Forward), places it within the policy's
// allowlists, forces the profile's fields (policy.ForceHostPod) and checks
// the result (policy.CheckHostPod). A pod that fails is refused with the
// reason; nothing is written. Writes splits a change of a running pod into
// the writes Kubernetes accepts.
//
// What becomes of each pod field is a table (policy.PodSpecFields and
// policy.ContainerFields), tested to cover every field of the API this
// package is built with. Forward builds the host pod from that allowlist,
// never by copying the spec and patching what is known:
//
//   - containers, init and ephemeral containers: name, image, command,
//     args, workingDir, ports (never a host port), env and envFrom
//     (ConfigMap and Secret references renamed to their host copies),
//     resources, resize policy, restart policy and rules, volume mounts and
//     devices, probes, lifecycle, termination message settings,
//     imagePullPolicy, securityContext, stdin and tty;
//   - volumes of the allowlisted types (configMap, secret, projected,
//     downwardAPI, emptyDir, persistentVolumeClaim, ephemeral), references
//     renamed; the tenant's service-account token volume reads the token
//     Secret knest issues (tokens reach host pods through a Secret of their
//     own, never minted by the host kubelet for a tenant's audience);
//   - the downward API shows the tenant's view: name, namespace, UID and
//     ServiceAccount of the tenant pod, the virtual node's address as the
//     host IP, single labels and annotations under the keys the host pod
//     carries them with (the annotations a pod names are copied for it);
//   - restartPolicy, grace period, activeDeadlineSeconds, the pod security
//     context, hostname and subdomain (as the tenant sees them),
//     shareProcessNamespace, hostAliases, os, hostUsers, pod resources, image
//     pull secrets (renamed);
//   - dnsPolicy and dnsConfig, except that a ClusterFirst pod is pointed
//     at the tenant's DNS server with the tenant's search path (policy
//     None), never at the host's DNS, which answers for every host Service;
//   - nodeSelector, tolerations, node affinity, runtimeClassName within the
//     policy's allowlists; priorityClassName mapped to the host class the
//     policy names; pod affinity and topology spread with their selectors
//     confined to the tenant's own pods (place).
//
// Metadata is allowlisted too: tenant labels reach the host pod only under
// knest's own keys (translate.TenantKey), so selectors work and nothing on
// the host (runtimes, CNI plugins, meshes, autoscalers) acts on them;
// labels and annotations the policy allowlists reach it as they are.
//
// Never on the host pod: node names, host namespaces and ports of the
// node, the service account (host pods run as a fixed low-privilege host
// ServiceAccount without a token), service links (the environment a tenant
// expects is computed from tenant Services by the caller), readiness and
// scheduling gates (the tenant's: Backward keeps a gated pod un-Ready, and
// the syncer makes a host pod once the gates are gone).
package pods
