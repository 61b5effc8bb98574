package datastore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/policy"
)

// ConditionType is the condition of the kube-system Namespace that says
// whether the tenant's datastore is read-only.
const ConditionType corev1.NamespaceConditionType = "DatastoreReadOnly"

// Condition reasons and Event reasons.
const (
	ReasonReadOnly = "DatastoreReadOnly"
	ReasonWritable = "DatastoreWritable"
)

// ModeKey is the etcd key, outside the API server's prefix, that holds
// "read-only" while the tenant is in the mode: a restart between the marks
// (the data above the lower one, below the upper one) comes up in the mode
// it was in, which the measured size alone cannot tell.
const ModeKey = "/knest/datastore/mode"

// DefaultInterval is how often the Monitor measures the datastore.
const DefaultInterval = 2 * time.Second

// Monitor measures the datastore, gives space back and reports the mode.
type Monitor struct {
	Guard *Guard
	// Etcd is a client of the tenant's etcd (one member); Endpoint the
	// member's address, its only endpoint. The maintenance calls go over
	// Etcd's connection.
	Etcd     *clientv3.Client
	Endpoint string
	// Tenant is knestd's own client of the tenant API server, for the
	// condition and the Events; until the API server serves, reporting
	// fails and is tried again on the next measurement.
	Tenant   kubernetes.Interface
	Interval time.Duration
	// ReadAgain is how often the Monitor reads the kube-system Namespace
	// while its condition already says what it would write, so that a
	// condition someone else changed is put back; default
	// DefaultReadAgain.
	ReadAgain time.Duration

	// prefixes are the etcd key prefixes of the resources whose count
	// the guard's limits cap.
	prefixes      map[string]string
	lastCompacted int64
	compactedAt   time.Time
	// maintenance makes Etcd's maintenance calls on Etcd's connection:
	// clientv3's own Status and Defragment dial the endpoint afresh on
	// every call, a new gRPC connection every Interval in an idle tenant.
	maintenance clientv3.Maintenance
	// reported is the mode the condition last said, nil before it did;
	// stored the mode ModeKey holds.
	reported, stored *bool
	// counts are the counts measured at revision countedAt.
	counts    map[string]int
	countedAt int64
	// shown is the condition the kube-system Namespace held when it was
	// last read or written, at shownAt.
	shown   *corev1.NamespaceCondition
	shownAt time.Time
	// ticks counts the measurements of the running monitor.
	ticks atomic.Int64
}

// DefaultReadAgain is the Monitor's default ReadAgain: an idle tenant's
// kube-system Namespace is read once a minute, not at every measurement.
const DefaultReadAgain = time.Minute

// Start gives space back if the datastore is above the writable mark (at
// start nothing else uses etcd, so a defragmentation costs nobody),
// measures it once, so that the guard knows the mode before the API server
// serves, then keeps measuring until ctx ends.
func (m *Monitor) Start(ctx context.Context) error {
	if m.Guard == nil || m.Etcd == nil || m.Endpoint == "" || m.Tenant == nil {
		return errors.New("datastore monitor: a guard, an etcd client and endpoint and a tenant client are required")
	}
	if m.Interval <= 0 {
		m.Interval = DefaultInterval
	}
	if m.ReadAgain <= 0 {
		m.ReadAgain = DefaultReadAgain
	}
	m.maintenance = clientv3.NewMaintenanceFromMaintenanceClient(etcdserverpb.NewMaintenanceClient(m.Etcd.ActiveConnection()), m.Etcd)
	m.prefixes = map[string]string{}
	for r := range m.Guard.Limits().ObjectCounts {
		prefix, ok := policy.DatastoreResourcePrefix(r)
		if !ok {
			return fmt.Errorf("datastore monitor: cannot count %s", r)
		}
		m.prefixes[r] = prefix
	}
	stored, err := m.Etcd.Get(ctx, ModeKey)
	if err != nil {
		return fmt.Errorf("failed to read the tenant's datastore mode: %w", err)
	}
	wasReadOnly := len(stored.Kvs) == 1 && string(stored.Kvs[0].Value) == "read-only"
	m.stored = &wasReadOnly
	m.Guard.Restore(wasReadOnly)
	p := m.Guard.Pending()
	u, err := m.measure(ctx)
	if err != nil {
		return err
	}
	if wasReadOnly || u.InUse >= m.Guard.Limits().WritableMark() || u.Size >= m.Guard.Limits().WritableMark() {
		// Pressed as if read-only: the restart may have been in the mode.
		if u, err = m.reclaim(ctx, true, u); err != nil {
			return err
		}
	}
	readOnly, _ := m.Guard.Observe(u, p, time.Now())
	if readOnly {
		klog.FromContext(ctx).Info("The tenant's datastore is read-only", "usage", Describe(u.InUse, m.Guard.Limits()))
	}
	if err := m.store(ctx, readOnly); err != nil {
		return err
	}
	go m.run(ctx)
	return nil
}

