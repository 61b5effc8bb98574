package datastore

import (
	"errors"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics are the datastore's metrics. Registered with the API server's
// registry, they are served on the tenant API server's /metrics.
type Metrics struct {
	readOnly, size, inUse, quota *metrics.Gauge
	refusals                     *metrics.CounterVec
	compactions, defrags, disarm *metrics.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		readOnly: metrics.NewGauge(&metrics.GaugeOpts{Name: "knest_datastore_read_only",
			Help: "1 while the tenant's datastore is in read-only mode.", StabilityLevel: metrics.ALPHA}),
		size: metrics.NewGauge(&metrics.GaugeOpts{Name: "knest_datastore_size_bytes",
			Help: "Size of the tenant's etcd database file, which etcd's own quota (twice the tenant's limit) is checked against.", StabilityLevel: metrics.ALPHA}),
		inUse: metrics.NewGauge(&metrics.GaugeOpts{Name: "knest_datastore_size_in_use_bytes",
			Help: "Bytes of the tenant's etcd database that hold data, which the tenant's limit and its read-only mode are checked against.", StabilityLevel: metrics.ALPHA}),
		quota: metrics.NewGauge(&metrics.GaugeOpts{Name: "knest_datastore_quota_bytes",
			Help: "The tenant's datastore limit (--etcd-quota-bytes).", StabilityLevel: metrics.ALPHA}),
		refusals: metrics.NewCounterVec(&metrics.CounterOpts{Name: "knest_datastore_refused_writes_total",
			Help: "Writes refused by the datastore limits, by reason (ReadOnly, ObjectCount).", StabilityLevel: metrics.ALPHA}, []string{"reason"}),
		compactions: metrics.NewCounter(&metrics.CounterOpts{Name: "knest_datastore_compactions_total",
			Help: "Compactions knestd ran on the tenant's etcd to give space back.", StabilityLevel: metrics.ALPHA}),
		defrags: metrics.NewCounter(&metrics.CounterOpts{Name: "knest_datastore_defragmentations_total",
			Help: "Defragmentations knestd ran on the tenant's etcd.", StabilityLevel: metrics.ALPHA}),
		disarm: metrics.NewCounter(&metrics.CounterOpts{Name: "knest_datastore_nospace_alarms_disarmed_total",
			Help: "etcd NOSPACE alarms knestd cleared after freeing space.", StabilityLevel: metrics.ALPHA}),
	}
}

// Register adds the metrics to the API server's registry (one guard per
// process: a second registration is an error).
func (m *Metrics) Register() error {
	var errs []error
	for _, c := range []metrics.Registerable{m.readOnly, m.size, m.inUse, m.quota, m.refusals, m.compactions, m.defrags, m.disarm} {
		errs = append(errs, legacyregistry.Register(c))
	}
	return errors.Join(errs...)
}

func (m *Metrics) observe(u Usage, readOnly bool, l Limits) {
	v := 0.0
	if readOnly {
		v = 1
	}
	m.readOnly.Set(v)
	m.size.Set(float64(u.Size))
	m.inUse.Set(float64(u.InUse))
	m.quota.Set(float64(l.QuotaBytes))
}

func (m *Metrics) refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }
