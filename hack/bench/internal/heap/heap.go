// Package heap measures knestd's heap for the sync benchmark: the live heap
// once garbage collection has settled (from its metrics), and the in-use
// bytes of its heap profiles split by owner, recognised by the stacks that
// allocated them.
package heap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/knest-dev/knest/hack/bench/internal/metrics"
	"github.com/knest-dev/knest/hack/bench/internal/procmem"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

// Sample is knestd's memory at one moment.
type Sample struct {
	// Live is the live heap in bytes: what the last collection marked.
	Live float64
	// Alloc is the allocated heap in bytes, garbage included.
	Alloc float64
	// RSSMiB is the process's resident memory.
	RSSMiB float64
}

// Settled waits until the process pid, whose metrics are at metricsURL,
// has finished two garbage collections since the call, so the live heap
// (go_gc_heap_live_bytes) reflects the current state, then reads it. The
// metrics are the whole process's: in knestd the tenant API server, its
// etcd and controllers share it with the syncer.
func Settled(ctx context.Context, metricsURL string, pid int) (Sample, error) {
	m, err := metrics.Scrape(ctx, metricsURL)
	if err != nil {
		return Sample{}, err
	}
	const gcCycles = "go_gc_cycles_total_gc_cycles_total"
	cycles, ok := m.Sum(gcCycles, nil)
	if !ok {
		return Sample{}, errors.New("the metrics have no " + gcCycles + ": the Go collector is not registered")
	}
	// An idle Go process collects at least every two minutes.
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, false, func(ctx context.Context) (bool, error) {
		if m, err = metrics.Scrape(ctx, metricsURL); err != nil {
			return false, err
		}
		c, _ := m.Sum(gcCycles, nil)
		return c >= cycles+2, nil
	})
	if err != nil {
		return Sample{}, fmt.Errorf("waiting for two garbage collections: %w", err)
	}
	var s Sample
	if s.Live, ok = m.Sum("go_gc_heap_live_bytes", nil); !ok {
		return Sample{}, errors.New("the metrics have no go_gc_heap_live_bytes")
	}
	s.Alloc, _ = m.Sum("go_memstats_heap_alloc_bytes", nil)
	mem, err := procmem.Read(pid)
	if err != nil {
		return Sample{}, err
	}
	s.RSSMiB = mem.RSS
	return s, nil
}

// owner is one holder of knestd's heap, recognised by the frames of the
// stacks that allocated what it holds.
type owner struct {
	name string
	// frames are function-name prefixes; a stack with any of them belongs
	// to the owner.
	frames []string
}

// owners are tried in order; the first whose frames a stack has owns
// its bytes. knestd is one process, so the split rests on who decoded an
// object: the syncer (and knestd's DNS and kubelet API) read through
// controller-runtime and client-go clients that speak JSON, while the tenant
// API server reads its etcd through its storage layer and its controllers
// through informers that speak protobuf.
var owners = []owner{
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

// FetchProfile reads the heap profile that knestd serves at address
// (--profiling-address), after a garbage collection.
func FetchProfile(ctx context.Context, address string) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to read knestd heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("knestd heap profile: %s", resp.Status)
	}
	return profile.Parse(resp.Body)
}

// InUseByOwner sums a heap profile's in-use bytes by owner.
func InUseByOwner(p *profile.Profile) (map[string]float64, error) {
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
	for _, o := range owners {
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
	return owners[len(owners)-1].name
}

// Share is an owner's growth of in-use heap per pod.
type Share struct {
	Owner       string  `json:"owner"`
	BytesPerPod float64 `json:"bytes_per_pod"`
	Percent     float64 `json:"percent"`
}

// Growth is the growth per pod by owner between two profiles (as
// InUseByOwner sums them), largest first.
func Growth(before, after map[string]float64, pods int) []Share {
	var total float64
	for _, o := range owners {
		total += after[o.name] - before[o.name]
	}
	var out []Share
	for _, o := range owners {
		d := after[o.name] - before[o.name]
		s := Share{Owner: o.name, BytesPerPod: float64(int(d / float64(pods)))}
		if total > 0 {
			s.Percent = stats.Round(100 * d / total)
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b Share) int { return cmp.Compare(b.BytesPerPod, a.BytesPerPod) })
	return out
}

// WriteProfile keeps a profile for `go tool pprof`.
func WriteProfile(p *profile.Profile, path string) error {
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

// Point is knestd's heap at one moment: the settled heap and its profile's
// in-use bytes by owner.
type Point struct {
	Sample
	Owners map[string]float64
}

// Measure reads the settled heap of process pid (metrics at metricsURL)
// and the heap profile it serves at profilingAddress; with profilesDir set
// it keeps the profile there as knestd-heap-<when>.pb.gz.
func Measure(ctx context.Context, metricsURL, profilingAddress string, pid int, profilesDir, when string) (Point, error) {
	s, err := Settled(ctx, metricsURL, pid)
	if err != nil {
		return Point{}, err
	}
	p, err := FetchProfile(ctx, profilingAddress)
	if err != nil {
		return Point{}, err
	}
	if profilesDir != "" {
		if err := WriteProfile(p, filepath.Join(profilesDir, "knestd-heap-"+when+".pb.gz")); err != nil {
			return Point{}, err
		}
	}
	owners, err := InUseByOwner(p)
	return Point{Sample: s, Owners: owners}, err
}

// Result is knestd's memory before and after a run.
type Result struct {
	LiveBefore  float64 `json:"live_bytes_before"`
	LiveAfter   float64 `json:"live_bytes_after"`
	AllocBefore float64 `json:"alloc_bytes_before"`
	AllocAfter  float64 `json:"alloc_bytes_after"`
	RSSBefore   float64 `json:"rss_mib_before"`
	RSSAfter    float64 `json:"rss_mib_after"`
	RSSPerPod   float64 `json:"rss_bytes_per_pod"`
}

// Compare returns the memory before and after a run of pods pods, the
// growth of the live heap per pod, and its growth by owner.
func Compare(before, after Point, pods int) (r Result, bytesPerPod float64, byOwner []Share) {
	n := float64(pods)
	r = Result{
		LiveBefore: before.Live, LiveAfter: after.Live,
		AllocBefore: before.Alloc, AllocAfter: after.Alloc,
		RSSBefore: stats.Round(before.RSSMiB), RSSAfter: stats.Round(after.RSSMiB),
		RSSPerPod: float64(int((after.RSSMiB - before.RSSMiB) * (1 << 20) / n)),
	}
	return r, float64(int((after.Live - before.Live) / n)), Growth(before.Owners, after.Owners, pods)
}
