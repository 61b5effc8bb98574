#!/usr/bin/env bash
# Runs Kubernetes' conformance specs ([Conformance], from the e2e suite of
# the Kubernetes version knest embeds) against knest tenants and, as the
# reference, against the plain host they run on.
#
#   hack/conformance.sh [--targets "host tenant-hard tenant-soft"] [--focus REGEX]
#                       [--skip REGEX] [--procs 4] [--timeout 3h] [--out _output/conformance]
#                       [--host-kubeconfig FILE --tenant-kubeconfig FILE] [--allowed FILE]
#                       [--skip-file FILE]
#
# Without --host-kubeconfig it starts a devcluster (`knest dev up`, no
# Docker) with tenants conf-hard (hard) and conf-soft (soft), and two nodes
# in the sandboxed pool, so that the hard tenant too has the two schedulable
# nodes the suite asks for ([sig-architecture] "at least two untainted
# nodes"). The devcluster
# runs no containers, so specs that need a running container fail on the
# host too: what counts is the specs that pass on the host and fail on a
# tenant. With --host-kubeconfig (a kind cluster from hack/e2e-kind.sh, or
# any cluster) and --tenant-kubeconfig (a tenant's kubeconfig, from `knest
# connect --print`), target "tenant" runs against that tenant and every
# spec can pass.
#
# Results: OUT/<target>/report.json and junit.xml (per spec, from ginkgo),
# and OUT/summary.md (per SIG, passed/failed per target, and the specs that
# pass on the host but fail on a tenant). With --allowed FILE (spec names a
# tenant may fail, one a line) the script fails when a tenant fails any
# other spec the host does not fail too: the CI gate. With --skip-file FILE
# (spec names, one a line, # comments) those specs are skipped: the CI run
# skips the specs that wait for a server in a pod, which the devcluster
# never runs (hack/conformance/skip-devcluster.txt, with the reason).
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets="host tenant-hard tenant-soft"
focus='\[Conformance\]'
skip='\[Disruptive\]|\[Flaky\]'
procs=4
timeout=3h
out=_output/conformance
host_kubeconfig=""
tenant_kubeconfig=""
allowed=""
skip_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets="$2"; shift 2 ;;
    --focus) focus="$2"; shift 2 ;;
    --skip) skip="$2"; shift 2 ;;
    --procs) procs="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --host-kubeconfig) host_kubeconfig="$2"; shift 2 ;;
    --tenant-kubeconfig) tenant_kubeconfig="$2"; shift 2 ;;
    --allowed) allowed="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --skip-file) skip_file="$2"; shift 2 ;;
    *) echo "hack/conformance.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -n "${skip_file}" ]; then
  # Each name becomes a literal alternative of the skip regex.
  while IFS= read -r name; do
    case "${name}" in ''|'#'*) continue ;; esac
    skip="${skip}|$(printf '%s' "${name}" | sed -e 's/[][\.*^$(){}?+|/]/\\&/g')"
  done <"${skip_file}"
fi

bin="${PWD}/_output/bin"
mkdir -p "${bin}" "${out}"
out="$(cd "${out}" && pwd)"

echo "--- building e2e.test and ginkgo (k8s.io/kubernetes $(go list -m -f '{{.Version}}' k8s.io/kubernetes); the first build takes 12-25 minutes)"
# Its own module keeps the e2e suite's dependencies out of knest's go.mod;
# -vet=off saves minutes; the Go build cache makes later builds a relink.
(cd hack/tools/conformance &&
  go test -c -vet=off -ldflags "$(../../ldflags.sh)" -o "${bin}/e2e.test" k8s.io/kubernetes/test/e2e &&
  go build -o "${bin}/ginkgo" github.com/onsi/ginkgo/v2/ginkgo)

dev_pid=""
cleanup() {
  if [ -n "${dev_pid}" ]; then
    kill -TERM "${dev_pid}" 2>/dev/null || true
    wait "${dev_pid}" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [ -z "${host_kubeconfig}" ]; then
  if [ ! -x bin/knest ] || [ ! -x bin/knestd ]; then
    echo "hack/conformance.sh: bin/knest and bin/knestd are missing; run 'make build' first" >&2
    exit 1
  fi
  dev="${out}/dev"
  rm -rf "${dev}"
  echo "--- starting a devcluster with tenants conf-hard and conf-soft in ${dev}"
  mkdir -p "${out}"
  bin/knest dev up --dir "${dev}" --sandboxed-nodes 2 --tenants conf-hard:hard,conf-soft:soft >"${out}/dev-up.log" 2>&1 &
  dev_pid=$!
  for _ in $(seq 1 180); do
    if grep -q '^knest dev is up' "${out}/dev-up.log"; then break; fi
    if ! kill -0 "${dev_pid}" 2>/dev/null; then
      echo "hack/conformance.sh: knest dev up exited; see ${out}/dev-up.log and ${dev}/logs" >&2
      exit 1
    fi
    sleep 1
  done
  grep -q '^knest dev is up' "${out}/dev-up.log" || { echo "hack/conformance.sh: knest dev up was not up in 3 minutes" >&2; exit 1; }
  host_kubeconfig="${dev}/host.kubeconfig"
  # The operator sizes each tenant's host quota for what it runs; the
  # suite makes 200 Services at once (Service endpoints latency) beside
  # the other specs' (the chart's default is 50).
  for t in conf-hard conf-soft; do
    "$([ -x bin/kubectl ] && echo bin/kubectl || echo kubectl)" --kubeconfig "${host_kubeconfig}" -n "knest-${t}" patch resourcequota knest-tenant --type merge \
      -p '{"spec":{"hard":{"services":"300"}}}' >/dev/null
  done
fi

kubeconfig_of() {
  case "$1" in
    host) echo "${host_kubeconfig}" ;;
    tenant) echo "${tenant_kubeconfig}" ;;
    tenant-hard) echo "${out}/dev/tenants/conf-hard.kubeconfig" ;;
    tenant-soft) echo "${out}/dev/tenants/conf-soft.kubeconfig" ;;
    *) echo "hack/conformance.sh: unknown target $1 (host, tenant, tenant-hard, tenant-soft)" >&2; exit 2 ;;
  esac
}

for target in ${targets}; do
  kubeconfig="$(kubeconfig_of "${target}")"
  [ -f "${kubeconfig}" ] || { echo "hack/conformance.sh: no kubeconfig for target ${target} (${kubeconfig})" >&2; exit 2; }
  dir="${out}/${target}"
  rm -rf "${dir}"
  mkdir -p "${dir}"
  echo "--- ${target}: ${focus} (skip ${skip:0:80}${skip_file:+... and the specs of ${skip_file}}), ${procs} processes; log ${dir}/e2e.log"
  start=$(date +%s)
  # Parallel specs in parallel, [Serial] ones on their own at the end
  # (ginkgo's Serial decorator). A failing spec must not stop the run.
  "${bin}/ginkgo" --procs="${procs}" --timeout="${timeout}" --no-color \
    --focus="${focus}" --skip="${skip}" \
    --output-dir="${dir}" --json-report=report.json --junit-report=junit.xml \
    "${bin}/e2e.test" -- \
    --kubeconfig="${kubeconfig}" --provider=skeleton --num-nodes=0 --allowed-not-ready-nodes=-1 \
    --report-dir="${dir}" >"${dir}/e2e.log" 2>&1 || true
  echo "    $(( $(date +%s) - start ))s"
done

status=0
go run ./hack/conformance/summary --out "${out}" --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  ${allowed:+--allowed "${allowed}"} ${targets} || status=$?
cat "${out}/summary.md"
exit "${status}"
