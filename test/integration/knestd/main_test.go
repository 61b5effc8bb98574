// Package knestd holds the integration tests of the knestd binary: each test
// drives real knestd processes (etcd, kube-apiserver, kube-controller-manager)
// with client-go. They are skipped under -short.
package knestd

import (
	"os"
	"testing"

	"github.com/knest-dev/knest/test/integration/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunTests(m))
}
