// Package syncer holds the integration tests of the syncer: a real devcluster
// host and a real knestd syncing into it with the namespaced knestd Role.
// They are skipped under -short.
package syncer

import (
	"os"
	"testing"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	// The tests' controller-runtime clients log through klog, as knestd's do
	// (without it controller-runtime prints a stack trace to say no logger was set).
	ctrllog.SetLogger(klog.Background())
	os.Exit(framework.RunTests(m))
}
