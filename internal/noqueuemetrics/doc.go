// Package noqueuemetrics turns off client-go's work-queue metrics for the
// whole process, and with them the 500 ms ticker every named work queue runs
// to update them. knestd imports it for that side effect only.
//
// An idle knestd ran 79 named client-go work queues (the kube-apiserver's
// and the controller-manager's controllers), each with a goroutine woken
// every 500 ms by updateUnfinishedWorkLoop to set two gauges: ~160 wake-ups
// a second of an idle tenant's ~900. client-go starts that goroutine for
// every named queue unless the process-wide metrics provider is its own
// unexported no-op provider, which it is until the first
// workqueue.SetProvider call; later calls are ignored (a sync.Once).
// k8s.io/component-base/metrics/prometheus/workqueue (linked by the
// kube-apiserver and the controller-manager) and controller-runtime's
// internal metrics package call SetProvider from their package init.
//
// This package wins that race: its init calls SetProvider with the
// provider client-go started with, read through go:linkname, so the
// sync.Once is spent on the no-op provider and the others' calls do
// nothing. It wins because Go initialises packages in the order of their
// import paths among those whose imports are initialised (the language
// specification, since Go 1.21), and this package needs nothing beyond
// client-go's workqueue: "github.com/..." comes before "k8s.io/..." and
// "sigs.k8s.io/...". cmd/knestd's tests fail if the ticker comes back (a
// reordering, or a client-go that renames the variable, which also fails
// the link).
//
// The cost: the kube-apiserver's and controller-manager's workqueue_*
// metrics are gone from the tenant API server's /metrics. knestd's syncer
// keeps its queue metrics: controller-runtime's priority queue is given
// controller-runtime's provider explicitly, not the process-wide one.
package noqueuemetrics
