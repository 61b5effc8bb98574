#!/usr/bin/env bash
# Runs every test: unit tests, the syncer's tests against API servers it
# starts in-process, the integration tests against real knestd and
# knest processes, and the e2e suite against a devcluster. The binaries in
# bin/ (built by `make build`) serve every test package.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export KNEST_BIN_DIR="${PWD}/bin"
for bin in knestd knest; do
  if [ ! -x "${KNEST_BIN_DIR}/${bin}" ]; then
    echo "hack/test.sh: ${KNEST_BIN_DIR}/${bin} is missing; run 'make build' first" >&2
    exit 1
  fi
done

echo "--- unit tests"
go test -short ./...

echo "--- syncer tests (engine and controllers in the test process, real API servers)"
# -short skips them above: they start a host and a tenant API server per
# test package (pkg/syncer/internal/synctest). bin/ is not needed.
go test ./pkg/syncer/...

echo "--- integration tests"
# One package at a time: each test starts control planes of its own, and two
# cores do not run many of them at once.
go test -count=1 -p 1 -timeout 30m -run 'TestIntegration' ./test/integration/...

echo "--- end-to-end tests (devcluster)"
go test -count=1 -timeout 30m ./e2e/... -args -ginkgo.v

echo "--- conformance subset: Kubernetes' [sig-api-machinery] [Conformance] specs on a hard tenant"
# The proof of "a full API" that CI can afford (make conformance runs all of
# them, on the host and both profiles). e2e.test is a relink when the Go
# build cache holds it. Specs that wait for a server in a pod are skipped:
# the devcluster runs no containers (see the skip file for each).
make conformance-ci
