// Package syncer holds the integration tests of the syncer: a real devcluster
// host and a real knestd syncing into it with the namespaced knestd Role.
// They are skipped under -short.
package syncer

import (
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunTests(m))
}
