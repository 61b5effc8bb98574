// Package hosttoken authenticates, in a tenant's API server, the
// service-account tokens the host kubelet mints for tenant pods.
//
// A tenant pod's default API token costs no host write: its host pod
// projects a token of knest's host workload ServiceAccount with an audience
// only this tenant's knestd accepts (knest:<tenant id>), which the host API
// server refuses (it is not one of its audiences). The tenant API server
// verifies such a token offline, against the keys the host publishes at its
// service-account issuer discovery endpoint (which any host ServiceAccount
// may read; no cluster-scoped grant), and maps the host pod the token is
// bound to onto the tenant pod it runs, as
// system:serviceaccount:<tenant namespace>:<tenant pod's ServiceAccount>.
//
// A token is accepted only if all of these hold: signed by a current key of
// the host's issuer (unknown key IDs refetch the keys, at most once per
// KeySet.MinRefresh), the issuer is the host's, not expired, the audience
// is this tenant's, the namespace is this tenant's host namespace, the
// ServiceAccount is knest's workload account, and the token is bound to a
// pod that exists now, with the same UID, in knestd's host pod cache,
// carries this tenant's marker and identity annotations (the syncer made
// it), and whose tenant pod exists with the UID the host pod names. A
// deleted pod's token stops working when its host pod leaves the cache.
package hosttoken
