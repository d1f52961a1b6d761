package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/examples/metrics"
	"github.com/subvolkit/subvolkit/subvol"
)

// BenchmarkUsage2000 measures, on real GlusterFS with 2 000 subvolumes,
// side by side in the same run:
//
//   - usage-s: `subvolctl usage -o json` wall time (process start, backend
//     open with its mounts, List, 2 000 Usage reads, close);
//   - quota-list-s: `gluster volume quota VOL list` (the raw CLI baseline,
//     which prints the same limits and usage);
//   - refresh-s and scrape-s: the metrics helper's refresh of the
//     per-subvolume gauges over the same pool, and a scrape of them.
//
// Run it as root: go test -run=NONE -bench=Usage2000 -benchtime=3x ./subvolctl/
func BenchmarkUsage2000(b *testing.B) {
	const n = 2000
	e := newGlusterEnv(b)
	t0 := time.Now()
	if out, code := e.subvolctl(b, "bulk-create", "--count", fmt.Sprint(n), "--size", "1Mi", "--parallel", "8", "-o", "json"); code != 0 {
		b.Fatalf("bulk-create: %d %s", code, out)
	}
	b.Logf("bulk-create of %d: %s", n, time.Since(t0).Round(time.Millisecond))
	wrapper := filepath.Join(e.dir, "gluster")

	ctx := context.Background()
	m := metrics.New(&metrics.Options{Backend: "cli", NoNode: true})
	be, err := cli.Open(ctx, &cli.Options{
		Volume: e.c.Volume(), Servers: e.c.Servers(), Runner: e.c.Runner(1),
		MountDir: filepath.Join(e.dir, "metrics-backend"),
	})
	if err != nil {
		b.Fatal(err)
	}
	pool := subvol.NewPool(be, &subvol.Options{Observer: m.Observe})
	defer pool.Close()
	h := m.Handler()

	var usage, list, refresh, scrape time.Duration
	runs := 0
	for b.Loop() {
		t1 := time.Now()
		out, code := e.subvolctl(b, "usage", "-o", "json")
		usage += time.Since(t1)
		if code != 0 {
			b.Fatalf("usage: %d", code)
		}
		var rows []usageView
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != n {
			b.Fatalf("usage: %d rows, %v", len(rows), err)
		}

		t2 := time.Now()
		if out, err := exec.Command(wrapper, "--mode=script", "volume", "quota", e.c.Volume(), "list").CombinedOutput(); err != nil {
			b.Fatalf("quota list: %v: %s", err, out)
		}
		list += time.Since(t2)

		t3 := time.Now()
		if err := m.Refresh(ctx, pool); err != nil {
			b.Fatal(err)
		}
		refresh += time.Since(t3)

		t4 := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		_, _ = io.Copy(io.Discard, rec.Body)
		scrape += time.Since(t4)
		runs++
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(runs) }
	b.ReportMetric(per(usage), "usage-s")
	b.ReportMetric(per(list), "quota-list-s")
	b.ReportMetric(per(refresh), "refresh-s")
	b.ReportMetric(per(scrape), "scrape-s")
}
