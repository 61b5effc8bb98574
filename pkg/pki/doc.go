// Package pki creates and keeps the certificates and keys of one tenant control
// plane: the cluster CA, the API server's serving certificate, the front-proxy
// CA and client, client certificates for the admin, the controller-manager and
// the API server's kubelet client, and the service-account signing key.
//
// Everything is generated on first start and persisted under one directory, so a
// restart keeps the same identity and old kubeconfigs keep working. Leaf
// certificates are re-issued under the same CA when they stop matching what is
// wanted (a changed SAN set, a subject change, close to expiry); a CA is never
// replaced, and a file that exists but cannot be parsed is an error, never
// overwritten.
//
// Keys are ECDSA P-256: generating them takes microseconds, which matters for
// a control plane that should be ready a couple of seconds after a cold start.
package pki
