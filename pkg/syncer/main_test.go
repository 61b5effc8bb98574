package syncer

import (
	"testing"

	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
)

// clusters are the host and tenant API servers this package's tests share.
var clusters synctest.Clusters

func TestMain(m *testing.M) { synctest.Main(m, &clusters) }

// newEnv is a fresh tenant whose caches are indexed as the syncer's.
func newEnv(t *testing.T) *synctest.Env {
	t.Helper()
	return synctest.New(t, &clusters, synctest.Options{TenantIndexes: indexTenantPods, HostIndexes: indexHostAddresses})
}
