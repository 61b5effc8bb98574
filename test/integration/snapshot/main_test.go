// Package snapshot holds the integration tests of snapshots and restores:
// real knestd processes and the knest CLI. They are skipped under -short.
package snapshot

import (
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunTests(m))
}
