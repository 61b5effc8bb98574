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
// Nothing here runs containers: images are never pulled and processes never
// start. Real pods need a real host (kind); see hack/e2e-kind.sh.
package devcluster
