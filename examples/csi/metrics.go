package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/subvolkit/subvolkit/examples/csi/driver"
	"github.com/subvolkit/subvolkit/examples/metrics"
	"github.com/subvolkit/subvolkit/subvol"
)

// driverMetrics builds the /metrics handler of the driver: the Go and
// process collectors, the node collector in node mode, and the Pool
// operation metrics of every pool (labels backend and pool, one registry
// per pool). It returns the handler and the Config.Observer to pass to
// driver.New.
func driverMetrics(mode string, pools map[string]*driver.PoolConfig, log *slog.Logger) (http.Handler, func(pool string) subvol.Observer) {
	base := prometheus.NewRegistry()
	base.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if mode != driver.ModeController {
		base.MustRegister(metrics.NewNodeCollector(0))
	}
	gatherers := prometheus.Gatherers{base}
	observers := map[string]subvol.Observer{}
	for name, pc := range pools {
		r := prometheus.NewRegistry()
		m := metrics.New(&metrics.Options{Backend: pc.Backend, Pool: name, Registry: r, NoNode: true, Logger: log})
		observers[name] = m.Observe
		gatherers = append(gatherers, r)
	}
	h := promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{})
	return h, func(pool string) subvol.Observer { return observers[pool] }
}

// serveMetrics serves h at /metrics on addr until ctx is done.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("serving metrics", "address", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
