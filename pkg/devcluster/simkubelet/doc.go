// Package simkubelet is the devcluster's kubelet.Backend: what a kubelet
// does for `kubectl logs`, `exec`, `attach` and `port-forward`, for the
// devcluster's simulated (KWOK) pods. Every node advertises the kubelet
// API's port in status.daemonEndpoints.kubeletEndpoint.port and 127.0.0.1
// as its InternalIP, and the API server dials it with its kubelet client
// certificate, so these commands work through the devcluster's API server
// exactly as they reach a real kubelet. pkg/kubelet's Server takes the
// calls: it lets in the API server's kubelet client only, reads the
// options and finds the pod and container before this backend sees them.
//
// This package runs commands on the local machine: it must never be linked
// into knestd, and a test of cmd/knestd makes sure it is not.
//
// KWOK's own server is not used: it serves plain HTTP and TLS without
// client certificates on one port. The protocol handling is
// k8s.io/cri-streaming, the library KWOK and the kubelet use.
//
// # What the pods do
//
// Nothing runs in a simulated pod, so each request gets sensible stand-ins.
// The first request for a container creates its files under the data
// directory:
//
//	pods/<namespace>/<pod>/uid              the pod's UID; a later pod of the same name starts afresh
//	pods/<namespace>/<pod>/<container>.log  the container's log, in the CRI log format
//	pods/<namespace>/<pod>/workdir/         the working directory of exec
//
// and a sweep removes the directories of pods that are gone.
//
//   - Logs and attach are KWOK's (sigs.k8s.io/kwok/pkg/kwok/server), given a
//     ClusterLogs and a ClusterAttach built in memory for the pod: logs read
//     the log file (--tail, --since, --timestamps, --limit-bytes, -f), and
//     attach follows it from its end. The file starts with three lines naming
//     the container; lines appended to it in the CRI format
//     ("<RFC 3339 time> stdout F <text>") show up in `kubectl logs -f` and
//     attach. --previous fails as for a container that never restarted:
//     simulated containers never do.
//   - Exec runs the command on this machine, as the devcluster's user: the
//     devcluster is a development tool, not a sandbox. The command runs in
//     the pod's workdir with a minimal environment (PATH, HOME set to the
//     workdir, HOSTNAME set to the pod's name, and TERM with a TTY), in a
//     process group of its own that is killed when the client goes away.
//     KWOK's exec is not used: it passes the devcluster's whole environment
//     on to the command and loses its exit code.
//   - Port-forward connects every port of a pod to an echo: bytes sent come
//     back. Forwarding to local ports instead would give anyone allowed to
//     port-forward a pod (a tenant, through the syncer) the machine's
//     loopback services, the devcluster's etcd among them. KWOK's forwarding
//     is not used: it tunnels until both directions end, with a context that
//     is never cancelled, so a connection to an echo would never end.
package simkubelet
