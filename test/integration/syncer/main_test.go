// Package syncer holds the integration tests of the syncer: a real devcluster
// host and a real knestd syncing into it with the namespaced knestd Role.
// They are skipped under -short.
package syncer

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	cleanup, err := framework.BuildBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
