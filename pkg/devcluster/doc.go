// Package devcluster runs a local host cluster with no Docker: embedded etcd,
// the upstream kube-apiserver (default admission plugins, among them
// ResourceQuota, LimitRanger, PodSecurity and RuntimeClass; RBAC),
// kube-controller-manager and kube-scheduler, and KWOK
// (sigs.k8s.io/kwok) simulating nodes and pod lifecycles, all in one process.
//
// The real scheduler places pods on KWOK nodes; KWOK then gives them IPs from
// the pod CIDR and makes them Running and Ready. The stages that drive pods are
// KWOK's own for readiness and the devcluster's for the rest (see stages/):
// pods that run to completion (a Job's pods, or pods the syncer marks with
// the annotation knest.io/owner-kind=Job) succeed, and deleted pods go away
// when their grace period is over rather than at once.
//
// Nodes come in pools (count, labels, taints, capacity, max pods). By default
// there are two general nodes and one node of the sandboxed pool, labelled
// and tainted knest.io/pool=sandboxed, and a RuntimeClass "kata" whose
// scheduling section targets that pool, as on a host with Kata Containers.
//
// The nodes' kubelet API is served too (pkg/kubelet, with the simkubelet
// backend), so `kubectl logs`, `exec`, `attach` and `port-forward` work
// through the API server as on a real cluster: every node advertises
// InternalIP 127.0.0.1 and the server's port (Config.KubeletPort, a free
// one by default), and the API server dials it with its kubelet client
// certificate and checks the server's against the internal CA
// (pki.Files.InternalCACert); only that client's key gets in. Logs and
// attach read a file per container under Dir/pods, and port-forward is an
// echo.
//
// The devcluster is a development tool, not a sandbox: `kubectl exec` runs
// the command as a local process of the devcluster's user, in a per-pod
// directory under Dir/pods and with a minimal environment, but with that
// user's rights: whoever may create pods/exec in the host cluster can run
// commands on the machine.
//
// Nothing else runs: images are never pulled and containers' processes never
// start. Real pods need a real host (kind); see hack/e2e-kind.sh.
package devcluster
