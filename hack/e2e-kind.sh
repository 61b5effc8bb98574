#!/usr/bin/env bash
# Runs the e2e suite against a kind cluster: creates the cluster (with a
# sandboxed pool and the kata RuntimeClass), builds the knestd image and loads
# it into the nodes, runs the same ginkgo specs as CI runs on the devcluster,
# and always exports the logs and deletes the cluster.
#
# Needs a Docker engine that can run privileged containers on a cgroup v2
# host. Machines without one (such as this project's CI sandbox) cannot run
# kind at all; there the suite runs against the devcluster (make test-e2e).
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "e2e-kind: $*" >&2; exit 1; }

command -v docker >/dev/null || fail "docker is not installed; kind needs a Docker engine (use 'make test-e2e' for the devcluster)"
docker info >/dev/null 2>&1 || fail "no Docker engine is reachable; kind needs one (use 'make test-e2e' for the devcluster)"
cgroup="$(docker info --format '{{.CgroupVersion}}' 2>/dev/null || true)"
[ "${cgroup}" = "2" ] || fail "the Docker host uses cgroup v${cgroup:-?}; kind nodes need cgroup v2 and privileged containers"
docker run --rm --privileged --entrypoint true "${KIND_NODE_IMAGE:-kindest/node:v1.37.0}" >/dev/null 2>&1 \
  || fail "Docker cannot run a privileged kind node container here (no privileges, or the node image cannot be pulled)"

cluster="${KIND_CLUSTER_NAME:-knest-e2e-$$}"
out="${PWD}/_output/kind/${cluster}"
mkdir -p "${out}"
kubeconfig="${out}/kubeconfig"
image="knest/knestd:e2e"

kind() { go tool kind "$@"; }

cleanup() {
  echo "--- exporting logs to ${out}/logs"
  kind export logs "${out}/logs" --name "${cluster}" >/dev/null 2>&1 || true
  echo "--- deleting cluster ${cluster}"
  kind delete cluster --name "${cluster}" || true
}
trap cleanup EXIT

echo "--- creating kind cluster ${cluster}"
kind create cluster --name "${cluster}" --config hack/kind/config.yaml --kubeconfig "${kubeconfig}" \
  ${KIND_NODE_IMAGE:+--image "${KIND_NODE_IMAGE}"} --wait 5m
kubectl --kubeconfig "${kubeconfig}" apply -f manifests/runtimeclasses/kata.yaml

echo "--- building and loading ${image}"
docker build -t "${image}" .
kind load docker-image "${image}" --name "${cluster}"

echo "--- running the e2e suite against kind"
KNEST_E2E_HOST_KUBECONFIG="${kubeconfig}" go test -count=1 -timeout 30m ./e2e/... -args -ginkgo.v
