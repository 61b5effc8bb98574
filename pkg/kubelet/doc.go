// Package kubelet is the kubelet API of a cluster's nodes as the API server
// calls it for `kubectl logs`, `exec`, `attach` and `port-forward`: one
// Server that takes the calls, checks who makes them, reads their options
// and finds the pod, and a Backend that does what a kubelet would do with
// them. There are two backends:
//
//   - hostproxy, in knestd: a tenant's virtual Nodes, whose pods run as
//     host pods; every call is replayed against the host pod's
//     subresource through the host API server.
//   - devcluster/simkubelet, in the devcluster: the simulated (KWOK) pods,
//     whose logs are files, whose exec runs on the local machine and whose
//     ports echo. It is never linked into knestd (a test of cmd/knestd
//     holds it to that).
//
// kubelettest holds the checks both backends pass.
//
// # Who may call it
//
// Only the API server. Both ends of the connection are the control plane's
// internal CA's, never the cluster CA's: the controller-manager signs
// client and kubelet-serving certificates with the cluster CA for any name
// a cluster admin (a tenant admin, in knestd) approves in a
// CertificateSigningRequest. The Server serves TLS with a certificate the
// internal CA issues in memory at start, and again before it expires, for
// the nodes' InternalIP (the API server dials that address and verifies
// the certificate with --kubelet-certificate-authority, the internal CA).
// It requires a client certificate that the internal CA signed and that
// carries the public key of the API server's own kubelet client
// certificate: a name can be had from a signer, the key cannot. So RBAC
// (pods/log, pods/exec, ...) decides who may use it, in the API server, as
// on any cluster.
//
// # What it serves
//
//   - GET /healthz;
//   - GET /containerLogs/<namespace>/<pod>/<container>, with the log
//     options (follow, previous, timestamps, sinceSeconds, sinceTime,
//     tailLines or the older tail, limitBytes, stream) read into a
//     PodLogOptions with the API server's own parameter conversions and
//     refused, as the API server refuses them, when they contradict
//     themselves;
//   - exec, attach (/<kind>/<namespace>/<pod>[/<uid>]/<container>) and
//     portForward (/portForward/<namespace>/<pod>[/<uid>]), with their
//     streams and ports read as the kubelet reads them
//     (k8s.io/cri-streaming) into a PodExecOptions, PodAttachOptions or
//     PodPortForwardOptions, upgraded to SPDY or WebSocket by the backend.
//
// Nothing else: no /pods, /runningpods, /run, /stats, /configz or /debug,
// which would describe or reach more than one pod. Before a backend sees a
// call, the pod is read from the API server (its UID must match the
// path's, when there is one) and the container must be in the pod's spec;
// anything else is "not found". A connection that the client closes ends
// its requests' context, streams included, so that a command or an attach
// never outlives its client.
package kubelet
