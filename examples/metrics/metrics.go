// Package metrics is the Prometheus instrumentation every subvolkit front end
// mounts (heketi-server, csi, provisioner, subvolctl): operation counts,
// latencies and errors by kind per backend, from the Pool's Observer;
// per-subvolume limit, used bytes and files, refreshed on a timer so that a
// scrape costs no backend call; and the glusterfs client processes and
// stale GlusterFS mounts of the node.
//
// It lives in the examples module because the core module does not depend
// on Prometheus. Typical use:
//
//	m := metrics.New(&metrics.Options{Backend: "cli"})
//	pool, err := subvol.Open(ctx, "cli", params, &subvol.Options{Observer: m.Observe})
//	...
//	go m.Run(ctx, pool)                  // refreshes the per-subvolume gauges
//	http.Handle("/metrics", m.Handler()) // or: handler = m.Wrap(handler)
//
// # Metrics
//
//	subvolkit_operations_total{backend,operation}                 counter
//	subvolkit_operation_errors_total{backend,operation,kind}      counter
//	subvolkit_operation_duration_seconds{backend,operation}       histogram
//	subvolkit_subvolumes{backend}                                 gauge
//	subvolkit_subvolume_limit_bytes{backend,volume,subvolume}     gauge
//	subvolkit_subvolume_used_bytes{backend,volume,subvolume}      gauge
//	subvolkit_subvolume_files{backend,volume,subvolume}           gauge
//	subvolkit_usage_refresh_duration_seconds{backend}             gauge
//	subvolkit_usage_refresh_timestamp_seconds{backend}            gauge
//	subvolkit_usage_refresh_errors_total{backend}                 counter
//	subvolkit_usage_subvolumes_skipped{backend}                   gauge
//	subvolkit_node_glusterfs_processes{role}                      gauge
//	subvolkit_node_glusterfs_resident_memory_bytes{role}          gauge
//	subvolkit_node_glusterfs_mounts{state}                        gauge
//
// operation is the Pool's ("allocate", "get", "list", "resize", "usage",
// "clone", "delete", ...); kind is the error kind ("not found", "unavailable",
// ...); role is "fuse" for a client serving a mount and "daemon" for the
// others (self-heal daemon, quotad); state is one of mount.MountState.
// The names pass promlint (TestMetricsLint).
package metrics

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Defaults for Options.
const (
	DefaultRefreshInterval = time.Minute
	DefaultRefreshTimeout  = 30 * time.Second
	DefaultConcurrency     = 8
	DefaultMaxSubvolumes   = 20000
	DefaultMountTimeout    = time.Second
)

// Options configure Metrics. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// Backend is the value of the backend label, such as "cli" (default
	// "unknown").
	Backend string
	// Pool, if set, is the value of a pool label on the Pool metrics, for
	// a front end with several pools: one Metrics (and registry) per pool,
	// gathered together (prometheus.Gatherers). Empty: no pool label.
	Pool string
	// Registry receives the collectors; default a new registry of its own
	// (with the Go and process collectors), served by Handler.
	Registry *prometheus.Registry
	// RefreshInterval is how often Run reads List and Usage for the
	// per-subvolume gauges. Default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// RefreshTimeout bounds one refresh. Default DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// Concurrency bounds the Usage calls in flight during a refresh.
	// Default DefaultConcurrency.
	Concurrency int
	// MaxSubvolumes bounds the subvolumes a refresh reads (and so the
	// series a scrape returns); the rest are counted in
	// subvolkit_usage_subvolumes_skipped. Default DefaultMaxSubvolumes.
	MaxSubvolumes int
	// NoNode turns off the node collector (glusterfs processes, mounts),
	// for a front end that does not run on a storage client node.
	NoNode bool
	// MountTimeout bounds the statfs of each GlusterFS mount during a
	// scrape. Default DefaultMountTimeout.
	MountTimeout time.Duration
	// Logger receives refresh failures (nil: silent).
	Logger *slog.Logger
}

// Metrics holds the collectors. It is safe for concurrent use.
type Metrics struct {
	opts     Options
	reg      *prometheus.Registry
	ops      *prometheus.CounterVec
	errs     *prometheus.CounterVec
	dur      *prometheus.HistogramVec
	usage    *usageCollector
	refreshE prometheus.Counter
	running  atomic.Bool
}

// New returns Metrics registered on opts.Registry (or a registry of its
// own). It panics if the names are already registered there, as
// prometheus.MustRegister does.
func New(opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Backend == "" {
		o.Backend = "unknown"
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = DefaultRefreshTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxSubvolumes <= 0 {
		o.MaxSubvolumes = DefaultMaxSubvolumes
	}
	if o.MountTimeout <= 0 {
		o.MountTimeout = DefaultMountTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	constLabels := prometheus.Labels{"backend": o.Backend}
	if o.Pool != "" {
		constLabels["pool"] = o.Pool
	}
	m := &Metrics{
		opts: o,
		reg:  reg,
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "subvolkit", Name: "operations_total", ConstLabels: constLabels,
			Help: "Pool operations finished, successful or not.",
		}, []string{"operation"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "subvolkit", Name: "operation_errors_total", ConstLabels: constLabels,
			Help: "Pool operations that failed, by error kind.",
		}, []string{"operation", "kind"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "subvolkit", Name: "operation_duration_seconds", ConstLabels: constLabels,
			Help:    "Duration of Pool operations.",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"operation"}),
		refreshE: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "subvolkit", Name: "usage_refresh_errors_total", ConstLabels: constLabels,
			Help: "Refreshes of the per-subvolume gauges that failed (List failed or timed out).",
		}),
	}
	m.usage = newUsageCollector(constLabels)
	reg.MustRegister(m.ops, m.errs, m.dur, m.refreshE, m.usage)
	if !o.NoNode {
		reg.MustRegister(newNodeCollector(o.MountTimeout))
	}
	return m
}

