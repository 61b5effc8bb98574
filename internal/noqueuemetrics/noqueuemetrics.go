package noqueuemetrics

import (
	_ "unsafe" // go:linkname

	"k8s.io/client-go/util/workqueue"
)

// initialProvider is client-go's process-wide provider as client-go
// initialises it: its unexported no-op provider, the only one for which
// client-go starts no metrics goroutine per queue.
//
//go:linkname initialProvider k8s.io/client-go/util/workqueue.globalMetricsProvider
var initialProvider workqueue.MetricsProvider

// init must be an init, against the house rule: SetProvider's first call
// wins, and the others are made from package inits (see doc.go).
func init() {
	workqueue.SetProvider(initialProvider)
}
