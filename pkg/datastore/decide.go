package datastore

import (
	"fmt"
	"time"
)

// The marks of the read-only mode, in percent of the quota. The gap between
// them keeps the mode from flapping; the 10% above the upper mark is the
// room for what is still allowed in the mode (status writes, Lease renewals,
// the revisions they leave until the next compaction) and for writes the
// monitor has not measured yet.
const (
	ReadOnlyPercent = 90
	WritablePercent = 80
)

// BackendQuotaPercent is etcd's own quota on its database file, in percent
// of the tenant's limit (QuotaBytes). It is above the limit so that the
// read-only mode, not etcd's NOSPACE alarm, is what a full tenant meets: a
// compaction rewrites the B-tree pages next to the revisions it removes and
// briefly grows the file (measured: from 57.7 MiB to 70.6 MiB on a tenant
// with a 64 MiB limit, in the mode, before the defragmentation after it gave
// the space back), which must not reach etcd's quota.
const BackendQuotaPercent = 200

// Limits are one tenant's datastore limits.
type Limits struct {
	// QuotaBytes is the tenant's limit on the database file (knestd's
	// --etcd-quota-bytes); etcd's own quota is BackendQuotaBytes.
	QuotaBytes int64
	// ObjectCounts caps the number of objects of a resource, keyed as
	// policy.DatastoreLimits.ObjectCounts.
	ObjectCounts map[string]int
}

// ReadOnlyMark is the database size at which the tenant enters read-only
// mode.
func (l Limits) ReadOnlyMark() int64 { return l.QuotaBytes * ReadOnlyPercent / 100 }

// BackendQuotaBytes is the quota knestd gives etcd itself.
func (l Limits) BackendQuotaBytes() int64 { return l.QuotaBytes * BackendQuotaPercent / 100 }

// WritableMark is the size below which it leaves the mode.
func (l Limits) WritableMark() int64 { return l.QuotaBytes * WritablePercent / 100 }

// Usage is one measurement of the datastore.
type Usage struct {
	// Size is the database file's size, which etcd's own quota is checked
	// against; InUse is the part of it that holds data (the rest is free
	// pages a defragmentation gives back), which the tenant's limit and
	// the read-only mode are checked against.
	Size, InUse int64
	// Revision is etcd's current revision.
	Revision int64
	// NoSpace says etcd's NOSPACE alarm is raised.
	NoSpace bool
	// Counts are the objects of each capped resource.
	Counts map[string]int
}

// Decide says whether the tenant is in read-only mode given whether it was
// and the bytes its data takes in the database (Usage.InUse: what a
// defragmentation cannot give back, so that one cannot end the mode while
// the data stays): in from the upper mark, out below the lower one, and
// always in while etcd's own alarm is raised.
func Decide(readOnly bool, size int64, noSpace bool, l Limits) bool {
	switch {
	case noSpace || size >= l.ReadOnlyMark():
		return true
	case readOnly:
		return size >= l.WritableMark()
	}
	return false
}

// CompactEvery is how often the monitor compacts etcd while the tenant is
// writable; in read-only mode it compacts at every measurement.
// Compaction is cheapest when frequent: it rewrites the B-tree pages that
// hold the revisions it removes, large objects next to them included, so a
// compaction of many revisions can briefly grow the database by a good part
// of its size (measured: +35 MiB on a 60 MiB database holding 500 KB
// ConfigMaps, compacted for the first time), which must never happen near
// the quota.
const CompactEvery = 30 * time.Second

// Reclaim says what the monitor does to give space back. It compacts etcd
// to its current revision when there are revisions since the last
// compaction and either the tenant is read-only (writes that grow are
// refused, so what a compaction grows cannot add up) or CompactEvery has
// passed. When the file is above the writable mark (or the tenant is
// read-only) it defragments if that gives back a tenth of the limit: a
// defragmentation blocks etcd for seconds, so not for less. The mode
// itself is decided on the bytes in use, which a defragmentation does not
// change.
func Reclaim(readOnly bool, u Usage, lastCompacted int64, sinceCompaction time.Duration, l Limits) (compact, defrag bool) {
	pressed := readOnly || u.NoSpace || u.Size >= l.WritableMark()
	compact = u.Revision > lastCompacted && (readOnly || u.NoSpace || sinceCompaction >= CompactEvery)
	defrag = pressed && u.Size-u.InUse >= l.QuotaBytes/10
	return compact, defrag
}

// DisarmNoSpace says whether etcd's NOSPACE alarm can be cleared: once the
// file is well below etcd's own quota again (the read-only mode keeps the
// data below the tenant's limit, half of it).
func DisarmNoSpace(u Usage, l Limits) bool {
	return u.NoSpace && u.Size < l.BackendQuotaBytes()*(ReadOnlyPercent+100)/200
}

// Describe says how full the datastore is, for messages.
func Describe(size int64, l Limits) string {
	return fmt.Sprintf("%s of its %s limit (%d%%; read-only from %d%% until below %d%%)",
		bytes(size), bytes(l.QuotaBytes), percent(size, l.QuotaBytes), ReadOnlyPercent, WritablePercent)
}

func percent(n, of int64) int64 {
	if of <= 0 {
		return 0
	}
	return (n*100 + of/2) / of
}

func bytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
