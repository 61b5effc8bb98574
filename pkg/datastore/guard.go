package datastore

import (
	"fmt"
	"maps"
	"sync"
	"time"
)

// GrowthFactor is how many bytes of database file one byte of written
// object is counted as until the next measurement. Measured: 52 MB of 500 KB
// ConfigMaps grew the file by 59.5 MB written one at a time; concurrent
// writers and the revisions etcd keeps until a compaction grow it faster.
const GrowthFactor = 2

// Guard is the datastore state the tenant API server's admission plugin
// consults on every write, kept current by the Monitor. It is safe for
// concurrent use.
type Guard struct {
	limits  Limits
	metrics *Metrics

	mu       sync.Mutex
	measured bool
	readOnly bool
	since    time.Time
	usage    Usage
	// pendingBytes and pendingCounts are what the guard admitted since the
	// last measurement: added to it, so that writes between two
	// measurements count.
	pendingBytes  int64
	pendingCounts map[string]int
}

// NewGuard returns a guard for limits; it admits everything until the first
// measurement (Observe).
func NewGuard(l Limits) *Guard {
	return &Guard{limits: l, metrics: newMetrics(), pendingCounts: map[string]int{}}
}

// Limits are the guard's limits.
func (g *Guard) Limits() Limits { return g.limits }

// Metrics are the guard's metrics, for registration.
func (g *Guard) Metrics() *Metrics { return g.metrics }

// Pending is what the guard admitted since its last measurement, taken when
// a measurement starts: writes admitted while it runs may not be in it.
type Pending struct {
	bytes  int64
	counts map[string]int
}

// Pending returns what the guard admitted since its last measurement.
func (g *Guard) Pending() Pending {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Pending{bytes: g.pendingBytes, counts: maps.Clone(g.pendingCounts)}
}

// Observe records a measurement that started when p was taken and returns
// whether the tenant is in read-only mode and whether that changed.
func (g *Guard) Observe(u Usage, p Pending, now time.Time) (readOnly, changed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.readOnly
	g.measured, g.usage = true, u
	g.pendingBytes -= p.bytes
	for r, n := range p.counts {
		g.pendingCounts[r] -= n
	}
	g.readOnly = Decide(was, u.InUse, u.NoSpace, g.limits)
	if g.readOnly != was {
		g.since = now
	}
	g.metrics.observe(u, g.readOnly, g.limits)
	return g.readOnly, g.readOnly != was
}

// Restore sets the mode the tenant was in before a restart, before the
// first measurement (Observe) decides from it.
func (g *Guard) Restore(readOnly bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readOnly = readOnly
	if readOnly {
		g.since = time.Now()
	}
}

// State is what the guard knows: the mode, since when, and the last usage
// with what was admitted since.
type State struct {
	ReadOnly bool
	Since    time.Time
	// Size is the last measured bytes in use plus the bytes admitted
	// since.
	Size  int64
	Usage Usage
}

// State returns the guard's state.
func (g *Guard) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return State{ReadOnly: g.readOnly, Since: g.since, Size: g.usage.InUse + g.pendingBytes, Usage: g.usage}
}

// Write is one write the admission plugin asks about.
type Write struct {
	// Resource is the written resource, keyed as Limits.ObjectCounts.
	Resource string
	// Create says the write adds an object.
	Create bool
	// Grows says the write is refused in read-only mode: a create, or an
	// update to a larger object.
	Grows bool
	// Bytes is the written object's size: etcd keeps a new revision of the
	// whole object until the next compaction, whatever the change.
	Bytes int64
}

// Refusal is a write the guard refuses, with the reason.
type Refusal struct {
	// Reason is "ReadOnly" or "ObjectCount".
	Reason, Message string
}

func (r *Refusal) Error() string { return r.Message }

// ReadOnly says whether the tenant is in read-only mode.
func (g *Guard) ReadOnly() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readOnly
}

// Admit says whether a write may proceed. An admitted write is counted
// until the next measurement; one that takes the datastore over the
// read-only mark puts the tenant in the mode at once, so that a fast writer
// cannot outrun the monitor.
func (g *Guard) Admit(w Write) *Refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.measured {
		return nil
	}
	if g.readOnly && w.Grows {
		g.metrics.refused("ReadOnly")
		return &Refusal{Reason: "ReadOnly", Message: fmt.Sprintf(
			"the tenant's datastore is read-only: it holds %s; creates and updates that grow objects are refused, while deletes, status updates and finalizer removal still work (delete objects: knestd compacts and defragments the datastore and leaves read-only mode by itself)",
			Describe(g.usage.InUse+g.pendingBytes, g.limits))}
	}
	if max, capped := g.limits.ObjectCounts[w.Resource]; capped && w.Create {
		if have := g.usage.Counts[w.Resource] + g.pendingCounts[w.Resource]; have >= max {
			g.metrics.refused("ObjectCount")
			return &Refusal{Reason: "ObjectCount", Message: fmt.Sprintf(
				"the tenant's datastore holds %d %s, its limit; delete some, or ask the operator to raise datastore.objectCounts.%s in knestd's policy",
				have, w.Resource, w.Resource)}
		}
		g.pendingCounts[w.Resource]++
	}
	g.pendingBytes += w.Bytes * GrowthFactor
	if !g.readOnly && g.usage.InUse+g.pendingBytes >= g.limits.ReadOnlyMark() {
		g.readOnly, g.since = true, time.Now()
		g.metrics.readOnly.Set(1)
	}
	return nil
}
