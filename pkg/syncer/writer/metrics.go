package writer

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
)

// Metrics are the syncer's Prometheus metrics. Writes are counted apart from
// reconciles so that an idle syncer can be seen making none.
type Metrics struct {
	reconciles *prometheus.CounterVec
	errors     *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	writes     *prometheus.CounterVec
	// heartbeats are the virtual Nodes' Lease renewals and Ready
	// refreshes: writes a live node makes by design, counted apart.
	heartbeats *prometheus.CounterVec
	// hostNodeErrors are failed reads of host Nodes for the host info of
	// virtual Nodes (knestd --host-node-info), by API reason.
	hostNodeErrors *prometheus.CounterVec
}

// NewMetrics registers the syncer's metrics with reg, or takes those already
// registered there.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "knest_syncer_reconciles_total", Help: "Reconciles of tenant objects, by kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "knest_syncer_errors_total", Help: "Reconciles that failed, by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "knest_syncer_reconcile_seconds", Help: "Time to reconcile one tenant object, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "knest_syncer_writes_total", Help: "Writes to synced objects, by kind, cluster and operation.",
		}, []string{"kind", "cluster", "op"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "knest_syncer_node_heartbeats_total", Help: "Virtual Node heartbeats, by kind (Lease or Node status).",
		}, []string{"kind"}),
		hostNodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "knest_syncer_host_node_errors_total", Help: "Failed reads of host Nodes for virtual Node host info, by reason (Forbidden, NotFound, ...).",
		}, []string{"reason"}),
	}
	var err error
	if m.reconciles, err = register(reg, m.reconciles); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.writes, err = register(reg, m.writes); err != nil {
		return nil, err
	}
	if m.heartbeats, err = register(reg, m.heartbeats); err != nil {
		return nil, err
	}
	if m.hostNodeErrors, err = register(reg, m.hostNodeErrors); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe counts one reconcile of kind that took d and failed with err (nil:
// succeeded).
func (m *Metrics) Observe(kind string, d time.Duration, err error) {
	m.reconciles.WithLabelValues(kind).Inc()
	m.latency.WithLabelValues(kind).Observe(d.Seconds())
	if err != nil {
		m.errors.WithLabelValues(kind).Inc()
	}
}

// HostWrite counts one write of op to a host object of kind.
func (m *Metrics) HostWrite(kind, op string) {
	m.writes.WithLabelValues(kind, "host", op).Inc()
}

// Heartbeat counts one virtual Node heartbeat (kind Lease or Node).
func (m *Metrics) Heartbeat(kind string) {
	m.heartbeats.WithLabelValues(kind).Inc()
}

// HostNodeError counts one failed read of a host Node, by its API reason.
func (m *Metrics) HostNodeError(err error) {
	reason := string(kerrors.ReasonForError(err))
	if reason == "" {
		// Not an API status: the host could not be reached.
		reason = "Unknown"
	}
	m.hostNodeErrors.WithLabelValues(reason).Inc()
}

// TenantWrite counts one write of op to a tenant object of kind.
func (m *Metrics) TenantWrite(kind, op string) {
	m.writes.WithLabelValues(kind, "tenant", op).Inc()
}

// register registers c, or returns the collector already registered under
// its name (a second syncer in one process shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
