#!/usr/bin/env bash
# Builds a release into _output/release: the knest CLI for linux, darwin
# and windows on amd64 and arm64, knestd and knest-supervisor for linux
# amd64 and arm64 (all
# static, CGO_ENABLED=0, stripped), the packaged chart, an SPDX SBOM of the
# binaries and SHA256SUMS. The knestd images are built by the Dockerfile
# (docker buildx build --platform linux/amd64,linux/arm64).
#
#   hack/release.sh [--push oci://REGISTRY/REPO] [--allow-missing-cli]
#
# --push pushes the chart with the Helm SDK (credentials: helm registry
# login). A CLI platform that does not build fails the release unless
# --allow-missing-cli, which lists it in MISSING instead.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

push=""
allow_missing=false
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push="$2"; shift 2 ;;
    --push=*) push="${1#--push=}"; shift ;;
    --allow-missing-cli) allow_missing=true; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

out=_output/release
version=${KNEST_VERSION:-v$(sed -n 's/^version: *//p' charts/knest/Chart.yaml)}
export KNEST_VERSION="${version}"
ldflags="-s -w $(hack/ldflags.sh)"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
rm -rf "${out}"
mkdir -p "${out}"
started=${SECONDS}

build() { # os arch cmd
  local ext=""
  if [ "$1" = windows ]; then ext=.exe; fi
  local bin="${out}/$3-${version}-$1-$2${ext}"
  local t0=${SECONDS}
  echo "building ${bin}"
  CGO_ENABLED=0 GOOS="$1" GOARCH="$2" go build -trimpath -ldflags "${ldflags}" -o "${bin}" "./cmd/$3" 2>"${out}/.build.log" || {
    sed 's/^/  /' "${out}/.build.log" | head -20 >&2
    return 1
  }
  echo "  $(( SECONDS - t0 ))s, $(wc -c <"${bin}") bytes"
}

missing=()
for platform in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  if ! build "${platform%/*}" "${platform#*/}" knest; then
    echo "knest does not build for ${platform}" >&2
    missing+=("knest ${platform}")
  fi
done
for arch in amd64 arm64; do
  build linux "${arch}" knestd
  build linux "${arch}" knest-supervisor
done
rm -f "${out}/.build.log"

go run ./hack/release chart --out "${out}" ${push:+--push "${push}"}
go run ./hack/release sbom --out "${out}/knest-${version}.spdx.json" --name knest --version "${version}" \
  "${out}"/knest-"${version}"-* "${out}"/knestd-"${version}"-* "${out}"/knest-supervisor-"${version}"-*
(cd "${out}" && sha256sum -- * >SHA256SUMS && sha256sum --check --quiet SHA256SUMS)

if [ ${#missing[@]} -gt 0 ]; then
  printf '%s\n' "${missing[@]}" >"${out}/MISSING"
  echo "missing: ${missing[*]}" >&2
  if ! ${allow_missing}; then exit 1; fi
fi
(cd "${out}" && ls -l -- *)
echo "release ${version} in ${out}, $(( SECONDS - started ))s"
