#!/usr/bin/env bash
# Prints the -ldflags value that stamps knest's version and commit
# (pkg/version) and the Kubernetes version into knest binaries. Without it
# /version reports v0.0.0-master and kubectl complains.
# knest's version is KNEST_VERSION, or v<the chart's version>: the knestd
# image tag the chart runs by default.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kube_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
major=$(echo "${kube_version#v}" | cut -d. -f1)
minor=$(echo "${kube_version#v}" | cut -d. -f2)
commit=$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
tree=clean
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then tree=dirty; fi
# The commit time, not the wall clock: the same tree builds the same binary.
build_date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo 1970-01-01T00:00:00Z)

flags=()
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  flags+=("-X ${pkg}.gitVersion=${kube_version}")
  flags+=("-X ${pkg}.gitMajor=${major}")
  flags+=("-X ${pkg}.gitMinor=${minor}")
  flags+=("-X ${pkg}.gitCommit=${commit}")
  flags+=("-X ${pkg}.gitTreeState=${tree}")
  flags+=("-X ${pkg}.buildDate=${build_date}")
done
knest_version=${KNEST_VERSION:-v$(sed -n 's/^version: *//p' charts/knest/Chart.yaml)}
flags+=("-X github.com/knest-dev/knest/pkg/version.version=${knest_version}")
flags+=("-X github.com/knest-dev/knest/pkg/version.commit=${commit}")
echo "${flags[*]}"
