// Package kubelet is the kubelet API of a tenant's virtual Nodes, served by
// knestd: the tenant API server calls it for `kubectl logs`, `exec`,
// `attach` and `port-forward` as it would call a node's kubelet, and it
// replays each call against the host API server's subresource of the
// tenant pod's host pod (pods/log, pods/exec, pods/attach,
// pods/portforward) with knestd's own host identity.
//
// # Who may call it
//
// Only the tenant API server. Both ends of the connection are knestd's
// internal CA's, never the cluster CA's: the tenant's controller-manager
// signs client and kubelet-serving certificates with the cluster CA for
// any name a tenant admin approves in a CertificateSigningRequest. The
// endpoint serves TLS with a certificate the internal CA issues in memory
// at start for the virtual Nodes' InternalIP (knestd's advertise address;
// the API server dials that address and verifies the certificate with
// --kubelet-certificate-authority, the internal CA), and it requires a
// client certificate that the internal CA signed and that carries the
// public key of the API server's own kubelet client certificate. So tenant
// RBAC (pods/log, pods/exec, ...) decides who may use it, in the API
// server, as on any cluster.
//
// # What it serves
//
//   - GET /healthz;
//   - GET /containerLogs/<namespace>/<pod>/<container>, with the log
//     options (follow, previous, timestamps, sinceSeconds, sinceTime,
//     tailLines, limitBytes, stream) passed on;
//   - exec, attach (/<kind>/<namespace>/<pod>[/<uid>]/<container>) and
//     portForward (/portForward/<namespace>/<pod>[/<uid>]), upgraded to
//     SPDY or WebSocket, whichever the API server asks for.
//
// Nothing else: no /pods, /runningpods, /run, /stats, /configz or /debug,
// which would describe or reach more than one pod. Before anything is
// forwarded, the tenant pod is read from the tenant API server (its UID must
// match the path's, when there is one), the container must be in the tenant
// pod's spec, and the host pod of that name must be this tenant's copy of
// this very pod: the tenant marker label and the kind, namespace, name and
// UID annotations must all match. Anything else is "not found", whatever
// the host holds under that name, so no request reaches a host pod that is
// not the tenant's, and errors never name host objects.
//
// # Why a reverse proxy
//
// Streams are forwarded as they are: the upgrade request is replayed, with
// only the protocol headers (Upgrade, Connection, X-Stream-Protocol-Version,
// Sec-WebSocket-*) and knestd's host credentials, to the host API server's
// subresource URL, and the upgraded connection is then copied both ways
// (k8s.io/apimachinery's UpgradeAwareHandler, the API server's own kubelet
// proxy). The client's protocol offer thus reaches the host kubelet
// unchanged, so SPDY and WebSocket, every stream protocol version, TTY
// resizing and exit codes work without knestd knowing them. Terminating the
// streams here (the kubelet's streaming server towards the tenant,
// client-go's remotecommand and portforward towards the host) would mean
// re-implementing each protocol version in both directions, and would
// report exit codes and stream errors through one more translation. Logs
// are a plain GET, read through client-go and copied out, so that host
// errors can be told to the tenant without the host's names.
//
// Requests are never sent to a host kubelet directly: the host API server
// authorises each one against knestd's namespaced Role (which needs get on
// pods/log, and create and get on pods/exec, pods/attach and
// pods/portforward) and reaches the kubelet itself.
package kubelet
