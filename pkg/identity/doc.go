// Package identity keeps the identities knestd reserves for itself out of a
// tenant's reach.
//
// knestd's own clients (pki.InternalUser) and the API server's loopback
// client (system:apiserver) are exempt from tenant admission by name, so
// nobody else may ever act under those names. A tenant is cluster-admin of
// its control plane and has three ways to try: impersonate the name,
// authenticate as it with a certificate of the tenant's CSR signer, or bind
// roles to it. Binding is harmless once the other two are shut; this
// package shuts them, around the upstream API server's own authorizer and
// authenticator, so that no RBAC rule, system:masters included, reopens
// them:
//
//   - NewAuthorizer denies impersonating a reserved user (pki.ReservedUser:
//     system:apiserver and every system:knest: name) or group
//     (pki.ReservedGroup), in legacy and constrained impersonation alike,
//     before the wrapped authorizer is asked. UIDs and extras are not
//     identities admission looks at, so they are left to RBAC.
//   - NewAuthenticator refuses a request whose authenticated user or groups
//     are reserved unless its client certificate chains to knestd's
//     internal CA (which no tenant signer uses) and names that user, and
//     refuses system:apiserver outright. The API server's loopback token
//     authenticator sits in front of it (the generic server adds it when
//     its config is completed), so the only real source of
//     system:apiserver never reaches this check, and every other one is
//     refused.
//
// Both wrappers must be installed on every server of the API server's
// chain (aggregator, kube-apiserver, apiextensions), each of which holds
// its own copy of the generic configuration; pkg/controlplane does that.
package identity
