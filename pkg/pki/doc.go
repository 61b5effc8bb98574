// Package pki creates and keeps the certificates and keys of one tenant control
// plane: the cluster CA, the internal CA, the API server's serving
// certificate, the front-proxy CA and client, client certificates for the
// admin, knestd's own clients, the controller-manager and the API server's
// kubelet client, and the service-account signing key.
//
// Everything is generated on first start and persisted under one directory, so a
// restart keeps the same identity and old kubeconfigs keep working. Leaf
// certificates are re-issued under the same CA when they stop matching what is
// wanted (a changed SAN set, a subject change, close to expiry); a CA is
// replaced only by an explicit cluster CA rotation, and a file that exists
// but cannot be parsed is an error, never overwritten.
//
// # Cluster CA rotation
//
// BeginCARotation creates a new cluster CA and starts a transition in which
// both are trusted (ca-bundle.crt, client-ca.crt) while the new one signs;
// the serving certificate stays under the old CA until FinishCARotation, so
// a client that trusts only the old CA keeps verifying the server. The state
// is one file (CARotation, ca-rotation.json) written atomically: each step's
// commit point, from which Ensure derives ca.crt, ca.key and the previous
// CA's files at every call, so an interrupted step leaves nothing half done
// after the next start.
//
// # Two client CAs
//
// The cluster CA is the tenant's: it signs the admin's certificate and, as
// the controller-manager's cluster signing CA, whatever CertificateSigningRequest
// a tenant admin approves. knestd's own identities (InternalUser, the
// controller-manager's, and both ends of the kubelet connection) are signed
// by the internal CA instead, which no signer a tenant reaches uses, so a
// certificate a tenant obtains can never pass for them. The API server trusts
// client certificates of both (ClientCABundle) and refuses the reserved
// identities (ReservedUser, ReservedGroup) from anything but the internal CA.
// A data directory of an earlier version, whose leaves the cluster CA signed,
// gets the internal CA on its next start and those leaves re-issued under it,
// keeping their keys; the cluster CA, the admin's certificate and the
// service-account key stay, so the tenant's kubeconfigs and tokens keep
// working.
//
// Keys are ECDSA P-256: generating them takes microseconds, which matters for
// a control plane that should be ready a couple of seconds after a cold start.
package pki
