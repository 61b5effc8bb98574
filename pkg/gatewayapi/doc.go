// Package gatewayapi serves the Gateway API (gateway.networking.k8s.io) in
// a tenant: the standard channel's CRDs of the kinds tenant tools expect
// (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant), which
// knestd installs into the tenant API server when the policy names a host
// Gateway (policy.Gateway), and which the devcluster installs on its host.
//
// The CRDs in crds/ are copies of the sigs.k8s.io/gateway-api module's
// config/crd/standard files at the version go.mod requires, made by
// hack/gatewayapi-crds.sh (the module ships the YAML but no Go package
// embedding it, and go:embed reads only this module's files). They are
// Apache-2.0 licensed by The Kubernetes Authors: crds/LICENSE.
// TestCRDsMatchModule fails when go.mod moves and the copies do not.
package gatewayapi
