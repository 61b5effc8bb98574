package datastore

import (
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

var limits64 = Limits{QuotaBytes: 64 * mib, ObjectCounts: map[string]int{"configmaps": 3}}

func TestDecide(t *testing.T) {
	t.Parallel()
	l := limits64
	tests := []struct {
		name     string
		readOnly bool
		size     int64
		noSpace  bool
		want     bool
	}{
		{name: "a writable datastore below the upper mark stays writable", size: l.ReadOnlyMark() - 1},
		{name: "a writable datastore at the upper mark becomes read-only", size: l.ReadOnlyMark(), want: true},
		{name: "a read-only datastore between the marks stays read-only", readOnly: true, size: l.WritableMark(), want: true},
		{name: "a read-only datastore below the lower mark becomes writable", readOnly: true, size: l.WritableMark() - 1},
		{name: "a writable datastore between the marks stays writable", size: l.WritableMark() + mib},
		{name: "etcd's alarm makes it read-only whatever the size", size: 10 * mib, noSpace: true, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tc.readOnly, tc.size, tc.noSpace, l); got != tc.want {
				t.Errorf("Decide(%v, %d, %v) = %v, want %v", tc.readOnly, tc.size, tc.noSpace, got, tc.want)
			}
		})
	}
}

func TestReclaim(t *testing.T) {
	t.Parallel()
	l := limits64
	tests := []struct {
		name                    string
		readOnly                bool
		u                       Usage
		lastCompacted           int64
		sinceCompaction         time.Duration
		wantCompact, wantDefrag bool
	}{
		{name: "a datastore far from the mark compacted a moment ago is left alone",
			u: Usage{Size: 10 * mib, InUse: 2 * mib, Revision: 9}, lastCompacted: 3, sinceCompaction: time.Second},
		{name: "a datastore far from the mark is compacted every CompactEvery, never defragmented",
			u: Usage{Size: 10 * mib, InUse: 2 * mib, Revision: 9}, lastCompacted: 3, sinceCompaction: CompactEvery, wantCompact: true},
		{name: "a read-only datastore is compacted at every new revision",
			readOnly: true, u: Usage{Size: l.ReadOnlyMark(), InUse: l.ReadOnlyMark(), Revision: 9}, lastCompacted: 8, sinceCompaction: time.Second, wantCompact: true},
		{name: "a writable datastore above the writable mark is compacted only every CompactEvery",
			u: Usage{Size: l.WritableMark(), InUse: l.WritableMark(), Revision: 9}, lastCompacted: 8, sinceCompaction: time.Second},
		{name: "a datastore with no revision since the last compaction is not compacted",
			readOnly: true, u: Usage{Size: l.ReadOnlyMark(), InUse: l.ReadOnlyMark(), Revision: 9}, lastCompacted: 9, sinceCompaction: time.Hour},
		{name: "a read-only datastore whose data fell below the lower mark is defragmented",
			readOnly: true, u: Usage{Size: l.ReadOnlyMark(), InUse: l.WritableMark() - 1, Revision: 9}, lastCompacted: 9, wantDefrag: true},
		{name: "a read-only datastore with a tenth of its quota in free pages is defragmented",
			readOnly: true, u: Usage{Size: l.QuotaBytes, InUse: l.QuotaBytes * 9 / 10, Revision: 9}, lastCompacted: 9, wantDefrag: true},
		{name: "a read-only datastore full of data is not defragmented",
			readOnly: true, u: Usage{Size: l.ReadOnlyMark(), InUse: l.ReadOnlyMark() - mib, Revision: 9}, lastCompacted: 9},
		{name: "a datastore under etcd's alarm is compacted and defragmented",
			u: Usage{Size: l.QuotaBytes, InUse: mib, Revision: 9, NoSpace: true}, lastCompacted: 3, wantCompact: true, wantDefrag: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			compact, defrag := Reclaim(tc.readOnly, tc.u, tc.lastCompacted, tc.sinceCompaction, l)
			if compact != tc.wantCompact || defrag != tc.wantDefrag {
				t.Errorf("Reclaim = compact %v, defrag %v; want %v, %v", compact, defrag, tc.wantCompact, tc.wantDefrag)
			}
		})
	}
}

