// Package dev holds the integration tests of `knest dev`: real devcluster and
// knestd processes started by the real CLI. They are skipped under -short.
package dev

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
