// Package storagelimits is the admission plugin that enforces a tenant's
// datastore limits (pkg/datastore) in the tenant kube-apiserver: object
// counts per resource, and the read-only mode a nearly full datastore is in.
// Like the confinement plugin it is compiled in and enabled in every
// configuration.
//
// In read-only mode it refuses, for every user but knestd's own identities,
// creates of objects and updates to a larger object. It lets through what a
// tenant needs to clean up and keep running: deletes (admission sees no
// delete here), updates of objects being deleted (finalizer removal),
// subresource writes (status, namespaces/finalize, scale, bindings,
// evictions, token requests), Lease updates (renewals), updates that do not
// grow the object, and the per-namespace objects the controllers create for
// a namespace (the "default" ServiceAccount and the "kube-root-ca.crt"
// ConfigMap), which are bounded because namespaces cannot be created in the
// mode.
//
// A frozen tenant (knestd --frozen) is refused every create, update and
// delete, subresources included, for every user but knestd's own identities
// (and the controller-manager's certificate identity), except the two
// per-namespace objects above, which knestd's start-up probe namespace needs.
//
// Admission, not a storage decorator: admission knows the user, the
// subresource and the old object, refuses with a Forbidden the client
// shows as it is, and is how the tenant API server is already extended
// (pkg/controlplane.AdmissionPlugin). It does not see the stored bytes of a
// write, so it measures the object's JSON serialization, close to (and a
// little larger than) the protobuf etcd stores; the byte limit itself is
// checked against etcd's own measure of its database (pkg/datastore.Monitor).
package storagelimits
