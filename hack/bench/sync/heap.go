package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// heapOwner is one holder of knestd's heap, recognised by the frames of the
// stacks that allocated what it holds.
type heapOwner struct {
	name string
	// frames are function-name prefixes; a stack with any of them belongs
	// to the owner.
	frames []string
}

// heapOwners are tried in order; the first whose frames a stack has owns
// its bytes. knestd is one process, so the split rests on who decoded an
// object: the syncer (and knestd's DNS and kubelet API) read through
// controller-runtime and client-go clients that speak JSON, while the tenant
// API server reads its etcd through its storage layer and its controllers
// through informers that speak protobuf.
var heapOwners = []heapOwner{
	{name: "knest syncer, DNS and kubelet API (JSON clients and their caches)", frames: []string{
		"github.com/knest-dev/knest/", "sigs.k8s.io/controller-runtime/",
		"k8s.io/apimachinery/pkg/runtime/serializer/json.", "sigs.k8s.io/json.",
	}},
	{name: "tenant API server storage (watch cache, decoded from etcd)", frames: []string{"k8s.io/apiserver/pkg/storage/"}},
	{name: "embedded etcd", frames: []string{"go.etcd.io/"}},
	{name: "controller-manager and admission informers (protobuf)", frames: []string{
		"k8s.io/client-go/tools/cache.", "k8s.io/apimachinery/pkg/runtime/serializer/protobuf.",
	}},
	{name: "other", frames: []string{""}},
}

// fetchHeapProfile reads knestd's heap profile after a garbage collection.
func fetchHeapProfile(ctx context.Context, address string) (*profile.Profile, error) {
	var p *profile.Profile
	err := readKnestd(ctx, "http://"+address+"/debug/pprof/heap?gc=1", time.Minute, "heap profile", func(r io.Reader) (err error) {
		p, err = profile.Parse(r)
		return err
	})
	return p, err
}

// inUseByOwner sums a heap profile's in-use bytes by heapOwners.
func inUseByOwner(p *profile.Profile) (map[string]float64, error) {
	index := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "inuse_space" })
	if index < 0 {
		return nil, fmt.Errorf("the heap profile has no inuse_space")
	}
	out := map[string]float64{}
	for _, s := range p.Sample {
		out[ownerOf(s)] += float64(s.Value[index])
	}
	return out, nil
}

func ownerOf(s *profile.Sample) string {
	for _, o := range heapOwners {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, f := range o.frames {
					if strings.HasPrefix(line.Function.Name, f) {
						return o.name
					}
				}
			}
		}
	}
	return heapOwners[len(heapOwners)-1].name
}

// heapShare is an owner's growth of in-use heap per pod.
type heapShare struct {
	Owner       string  `json:"owner"`
	BytesPerPod float64 `json:"bytes_per_pod"`
	Percent     float64 `json:"percent"`
}

// heapGrowth is the growth per pod by owner between two profiles, largest
// first.
func heapGrowth(before, after map[string]float64, pods int) []heapShare {
	var total float64
	for _, o := range heapOwners {
		total += after[o.name] - before[o.name]
	}
	var out []heapShare
	for _, o := range heapOwners {
		d := after[o.name] - before[o.name]
		s := heapShare{Owner: o.name, BytesPerPod: float64(int(d / float64(pods)))}
		if total > 0 {
			s.Percent = round(100 * d / total)
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b heapShare) int { return cmp.Compare(b.BytesPerPod, a.BytesPerPod) })
	return out
}

// writeProfile keeps a profile for `go tool pprof`.
func writeProfile(p *profile.Profile, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
