// Package knestd holds the integration tests of the knestd binary: each test
// drives real knestd processes (etcd, kube-apiserver, kube-controller-manager)
// with client-go. They are skipped under -short.
package knestd

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
