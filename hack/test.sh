#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests against real
# knestd processes, and the e2e suite against a devcluster (bin/, built by
# `make build`).
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export KNESTD_BIN="${PWD}/bin/knestd"
if [ ! -x "${KNESTD_BIN}" ]; then
  echo "hack/test.sh: ${KNESTD_BIN} is missing; run 'make build' first" >&2
  exit 1
fi

echo "--- unit tests"
go test -short ./...

echo "--- integration tests"
# One package at a time: each test starts control planes of its own, and two
# cores do not run many of them at once.
go test -count=1 -p 1 -timeout 30m -run 'TestIntegration' ./test/integration/...

echo "--- end-to-end tests (devcluster)"
KNEST_BIN_DIR="${PWD}/bin" go test -count=1 -timeout 30m ./e2e/... -args -ginkgo.v
