#!/usr/bin/env bash
# Runs the e2e suite against a kind cluster: creates the cluster (with a
# sandboxed pool and the kata RuntimeClass), builds the knestd image and loads
# it into the nodes, creates tenant "e2e" with `knest create` (the chart, its
# StatefulSet running that image), connects to it through a port-forward
# (`knest connect --print`), runs the same ginkgo specs as CI runs on the
# devcluster against host and tenant, and always exports the logs and
# deletes the cluster.
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
tenant_kubeconfig="${out}/tenant.kubeconfig"
image_repo="ghcr.io/knest-dev/knestd"
image_tag="e2e"
tenant="e2e"
tenant_namespace="knest-${tenant}"
connect_pid=""

kind() { go tool kind "$@"; }
# The kubectl of the Kubernetes release knest embeds (hack/build.sh), within
# the supported skew of the kind nodes and the tenant.
kubectl() { bin/kubectl "$@"; }

cleanup() {
  status=$?
  if [ -n "${connect_pid}" ]; then kill "${connect_pid}" 2>/dev/null || true; fi
  if [ "${status}" -ne 0 ] && [ -f "${kubeconfig}" ]; then
    echo "--- tenant ${tenant} on failure"
    kubectl --kubeconfig "${kubeconfig}" -n "${tenant_namespace}" describe pod knestd-0 >"${out}/knestd-0.describe.txt" 2>&1 || true
    kubectl --kubeconfig "${kubeconfig}" -n "${tenant_namespace}" logs knestd-0 --all-containers >"${out}/knestd-0.log" 2>&1 || true
    kubectl --kubeconfig "${kubeconfig}" -n "${tenant_namespace}" logs knestd-0 --previous >"${out}/knestd-0.previous.log" 2>&1 || true
  fi
  echo "--- exporting logs to ${out}/logs"
  kind export logs "${out}/logs" --name "${cluster}" >/dev/null 2>&1 || true
  echo "--- deleting cluster ${cluster}"
  kind delete cluster --name "${cluster}" || true
  exit "${status}"
}
trap cleanup EXIT

echo "--- building bin/knest and bin/kubectl"
KNEST_BINARIES="knest kubectl" hack/build.sh

echo "--- creating kind cluster ${cluster}"
kind create cluster --name "${cluster}" --config hack/kind/config.yaml --kubeconfig "${kubeconfig}" \
  ${KIND_NODE_IMAGE:+--image "${KIND_NODE_IMAGE}"} --wait 5m
kubectl --kubeconfig "${kubeconfig}" apply -f manifests/runtimeclasses/kata.yaml
# Once per host: the hostname claims tenants' Ingresses take (the chart's
# exposure.hostnameClaims binds each knestd in knest-hostnames).
kubectl --kubeconfig "${kubeconfig}" apply -f manifests/hostname-claims.yaml

echo "--- building and loading ${image_repo}:${image_tag}"
docker build -t "${image_repo}:${image_tag}" .
kind load docker-image "${image_repo}:${image_tag}" --name "${cluster}"

echo "--- creating tenant ${tenant}"
# The image is on the nodes only: never pull it.
bin/knest create "${tenant}" --kubeconfig "${kubeconfig}" --timeout 10m \
  --set "knestd.image.repository=${image_repo}" --set "knestd.image.tag=${image_tag}" \
  --set knestd.image.pullPolicy=Never

echo "--- connecting to tenant ${tenant} (port-forward through the host API server)"
bin/knest connect "${tenant}" --kubeconfig "${kubeconfig}" --print >"${tenant_kubeconfig}" 2>"${out}/connect.log" &
connect_pid=$!
for _ in $(seq 60); do
  if grep -q '^current-context:' "${tenant_kubeconfig}" 2>/dev/null; then break; fi
  kill -0 "${connect_pid}" 2>/dev/null || fail "knest connect exited: $(cat "${out}/connect.log")"
  sleep 1
done
grep -q '^current-context:' "${tenant_kubeconfig}" || fail "knest connect printed no kubeconfig within 60s: $(cat "${out}/connect.log")"

echo "--- running the e2e suite against kind and tenant ${tenant}"
KNEST_E2E_HOST_KUBECONFIG="${kubeconfig}" \
KNEST_E2E_TENANT_KUBECONFIG="${tenant_kubeconfig}" \
KNEST_E2E_TENANT_HOST_NAMESPACE="${tenant_namespace}" \
  go test -count=1 -timeout 30m ./e2e/... -args -ginkgo.v
