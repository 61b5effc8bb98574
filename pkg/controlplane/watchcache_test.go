package controlplane

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiserveroptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

func TestGridDelay(t *testing.T) {
	grid := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		now  time.Time
		d    time.Duration
		want time.Duration
	}{
		{"short timers are the real clock's", grid.Add(300 * time.Millisecond), 100 * time.Millisecond, 100 * time.Millisecond},
		{"zero", grid.Add(300 * time.Millisecond), 0, 0},
		{"a bookmark timer fires on the nearest second", grid.Add(300 * time.Millisecond), time.Second, 700 * time.Millisecond},
		{"a jittered one too", grid.Add(300 * time.Millisecond), 800 * time.Millisecond, 700 * time.Millisecond},
		{"from a second, a second", grid, time.Second, time.Second},
		{"from a second, upstream's shortest jitter", grid, 750 * time.Millisecond, time.Second},
		{"from a second, upstream's longest jitter", grid, 1250*time.Millisecond - time.Nanosecond, time.Second},
		{"half a grid from a second", grid.Add(300 * time.Millisecond), TimerGrid / 2, 700 * time.Millisecond},
		{"a long one ends on a second", grid.Add(250 * time.Millisecond), 15 * time.Second, 14750 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gridDelay(tc.now, tc.d); got != tc.want {
				t.Errorf("gridDelay(%s, %s) = %s, want %s", tc.now.Format("15:04:05.000"), tc.d, got, tc.want)
			}
		})
	}
	// Timers set at different times within a second fire together.
	a := grid.Add(100 * time.Millisecond)
	b := grid.Add(400 * time.Millisecond)
	if at, bt := a.Add(gridDelay(a, time.Second)), b.Add(gridDelay(b, 900*time.Millisecond)); !at.Equal(bt) {
		t.Errorf("timers fire at %s and %s, want the same instant", at.Format("05.000"), bt.Format("05.000"))
	}
}

// storageOptions replaces exactly the decorator upstream's etcd options
// choose for a cached resource; if upstream's closure stops being
// recognisable, the watch caches silently go back to their own timers and
// their own etcd clients, and this fails. Uncached resources get the
// shared client without a cache.
func TestGridCachesReplaceUpstreamsCacher(t *testing.T) {
	etcd := apiserveroptions.NewEtcdOptions(storagebackend.NewDefaultConfig("/registry", nil))
	etcd.WatchCacheSizes = []string{"events#0"}
	upstream := &apiserveroptions.StorageFactoryRestOptionsFactory{Options: *etcd, StorageFactory: storageFactory{}}
	for _, tc := range []struct {
		resource string
		grid     bool
	}{{"pods", true}, {"configmaps", true}, {"events", false}} {
		got, err := storageOptions{upstream}.GetRESTOptions(schema.GroupResource{Resource: tc.resource}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if isGrid := funcPointer(got.Decorator) == funcPointer(gridCacher); isGrid != tc.grid {
			t.Errorf("%s: decorator is gridCacher: %v, want %v", tc.resource, isGrid, tc.grid)
		}
		if !tc.grid && funcPointer(got.Decorator) != funcPointer(sharedUncached) {
			t.Errorf("%s: not stored uncached on the shared client", tc.resource)
		}
	}
	etcd.EnableWatchCache = false
	upstream.Options = *etcd
	got, err := storageOptions{upstream}.GetRESTOptions(schema.GroupResource{Resource: "pods"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if funcPointer(got.Decorator) != funcPointer(sharedUncached) {
		t.Error("--watch-cache=false: pods are not stored uncached on the shared client")
	}
}

// storageFactory is the storage configuration upstream's options read;
// nothing here connects to etcd.
type storageFactory struct{}

func (storageFactory) NewConfig(gr schema.GroupResource, _ runtime.Object) (*storagebackend.ConfigForResource, error) {
	return &storagebackend.ConfigForResource{GroupResource: gr}, nil
}
func (storageFactory) ResourcePrefix(gr schema.GroupResource) string { return gr.Resource }
func (storageFactory) Configs() []storagebackend.Config              { return nil }
func (storageFactory) Backends() []serverstorage.Backend             { return nil }
