// Package pods translates tenant pods to host pods.
//
// Forward (tenant -> host) builds the host pod from an explicit allowlist of
// pod fields, never by copying the spec and patching what is known:
//
//   - containers, init containers: name, image, command, args, workingDir,
//     ports, env and envFrom (ConfigMap and Secret references renamed to their
//     host copies; downward-API references to the pod's name, namespace and
//     UID answered with the tenant identity), resources, volume mounts,
//     probes, lifecycle, termination message settings, imagePullPolicy,
//     securityContext, stdin and tty;
//   - volumes of the allowlisted types (configMap, secret, projected,
//     downwardAPI, emptyDir, persistentVolumeClaim, ephemeral), references
//     renamed; the tenant's service-account token volume is left out (tokens
//     reach host pods through a Secret of their own);
//   - restartPolicy, grace period, activeDeadlineSeconds, the pod security
//     context, hostname and subdomain (as the tenant sees them), image pull
//     secrets (renamed);
//   - dnsPolicy and dnsConfig, except that a ClusterFirst pod is pointed
//     at the tenant's DNS server with the tenant's search path (policy
//     None), never at the host's DNS, which answers for every host Service.
//
// Everything that would reach beyond the tenant is never copied: node names,
// host namespaces and ports of the node, the service account (host pods run
// as a fixed low-privilege host ServiceAccount without a token), service
// links (the environment a tenant expects is computed from tenant Services
// by the caller), scheduler, priority, runtime class, tolerations and
// affinity (the isolation profile forces those).
package pods
