// Package hostclaim keeps a hostname to one tenant across the host.
//
// knestd's host identity sees one namespace, and two host namespaces may
// hold tenants of the same name (whose default hostnames,
// *.<tenant>.<base domain>, are then the same): nothing a single knestd can
// check in its own namespace keeps two tenants off one hostname. So before
// a tenant's Ingress, HTTPRoute or GRPCRoute reaches the host, its knestd
// claims each of its hostnames (a route's wildcard hostname as the same
// wildcard claim an Ingress's would be) with a claim object: a
// coordination.k8s.io Lease in the shared host namespace Namespace, named after the hostname (Name), whose
// holderIdentity is the claiming tenant's host namespace. The API server
// keeps object names unique, so a hostname has at most one claim and one
// holder; a knestd that finds another holder's claim refuses the object
// with a SyncRefused Event. One claim stands for a hostname whichever of
// the tenant's kinds serves it: it goes when none does.
//
// The operator manifest (Manifest, published as
// manifests/hostname-claims.yaml) installs the namespace, the ClusterRole
// each tenant's chart binds there, and a ValidatingAdmissionPolicy that
// makes the claims trustworthy whatever a knestd does: a service account
// may create, change or delete only claims held by its own namespace, the
// holder never changes, and a claim's name must be the one its
// knest.io/hostname annotation maps to. A refusal there reaches the tenant
// as a SyncFailed Event on its Ingress or route.
package hostclaim
