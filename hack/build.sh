#!/usr/bin/env bash
# Builds the knest binaries into bin/ with the Kubernetes version stamped in,
# and bin/kubectl from the Kubernetes release knest embeds (k8s.io/kubernetes
# in go.mod, a `tool` there), so the kubectl the README uses is within the
# supported version skew of every tenant and of the devcluster.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ldflags="$(hack/ldflags.sh)"
mkdir -p bin
for cmd in ${KNEST_BINARIES:-knestd knest knest-dev knest-supervisor kubectl}; do
  case "${cmd}" in
    kubectl) pkg=k8s.io/kubernetes/cmd/kubectl ;;
    *) pkg="./cmd/${cmd}" ;;
  esac
  go build -ldflags "${ldflags}" -o "bin/${cmd}" "${pkg}"
done
