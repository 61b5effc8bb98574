package heap

import (
	"testing"

	"github.com/google/pprof/profile"
)

func stackSample(bytes int64, frames ...string) *profile.Sample {
	s := &profile.Sample{Value: []int64{1, bytes}}
	for _, f := range frames {
		s.Location = append(s.Location, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: f}}}})
	}
	return s
}

func TestInUseByOwner(t *testing.T) {
	t.Parallel()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		Sample: []*profile.Sample{
			// A JSON watch decode in a reflector: the syncer's cache.
			stackSample(100, "sigs.k8s.io/json.(*decodeState).object", "k8s.io/apimachinery/pkg/runtime/serializer/json.(*Serializer).Decode", "k8s.io/client-go/tools/cache.(*Reflector).watch"),
			// A protobuf watch decode in a reflector: a controller's.
			stackSample(20, "k8s.io/api/core/v1.(*Pod).Unmarshal", "k8s.io/apimachinery/pkg/runtime/serializer/protobuf.(*Serializer).Decode", "k8s.io/client-go/tools/cache.(*Reflector).watch"),
			stackSample(30, "k8s.io/api/core/v1.(*Pod).Unmarshal", "k8s.io/apiserver/pkg/storage/etcd3.(*watchChan).transform"),
			stackSample(40, "go.etcd.io/etcd/server/v3/storage/mvcc.(*treeIndex).Put"),
			stackSample(5, "github.com/knest-dev/knest/pkg/syncer.(*podReconciler).Reconcile"),
			stackSample(7, "runtime.malg"),
		},
	}
	got, err := InUseByOwner(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		owners[0].name: 105, owners[1].name: 30, owners[2].name: 40, owners[3].name: 20, owners[4].name: 7,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v bytes, want %v", k, got[k], v)
		}
	}
	growth := Growth(map[string]float64{}, got, 1)
	if growth[0].Owner != owners[0].name || growth[0].Percent != 51.98 { // 105 of 202
		t.Errorf("largest owner %+v, want the syncer's at 51.98%%", growth[0])
	}
}
