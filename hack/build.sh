#!/usr/bin/env bash
# Builds the knest binaries into bin/ with the Kubernetes version stamped in.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ldflags="$(hack/ldflags.sh)"
mkdir -p bin
for cmd in ${KNEST_BINARIES:-knestd knest knest-dev}; do
  go build -ldflags "${ldflags}" -o "bin/${cmd}" "./cmd/${cmd}"
done