// store keeps ModeKey in step with the mode.
func (m *Monitor) store(ctx context.Context, readOnly bool) error {
	if m.stored != nil && *m.stored == readOnly {
		return nil
	}
	var err error
	if readOnly {
		_, err = m.Etcd.Put(ctx, ModeKey, "read-only")
	} else {
		_, err = m.Etcd.Delete(ctx, ModeKey)
	}
	if err != nil {
		return fmt.Errorf("failed to store the tenant's datastore mode: %w", err)
	}
	m.stored = &readOnly
	return nil
}

func (m *Monitor) run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(m.Interval)
	defer ticker.Stop()
	// Reports fail until the API server serves, which is expected for a
	// while after start.
	quietUntil := time.Now().Add(time.Minute)
	var worked, failing bool
	for {
		err := m.tick(ctx)
		m.ticks.Add(1)
		switch {
		case err != nil && ctx.Err() == nil && !worked && time.Now().Before(quietUntil):
			logger.V(1).Info("Datastore check failed while starting", "err", err.Error())
		case err != nil && ctx.Err() == nil && !failing:
			// Logged once per run of failures.
			logger.Error(err, "Datastore check failed")
			failing = true
		case err == nil && failing:
			logger.Info("Datastore check works again")
			failing = false
		}
		worked = worked || err == nil
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (m *Monitor) tick(ctx context.Context) error {
	p := m.Guard.Pending()
	u, err := m.measure(ctx)
	if err != nil {
		return err
	}
	if u, err = m.reclaim(ctx, m.Guard.ReadOnly(), u); err != nil {
		return err
	}
	readOnly, changed := m.Guard.Observe(u, p, time.Now())
	klog.FromContext(ctx).V(2).Info("Datastore measured", "size", u.Size, "inUse", u.InUse, "revision", u.Revision, "noSpace", u.NoSpace, "readOnly", readOnly)
	if changed {
		klog.FromContext(ctx).Info("Datastore mode changed", "readOnly", readOnly, "usage", Describe(u.InUse, m.Guard.Limits()))
	}
	if err := m.store(ctx, readOnly); err != nil {
		return err
	}
	return m.report(ctx, readOnly, u)
}

// measure reads etcd's status, its alarms and the counts the limits cap.
// An idle tenant costs one status call: the alarms are listed when the
// status reports any, and the counts are taken again only at a new
// revision (no object is created or deleted without one).
func (m *Monitor) measure(ctx context.Context) (Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := m.maintenance.Status(ctx, m.Endpoint)
	if err != nil {
		return Usage{}, fmt.Errorf("failed to read the tenant's etcd status: %w", err)
	}
	u := Usage{Size: st.DbSize, InUse: st.DbSizeInUse, Revision: st.Header.Revision, Counts: map[string]int{}}
	if len(st.Errors) > 0 {
		alarms, err := m.Etcd.AlarmList(ctx)
		if err != nil {
			return Usage{}, fmt.Errorf("failed to list the tenant's etcd alarms: %w", err)
		}
		for _, a := range alarms.Alarms {
			u.NoSpace = u.NoSpace || a.Alarm == etcdserverpb.AlarmType_NOSPACE
		}
	}
	if m.counts != nil && m.countedAt == u.Revision {
		u.Counts = maps.Clone(m.counts)
		return u, nil
	}
	for _, r := range slices.Sorted(maps.Keys(m.prefixes)) {
		resp, err := m.Etcd.Get(ctx, m.prefixes[r], clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return Usage{}, fmt.Errorf("failed to count %s in the tenant's etcd: %w", r, err)
		}
		u.Counts[r] = int(resp.Count)
	}
	m.counts, m.countedAt = maps.Clone(u.Counts), u.Revision
	return u, nil
}

// reclaim compacts and defragments etcd as Reclaim says, clears a NOSPACE
// alarm once there is room again, and returns the usage after.
func (m *Monitor) reclaim(ctx context.Context, readOnly bool, u Usage) (Usage, error) {
	logger := klog.FromContext(ctx)
	l := m.Guard.Limits()
	compact, _ := Reclaim(readOnly, u, m.lastCompacted, time.Since(m.compactedAt), l)
	var err error
	if compact {
		// Physical: the freed pages count in the status read next.
		if _, err := m.Etcd.Compact(ctx, u.Revision, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, context.Canceled) {
			// An API server compaction may have gone further meanwhile:
			// the next measurement tries again.
			logger.V(1).Info("Compaction failed", "revision", u.Revision, "err", err.Error())
		} else {
			m.lastCompacted, m.compactedAt = u.Revision, time.Now()
			m.Guard.metrics.compactions.Inc()
		}
		if u, err = m.measure(ctx); err != nil {
			return u, err
		}
	}
	if _, defrag := Reclaim(readOnly, u, m.lastCompacted, 0, l); defrag {
		start := time.Now()
		before := u.Size
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := m.maintenance.Defragment(dctx, m.Endpoint)
		cancel()
		if err != nil {
			return u, fmt.Errorf("failed to defragment the tenant's etcd: %w", err)
		}
		m.Guard.metrics.defrags.Inc()
		if u, err = m.measure(ctx); err != nil {
			return u, err
		}
		logger.Info("Defragmented the tenant's etcd", "before", bytes(before), "after", bytes(u.Size), "elapsed", time.Since(start).Round(time.Millisecond).String())
	}
	if DisarmNoSpace(u, l) {
		// An alarm is disarmed per member: one without the member's ID
		// clears nothing.
		alarms, err := m.Etcd.AlarmList(ctx)
		if err != nil {
			return u, fmt.Errorf("failed to list the tenant's etcd alarms: %w", err)
		}
		for _, a := range alarms.Alarms {
			if a.Alarm != etcdserverpb.AlarmType_NOSPACE {
				continue
			}
			if _, err := m.Etcd.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm}); err != nil {
				return u, fmt.Errorf("failed to clear the tenant's etcd NOSPACE alarm: %w", err)
			}
		}
		m.Guard.metrics.disarm.Inc()
		logger.Info("Cleared the tenant's etcd NOSPACE alarm", "usage", Describe(u.InUse, l))
		if u, err = m.measure(ctx); err != nil {
			return u, err
		}
	}
	return u, nil
}

