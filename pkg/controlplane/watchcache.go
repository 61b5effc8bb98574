package controlplane

import (
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	cacherstorage "k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// The watch caches' timers on one grid.
//
// Every cached resource (61 in an idle knestd) runs a goroutine whose
// bookmark timer fires about once a second, each at its own jittered time:
// ~50 wake-ups a second of an otherwise idle process, the largest source
// left (README "Idle cost, lever by lever"). knestd builds each cache with
// upstream's cacher and a clock whose long timers (TimerGrid/2 and more:
// the bookmark timer, the compactor's poll) fire on the nearest whole
// TimerGrid instead, so that all of them fire in one wake-up. Short timers
// (the progress requester's 100 ms, consistent reads waiting for a fresh
// revision) are the real clock's.

// TimerGrid is the period the watch caches' long timers are aligned to.
const TimerGrid = time.Second

// gridClock is the real clock whose timers of TimerGrid/2 or more fire on
// the next multiple of TimerGrid.
type gridClock struct {
	clock.RealClock
}

// gridDelay is how long from now a timer of d fires: d if it is short,
// otherwise until the multiple of TimerGrid nearest to now+d. Rounding to
// the nearest (not the next) keeps the bookmark timer's period: set on the
// grid with upstream's jittered 0.75-1.25 s, it fires exactly one
// TimerGrid later, so a watcher's bookmark, which upstream schedules 2 s
// before the watch's deadline, is never later than upstream sends it by
// more than half a TimerGrid.
func gridDelay(now time.Time, d time.Duration) time.Duration {
	if d < TimerGrid/2 {
		return d
	}
	return now.Add(d).Round(TimerGrid).Sub(now)
}

func (c gridClock) NewTimer(d time.Duration) clock.Timer {
	return gridTimer{c.RealClock.NewTimer(gridDelay(time.Now(), d))}
}

type gridTimer struct{ clock.Timer }

func (t gridTimer) Reset(d time.Duration) bool { return t.Timer.Reset(gridDelay(time.Now(), d)) }

// storageOptions wraps a RESTOptionsGetter: every resource's etcd storage
// is on the transport's shared client (etcdclients.go), and a resource that
// upstream's options give a watch cache gets one on the grid clock; the
// others (no cache: events, --watch-cache=false) stay uncached.
type storageOptions struct{ generic.RESTOptionsGetter }

func (g storageOptions) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	o, err := g.RESTOptionsGetter.GetRESTOptions(resource, example)
	switch {
	case err != nil:
	case isUpstreamCacher(o.Decorator):
		o.Decorator = gridCacher
	case funcPointer(o.Decorator) == funcPointer(generic.UndecoratedStorage):
		o.Decorator = sharedUncached
	}
	return o, err
}

// sharedUncached is upstream's UndecoratedStorage on the shared client.
func sharedUncached(
	config *storagebackend.ConfigForResource,
	resourcePrefix string,
	_ func(obj runtime.Object) (string, error),
	newFunc func() runtime.Object,
	newListFunc func() runtime.Object,
	_ storage.AttrFunc,
	_ storage.IndexerFuncs,
	_ *cache.Indexers,
) (storage.Interface, factory.DestroyFunc, error) {
	return sharedRawStorage(config, newFunc, newListFunc, resourcePrefix)
}

// isUpstreamCacher says whether d is the decorator upstream's options
// choose for a cached resource, genericregistry.StorageWithCacher's
// closure. Inlining gives each call site its own copy of the closure's
// code, so it is recognised by name ("<caller>.StorageWithCacher.func1").
func isUpstreamCacher(d generic.StorageDecorator) bool {
	if d == nil {
		return false
	}
	f := goruntime.FuncForPC(funcPointer(d))
	return f != nil && strings.Contains(f.Name(), "StorageWithCacher.func")
}

// gridCacher is upstream's StorageWithCacher with the grid clock: the raw
// etcd storage (on the shared client), a cacher on it and the delegator
// that serves from either.
func gridCacher(
	config *storagebackend.ConfigForResource,
	resourcePrefix string,
	keyFunc func(obj runtime.Object) (string, error),
	newFunc func() runtime.Object,
	newListFunc func() runtime.Object,
	getAttrsFunc storage.AttrFunc,
	triggerFuncs storage.IndexerFuncs,
	indexers *cache.Indexers,
) (storage.Interface, factory.DestroyFunc, error) {
	raw, destroyRaw, err := sharedRawStorage(config, newFunc, newListFunc, resourcePrefix)
	if err != nil {
		return raw, destroyRaw, err
	}
	cacher, err := cacherstorage.NewCacherFromConfig(cacherstorage.Config{
		Storage: raw, Versioner: storage.APIObjectVersioner{},
		GroupResource: config.GroupResource, EventsHistoryWindow: config.EventsHistoryWindow,
		ResourcePrefix: resourcePrefix, KeyFunc: keyFunc, NewFunc: newFunc, NewListFunc: newListFunc,
		GetAttrsFunc: getAttrsFunc, IndexerFuncs: triggerFuncs, Indexers: indexers,
		Codec: config.Codec, Clock: gridClock{},
	})
	if err != nil {
		destroyRaw()
		return nil, func() {}, err
	}
	delegator := cacherstorage.NewCacheDelegator(cacher, raw)
	var once sync.Once
	return delegator, func() {
		once.Do(func() {
			delegator.Stop()
			cacher.Stop()
			destroyRaw()
		})
	}, nil
}

func funcPointer(d generic.StorageDecorator) uintptr { return reflect.ValueOf(d).Pointer() }
