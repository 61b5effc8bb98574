#!/usr/bin/env bash
# Copies the Gateway API standard-channel CRDs knest serves (in tenants, and
# on the dev host) from the sigs.k8s.io/gateway-api module at the version
# go.mod requires into pkg/gatewayapi/crds. The module ships the YAML but no
# Go package that embeds it, and go:embed reads only this module's files.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
out=pkg/gatewayapi/crds
rm -f "$out"/*.yaml
for kind in gatewayclasses gateways httproutes grpcroutes referencegrants; do
  cp "$dir/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$out/"
done
cp "$dir/LICENSE" "$out/LICENSE"
chmod 644 "$out"/*
