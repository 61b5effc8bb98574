// Package translate maps tenant objects to host objects: names, ownership
// metadata, labels and selectors. Everything here is a pure function; the
// syncer builds on it.
//
// # Names
//
// A namespaced tenant object <name> in tenant namespace <ns> of tenant <t>
// becomes <name>-x-<ns>-x-<t> in the tenant's host namespace. The mapping is
// injective: when a part could blur the separators (it contains "-x-",
// starts with "x-" or ends with "-x", so that "a-x" in "b" and "a" in "x-b"
// would both read a-x-x-b), or when the result is longer than the kind
// allows, the name becomes a readable prefix, the marker "-x-x-", a hash of
// the tenant, namespace and name, and "-x-<t>". A plain name contains the
// separator exactly twice; a hashed one at least three times, so the two forms
// never meet, and hashed names differ by their hash.
//
// Names are never parsed back: every host object carries its identity in
// annotations (knest.io/name, knest.io/namespace, knest.io/kind, knest.io/uid)
// and the marker label knest.io/tenant. A host object belongs to the syncer
// only if all of these match what it would compute; anything else in the
// host namespace is left alone.
//
// # Labels and selectors
//
// Tenant labels are copied to host objects, except reserved keys (the
// knest.io domain and its subdomains, pod-security.kubernetes.io,
// kubernetes.io/metadata.name), which are rewritten under
// tenant.knest.io/ so that a tenant can neither spoof knest's own labels nor
// lose the ones it set. Host objects also carry knest.io/tenant and
// knest.io/namespace, and selectors are rewritten to require both, so a
// tenant's selector only ever matches the same tenant's objects from the same
// tenant namespace.
package translate
