package podsync

import (
	"testing"

	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
)

// clusters are the host and tenant API servers this package's tests share.
var clusters synctest.Clusters

func TestMain(m *testing.M) { synctest.Main(m, &clusters) }
