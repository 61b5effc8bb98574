// Package readyzcheck names knestd's own checks in its API server's /readyz,
// for knestd (pkg/knestd registers them) and for the processes that ask
// about them without linking knestd: knest-supervisor, which excludes them
// when a wake only needs the API server, and the integration tests.
package readyzcheck

const (
	// Syncer passes once the syncer's caches have synced.
	Syncer = "knest-syncer"
	// DNS passes once the tenant pods' DNS server answers.
	DNS = "knest-dns"
)