func TestDisarmNoSpace(t *testing.T) {
	t.Parallel()
	l := limits64
	if DisarmNoSpace(Usage{Size: l.BackendQuotaBytes(), NoSpace: true}, l) {
		t.Error("an alarm on a full datastore would be cleared")
	}
	if !DisarmNoSpace(Usage{Size: l.WritableMark(), NoSpace: true}, l) {
		t.Error("an alarm on a datastore with room again would stay")
	}
	if DisarmNoSpace(Usage{Size: mib}, l) {
		t.Error("an alarm that is not raised would be cleared")
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	l := limits64
	create := func(bytes int64) Write { return Write{Resource: "configmaps", Create: true, Grows: true, Bytes: bytes} }

	t.Run("before the first measurement everything is admitted", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(l)
		for range 5 {
			if r := g.Admit(create(60 * mib)); r != nil {
				t.Fatalf("Admit = %v, want nil", r)
			}
		}
	})

	t.Run("writes between measurements put the tenant in the mode before the next one", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(Limits{QuotaBytes: 64 * mib})
		g.Observe(Usage{InUse: l.WritableMark()}, Pending{}, time.Now())
		if r := g.Admit(create((l.ReadOnlyMark() - l.WritableMark()) / GrowthFactor)); r != nil {
			t.Fatalf("the write reaching the mark was refused: %v", r)
		}
		if !g.ReadOnly() {
			t.Fatal("the guard is not read-only after writes reached the mark")
		}
		r := g.Admit(create(1))
		if r == nil || r.Reason != "ReadOnly" {
			t.Fatalf("Admit in the mode = %v, want a ReadOnly refusal", r)
		}
		for _, want := range []string{"read-only", "57.6 MiB of its 64.0 MiB limit (90%", "below 80%", "deletes"} {
			if !strings.Contains(r.Message, want) {
				t.Errorf("message %q does not say %q", r.Message, want)
			}
		}
		if r := g.Admit(Write{Resource: "configmaps", Bytes: 100}); r != nil {
			t.Errorf("a write that does not grow was refused in the mode: %v", r)
		}
		// A measurement after a cleanup ends the mode.
		if readOnly, changed := g.Observe(Usage{InUse: l.WritableMark() - 1}, Pending{}, time.Now()); readOnly || !changed {
			t.Errorf("Observe below the lower mark = %v, %v; want writable, changed", readOnly, changed)
		}
		if r := g.Admit(create(1)); r != nil {
			t.Errorf("a create after the mode ended was refused: %v", r)
		}
	})

	t.Run("the object-count cap counts creates since the measurement", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(l)
		g.Observe(Usage{InUse: mib, Counts: map[string]int{"configmaps": 1}}, Pending{}, time.Now())
		for i := range 2 {
			if r := g.Admit(create(10)); r != nil {
				t.Fatalf("create %d under the cap refused: %v", i, r)
			}
		}
		r := g.Admit(create(10))
		if r == nil || r.Reason != "ObjectCount" || !strings.Contains(r.Message, "holds 3 configmaps") || !strings.Contains(r.Message, "datastore.objectCounts.configmaps") {
			t.Fatalf("create over the cap = %v, want an ObjectCount refusal naming the count and the limit", r)
		}
		if r := g.Admit(Write{Resource: "secrets", Create: true, Grows: true}); r != nil {
			t.Errorf("a create of an uncapped resource was refused: %v", r)
		}
		if r := g.Admit(Write{Resource: "configmaps", Grows: true}); r != nil {
			t.Errorf("an update at the cap was refused: %v", r)
		}
	})

	t.Run("writes admitted while a measurement runs still count after it", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(Limits{QuotaBytes: 64 * mib})
		g.Observe(Usage{InUse: mib}, Pending{}, time.Now())
		g.Admit(create(mib))
		p := g.Pending() // the measurement starts, and sees the write above
		g.Admit(create(3 * mib))
		g.Observe(Usage{InUse: 3 * mib}, p, time.Now())
		if got, want := g.State().Size, int64(3*mib+3*mib*GrowthFactor); got != want {
			t.Errorf("size after the measurement = %d, want %d (measured, plus the write it may not have seen)", got, want)
		}
	})
}

func TestBackendQuotaAboveTheLimit(t *testing.T) {
	l := Limits{QuotaBytes: 64 << 20}
	if got := l.BackendQuotaBytes(); got != 128<<20 {
		t.Errorf("etcd's quota for a 64 MiB limit: %d, want 128 MiB", got)
	}
}

func TestDefragmentationDoesNotEndTheMode(t *testing.T) {
	t.Parallel()
	l := limits64
	g := NewGuard(l)
	g.Observe(Usage{Size: l.QuotaBytes, InUse: l.ReadOnlyMark()}, Pending{}, time.Now())
	// The file shrank to the data it holds, still above the lower mark:
	// measured, a 63.4 MiB file defragmented to 46.7 MiB.
	if readOnly, _ := g.Observe(Usage{Size: l.WritableMark() + mib, InUse: l.WritableMark() + mib}, Pending{}, time.Now()); !readOnly {
		t.Error("a defragmentation ended the mode while the data stayed above the lower mark")
	}
	if readOnly, _ := g.Observe(Usage{Size: l.ReadOnlyMark(), InUse: l.WritableMark() - mib}, Pending{}, time.Now()); readOnly {
		t.Error("the mode stayed after the data fell below the lower mark")
	}
}

func TestRestoredModeHoldsBetweenTheMarks(t *testing.T) {
	t.Parallel()
	l := limits64
	between := Usage{Size: l.ReadOnlyMark(), InUse: (l.ReadOnlyMark() + l.WritableMark()) / 2}
	g := NewGuard(l)
	g.Restore(true)
	if readOnly, _ := g.Observe(between, Pending{}, time.Now()); !readOnly {
		t.Error("a restart in the mode between the marks came up writable")
	}
	g = NewGuard(l)
	if readOnly, _ := g.Observe(between, Pending{}, time.Now()); readOnly {
		t.Error("a restart out of the mode between the marks came up read-only")
	}
}
