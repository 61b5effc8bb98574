// Package dev holds the integration tests of `knest dev`: real devcluster and
// knestd processes started by the real CLI. They are skipped under -short.
package dev

import (
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunTests(m))
}
