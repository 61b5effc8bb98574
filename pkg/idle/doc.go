// Package idle decides when a tenant is idle: it counts the API requests
// of the tenant's users (in flight, and when the last one ended) and
// leaves out the requests knestd makes of itself.
//
// knestd's API server runs its own loops against itself: knestd's clients
// (the syncer, the kubelet API, DNS, the datastore guard) as
// system:knest:knestd, the API server's loopback client as
// system:apiserver, the controller-manager as
// system:kube-controller-manager and, with service-account credentials, as
// one ServiceAccount of kube-system per controller; kubelets probe
// /readyz anonymously. None of them is a user, and each would keep a
// tenant awake for ever. Everything else counts: a tenant's own pods that
// talk to its API are its users too.
//
// The decision is about cost, not security: a tenant that wants to stay
// awake can send requests, so nothing here needs to resist a tenant
// pretending to be knestd (pkg/identity keeps the reserved names out of
// its reach anyway).
package idle
