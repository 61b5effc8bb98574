// Package e2e is knest's end-to-end suite (ginkgo v2).
//
// By default BeforeSuite starts a local environment with `knest dev up` (the
// devcluster host and a tenant) from the binaries in $KNEST_BIN_DIR (bin/
// by default; `make test-e2e` builds them). With $KNEST_E2E_HOST_KUBECONFIG
// the same specs run against an existing host cluster instead, such as the
// kind cluster hack/e2e-kind.sh creates.
//
//	make test-e2e
//	KNEST_E2E_HOST_KUBECONFIG=~/.kube/config go test ./e2e -ginkgo.v
package e2e
