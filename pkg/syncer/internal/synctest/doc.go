// Package synctest runs the syncer's controllers inside a test process
// against two real API servers, a host and a tenant, so that every branch of
// the engine and the pod reconciler can be driven in seconds instead of
// through a devcluster and a knestd process.
//
// The API servers are pkg/controlplane's (kube-apiserver with an embedded
// etcd, and the controller-manager's service-account controller, which
// start-up waits for), each in a child process: feature gates, the metrics
// registry, logging and configz are process-global, so one process holds one
// control plane. A test package calls Main from its TestMain; Main re-executes
// the test binary twice with an environment variable that makes the copy
// serve a control plane instead of running tests, reads each child's
// kubeconfig path from its standard output, runs the tests, and stops the
// children (closing their standard input) at the end. The servers are shared
// by the package's tests; each test gets its own tenant name, host namespace
// and tenant namespace from New.
//
// Nothing runs pods: the test plays the host's scheduler and kubelet by
// binding host pods and writing their status. Under -short no server is
// started and New skips the test.
//
// Only _test files import this package: it links the whole of
// kube-apiserver and kube-controller-manager.
package synctest
