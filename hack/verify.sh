#!/usr/bin/env bash
# Fails on unformatted code, vet findings, an untidy go.mod, or generated
# files (the knestd Role copies, manifests/knest.yaml) out of date, or a
# knest CLI that does not build for macOS or has grown past 120 MB.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "${unformatted}" ]; then
  echo "gofmt needed:" >&2
  echo "${unformatted}" >&2
  exit 1
fi

go vet ./...

# A directory of its own: two checkouts verifying at once must not swap
# each other's go.mod.
saved="$(mktemp -d)"
cp go.mod go.sum "${saved}/"
trap 'mv "${saved}/go.mod" "${saved}/go.sum" . && rmdir "${saved}"' EXIT
go mod tidy
if ! git diff --quiet -- go.mod go.sum; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy'" >&2
  git --no-pager diff -- go.mod go.sum >&2
  exit 1
fi

# The conformance tools module (hack/conformance.sh) is tidy too.
(cd hack/tools/conformance && go mod tidy &&
  if ! git diff --quiet -- go.mod go.sum; then
    echo "hack/tools/conformance/go.mod is not tidy: run 'go mod tidy' there" >&2
    git --no-pager diff -- go.mod go.sum >&2
    exit 1
  fi)

# The knest CLI is portable and small: it builds for macOS with no cgo
# (knest-dev holds the Linux-only devcluster), and that plain, unstripped
# binary stays under 120 MB.
cli="$(mktemp)"
CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 go build -o "${cli}" ./cmd/knest
size=$(wc -c <"${cli}")
rm -f "${cli}"
if [ "${size}" -ge 120000000 ]; then
  echo "knest for darwin/arm64 is ${size} bytes, not under 120 MB (120000000 bytes): keep control-plane code out of the CLI (go list -deps ./cmd/knest)" >&2
  exit 1
fi

rendered="$(mktemp)"
role="$(mktemp)"
claims="$(mktemp)"
trap 'rm -f "${rendered}" "${role}" "${claims}"; mv "${saved}/go.mod" "${saved}/go.sum" . && rmdir "${saved}"' EXIT
go run ./hack/manifests -out "${rendered}" -role-out "${role}" -claims-out "${claims}"
for f in knest.yaml:"${rendered}" knestd-role.yaml:"${role}" hostname-claims.yaml:"${claims}"; do
  if ! diff -u "manifests/${f%%:*}" "${f#*:}"; then
    echo "manifests/${f%%:*} is stale: run 'go run ./hack/manifests' (the chart is the source)" >&2
    exit 1
  fi
done