// NewNodeCollector returns the node collector (glusterfs processes and
// mounts of this node) on its own, for a front end that registers it once
// next to several Metrics made with NoNode. timeout bounds the statfs of
// each mount during a scrape (0: DefaultMountTimeout).
func NewNodeCollector(timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = DefaultMountTimeout
	}
	return newNodeCollector(timeout)
}

// Observe records one Pool operation. Pass it as subvol.Options.Observer.
func (m *Metrics) Observe(op, _ string, d time.Duration, err error) {
	m.ops.WithLabelValues(op).Inc()
	m.dur.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.errs.WithLabelValues(op, subvolkit.KindOf(err).String()).Inc()
	}
}

var _ subvol.Observer = (*Metrics)(nil).Observe

// Registry returns the registry the collectors are registered on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. It needs
// no authentication, as heketi's /metrics does not.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Wrap returns a handler that serves GET /metrics itself and passes every
// other request to next. If next also answers GET /metrics (heketi-server
// serves heketi's own metric names there), its answer comes first and
// these metrics follow it in the same text exposition; the metric names
// must not collide. Like Handler, it needs no authentication.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		theirs := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(theirs, r)
		mfs, err := m.reg.Gather()
		if err != nil && len(mfs) == 0 {
			http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		var buf bytes.Buffer
		if theirs.code == http.StatusOK {
			buf.Write(theirs.body.Bytes())
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				http.Error(w, "encoding metrics: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(buf.Bytes())
		}
	})
}

// bufferedResponse keeps what a handler answers.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }

// Run refreshes the per-subvolume gauges from pool now and then every
// RefreshInterval until ctx ends. Run it in its own goroutine, once.
func (m *Metrics) Run(ctx context.Context, pool *subvol.Pool) {
	if !m.running.CompareAndSwap(false, true) {
		panic("metrics: Run called twice")
	}
	t := time.NewTicker(m.opts.RefreshInterval)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx, pool); err != nil && ctx.Err() == nil {
			m.opts.Logger.WarnContext(ctx, "metrics refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh lists the subvolumes with their usage (Pool.ListPage with
// WithUsage: in bulk where the backend can; else one Usage call per
// subvolume, at most Concurrency at a time), at most MaxSubvolumes of them,
// within RefreshTimeout, and replaces the per-subvolume gauges. A failed Usage
// leaves that subvolume's used bytes and files out; a failed List keeps the
// previous values and is returned.
func (m *Metrics) Refresh(ctx context.Context, pool *subvol.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.RefreshTimeout)
	defer cancel()
	start := time.Now()
	svs, skipped, err := listWithUsage(ctx, pool, m.opts.MaxSubvolumes)
	if err != nil {
		m.refreshE.Inc()
		return err
	}
	rows := make([]usageRow, len(svs))
	sem := make(chan struct{}, m.opts.Concurrency)
	var wg sync.WaitGroup
	for i, sv := range svs {
		rows[i] = usageRow{name: sv.Name, volume: sv.Volume, limit: sv.SizeBytes, used: -1, files: -1}
		if sv.Usage != nil { // read in bulk by the List
			rows[i].fill(sv.Usage)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(r *usageRow) {
			defer func() { <-sem; wg.Done() }()
			u, err := pool.Usage(ctx, r.name)
			if err != nil {
				return
			}
			r.fill(u)
		}(&rows[i])
	}
	wg.Wait()
	m.usage.set(rows, len(svs)+skipped, skipped, time.Since(start), time.Now())
	return nil
}

// listWithUsage lists the pool's subvolumes with their usage (read in bulk
// where the backend can), at most max of them; the others are only
// counted.
func listWithUsage(ctx context.Context, pool *subvol.Pool, max int) (svs []*subvol.Subvol, skipped int, err error) {
	opts := &subvol.ListOptions{WithUsage: true, MaxResults: min(max, 1000)}
	for {
		page, err := pool.ListPage(ctx, opts)
		if err != nil {
			return nil, 0, err
		}
		take := min(len(page.Subvols), max-len(svs))
		svs = append(svs, page.Subvols[:take]...)
		skipped += len(page.Subvols) - take
		if page.NextPageToken == "" {
			return svs, skipped, nil
		}
		opts.PageToken = page.NextPageToken
		if len(svs) == max { // only counting from here on
			opts.WithUsage = false
		}
	}
}

// usageRow is what a refresh learnt of one subvolume; -1 means unknown.
type usageRow struct {
	name, volume       string
	limit, used, files int64
}

func (r *usageRow) fill(u *quota.Usage) {
	if u.Limit > 0 {
		r.limit = u.Limit
	}
	r.used = u.Used
	r.files = u.Files
}