// report sets the kube-system Namespace's condition and, when the mode
// changed since the condition last said, records an Event.
func (m *Monitor) report(ctx context.Context, readOnly bool, u Usage) error {
	want := m.condition(readOnly, u)
	if m.shown != nil && m.shown.Status == want.Status && m.shown.Reason == want.Reason && m.shown.Message == want.Message &&
		time.Since(m.shownAt) < m.ReadAgain && m.reported != nil && *m.reported == readOnly {
		return nil
	}
	ns, err := m.Tenant.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("failed to read the kube-system Namespace: %w", err)
	}
	var have *corev1.NamespaceCondition
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == ConditionType {
			have = &ns.Status.Conditions[i]
		}
	}
	if have == nil || have.Status != want.Status {
		want.LastTransitionTime = metav1.Now()
	} else {
		want.LastTransitionTime = have.LastTransitionTime
	}
	if have == nil || *have != want {
		ns = ns.DeepCopy()
		conds := slices.DeleteFunc(ns.Status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == ConditionType })
		ns.Status.Conditions = append(conds, want)
		if _, err := m.Tenant.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("failed to set the %s condition of the kube-system Namespace: %w", ConditionType, err)
		}
	}
	m.shown, m.shownAt = &want, time.Now()
	if m.reported != nil && *m.reported == readOnly {
		return nil
	}
	// No Event for the first report of a writable datastore: nothing
	// happened.
	if m.reported != nil || readOnly {
		if err := m.event(ctx, ns, want); err != nil {
			return err
		}
	}
	m.reported = &readOnly
	return nil
}

// condition is the kube-system Namespace's condition for the mode and the
// usage, the usage in whole MiB: the API server's own writes (leases every
// 10 s, this condition) move an idle datastore's in-use size by tenths of a
// MiB within tens of seconds, and a figure to a tenth of a MiB rewrote the
// condition, waking every Namespace watcher, for each.
func (m *Monitor) condition(readOnly bool, u Usage) corev1.NamespaceCondition {
	usage := Describe(u.InUse&^(1<<20-1), m.Guard.Limits())
	if readOnly {
		return corev1.NamespaceCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: ReasonReadOnly,
			Message: "The datastore holds " + usage + ": creates and updates that grow objects are refused; delete objects to leave read-only mode"}
	}
	return corev1.NamespaceCondition{Type: ConditionType, Status: corev1.ConditionFalse, Reason: ReasonWritable,
		Message: "The datastore holds " + usage}
}

func (m *Monitor) event(ctx context.Context, ns *corev1.Namespace, c corev1.NamespaceCondition) error {
	eventType := corev1.EventTypeNormal
	if c.Status == corev1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	now := metav1.Now()
	_, err := m.Tenant.CoreV1().Events(metav1.NamespaceSystem).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "knest-datastore-"},
		// An Event outside "default" must name its own namespace as the
		// involved object's (the API server's validation), also for the
		// Namespace itself.
		InvolvedObject: corev1.ObjectReference{Kind: "Namespace", APIVersion: "v1", Namespace: ns.Name, Name: ns.Name, UID: ns.UID,
			ResourceVersion: ns.ResourceVersion},
		Reason: c.Reason, Message: c.Message, Type: eventType,
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: "knestd"},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to record the %s Event: %w", c.Reason, err)
	}
	return nil
}
