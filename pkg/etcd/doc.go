// Package etcd runs an embedded, single-member etcd server for one tenant
// control plane (go.etcd.io/etcd/server/v3/embed).
//
// The server listens on loopback only: nothing but the API server in the same
// process talks to it, so it has no TLS and no authentication of its own. Peer
// traffic never happens in a one-member cluster, but etcd insists on a peer
// listener, so one is bound to a free loopback port.
//
// Options become an embed.Config (Options.Config), Run starts the server and
// returns once it serves or has failed, and cancelling the context closes it.
package etcd
