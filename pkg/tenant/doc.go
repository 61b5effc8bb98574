// Package tenant is a tenant's footprint in its host namespace, as the knest
// chart lays it out and knestd and the knest CLI find it: the names of the
// control plane's objects, the namespace's labels, the Secrets knestd keeps
// there (its secrets-encryption key and the published admin kubeconfig),
// waiting for a tenant to be ready, and removing every trace of one.
//
// One tenant per host namespace: the control plane's objects have fixed
// names ("knestd", "knestd-kubeconfig", ...), which never collide with the
// objects the syncer copies there (those carry "-x-" or a hash in their
// names, see pkg/translate).
package tenant
