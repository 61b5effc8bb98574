// Package snapshot is the file format of a tenant snapshot: a tar archive of
// the tenant's state (an etcd snapshot, the PKI, the service-account and
// encryption keys, knestd's configuration and a manifest) sealed as a whole
// with authenticated encryption under a snapshot key the tenant never sees.
//
// Sealing is streamed in chunks (XChaCha20-Poly1305), so a snapshot of any
// size passes through a fixed amount of memory. Each chunk is bound to the
// file's header (which carries the format version and the key's identifier),
// to its position and to whether it is the last one, so a reordered,
// truncated, extended or altered file fails to open; whoever reads an opened
// stream to its end has verified the whole file.
//
// The package is pure: it reads and writes streams and directories, and knows
// nothing of etcd or the API server (pkg/knestd uses it for both).
package snapshot
