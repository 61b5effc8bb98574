// Package cli holds the integration tests of the knest CLI against a host
// cluster: `knest create`, `connect`, `list`, `kubeconfig` and `delete` on a
// devcluster, with knestd started as the chart's StatefulSet would start it
// (the devcluster's pods run no containers). They are skipped under -short.
package cli

import (
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunTests(m))
}
