package provision

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/subvolkit/subvolkit"
)

// Metrics are the provisioner's Prometheus metrics: operations by result,
// their latency, and errors by subvolkit error kind. A nil *Metrics records
// nothing.
type Metrics struct {
	ops     *prometheus.CounterVec
	latency *prometheus.HistogramVec
	errs    *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "subvolkit", Subsystem: "provisioner", Name: "operations_total",
			Help: "Operations (provision, clone, delete, resize) by result (success, error).",
		}, []string{"operation", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "subvolkit", Subsystem: "provisioner", Name: "operation_duration_seconds",
			Help:    "Latency of operations, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"operation"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "subvolkit", Subsystem: "provisioner", Name: "errors_total",
			Help: "Failed operations by subvolkit error kind (not found, invalid argument, unavailable, ...).",
		}, []string{"operation", "kind"}),
	}
	reg.MustRegister(m.ops, m.latency, m.errs)
	return m
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil {
		m.ops.WithLabelValues(op, "success").Inc()
		return
	}
	m.ops.WithLabelValues(op, "error").Inc()
	m.errs.WithLabelValues(op, subvolkit.KindOf(err).String()).Inc()
}
