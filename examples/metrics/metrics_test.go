package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// documented are the metric names the package documentation lists.
var documented = []string{
	"subvolkit_operations_total",
	"subvolkit_operation_errors_total",
	"subvolkit_operation_duration_seconds",
	"subvolkit_subvolumes",
	"subvolkit_subvolume_limit_bytes",
	"subvolkit_subvolume_used_bytes",
	"subvolkit_subvolume_files",
	"subvolkit_usage_refresh_duration_seconds",
	"subvolkit_usage_refresh_timestamp_seconds",
	"subvolkit_usage_refresh_errors_total",
	"subvolkit_usage_subvolumes_skipped",
	"subvolkit_node_glusterfs_processes",
	"subvolkit_node_glusterfs_resident_memory_bytes",
	"subvolkit_node_glusterfs_mounts",
}

// newPool returns a memory pool, opened through the registry, observed by m.
func newPool(t testing.TB, m *Metrics) *subvol.Pool {
	t.Helper()
	pool, err := subvol.Open(context.Background(), memory.Name, map[string]string{"volume": "gv0"}, &subvol.Options{Observer: m.Observe})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}

func scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// TestMetricsLint exposes every metric (after operations, an error, a
// refresh) and checks the names with promlint and against the package
// documentation.
func TestMetricsLint(t *testing.T) {
	ctx := context.Background()
	m := New(&Options{Backend: "memory"})
	pool := newPool(t, m)
	_, err := pool.Allocate(ctx, "a", 10*quota.MiB, nil)
	require.NoError(t, err)
	_, err = pool.Allocate(ctx, "b", 20*quota.MiB, nil)
	require.NoError(t, err)
	_, err = pool.Get(ctx, "missing")
	require.Error(t, err)
	require.NoError(t, m.Refresh(ctx, pool))
	m.refreshE.Add(0)

	text := scrape(t, m.Handler())
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")

	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	var ours []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "subvolkit_") {
			ours = append(ours, mf.GetName())
		}
	}
	assert.ElementsMatch(t, documented, ours, "the metrics are the documented ones")

	assert.Contains(t, text, `subvolkit_operations_total{backend="memory",operation="allocate"} 2`)
	assert.Contains(t, text, `subvolkit_operation_errors_total{backend="memory",kind="not found",operation="get"} 1`)
	assert.Contains(t, text, `subvolkit_subvolume_limit_bytes{backend="memory",subvolume="b",volume="gv0"} 2.097152e+07`)
	assert.Contains(t, text, `subvolkit_subvolume_used_bytes{backend="memory",subvolume="a",volume="gv0"} 0`)
	assert.Contains(t, text, `subvolkit_subvolumes{backend="memory"} 2`)
	assert.Regexp(t, `subvolkit_node_glusterfs_mounts\{state="stale"\} \d+`, text)
}

func TestRefreshIsBounded(t *testing.T) {
	ctx := context.Background()
	m := New(&Options{Backend: "memory", MaxSubvolumes: 3, NoNode: true})
	pool := newPool(t, m)
	for i := range 5 {
		_, err := pool.Allocate(ctx, fmt.Sprintf("s%d", i), quota.MiB, nil)
		require.NoError(t, err)
	}
	before := scrape(t, m.Handler())
	assert.NotContains(t, before, "subvolkit_subvolume_limit_bytes", "no values before the first refresh")
	require.NoError(t, m.Refresh(ctx, pool))
	text := scrape(t, m.Handler())
	assert.Equal(t, 3, strings.Count(text, "subvolkit_subvolume_limit_bytes{"))
	assert.Contains(t, text, `subvolkit_usage_subvolumes_skipped{backend="memory"} 2`)
	assert.Contains(t, text, `subvolkit_subvolumes{backend="memory"} 5`)

	// A closed pool: the refresh fails, the old values stay.
	require.NoError(t, pool.Close())
	require.Error(t, m.Refresh(ctx, pool))
	assert.Contains(t, scrape(t, m.Handler()), `subvolkit_usage_refresh_errors_total{backend="memory"} 1`)
}

func TestRunRefreshesOnATimer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(&Options{Backend: "memory", RefreshInterval: 20 * time.Millisecond, NoNode: true})
	pool := newPool(t, m)
	done := make(chan struct{})
	go func() { m.Run(ctx, pool); close(done) }()
	_, err := pool.Allocate(ctx, "late", quota.MiB, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, m.Handler()), `subvolume="late"`)
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}

func TestFUSEClientRole(t *testing.T) {
	split := func(s string) [][]byte {
		var out [][]byte
		for _, f := range strings.Fields(s) {
			out = append(out, []byte(f))
		}
		return out
	}
	assert.True(t, isFUSEClient(split("/usr/sbin/glusterfs --process-name fuse --volfile-server=h --volfile-id=/v /mnt")))
	assert.True(t, isFUSEClient(split("glusterfs --client-pid=-5 --process-name=fuse.subvolkit-quota --volfile-id=v /d")))
	assert.False(t, isFUSEClient(split("/usr/sbin/glusterfs -s localhost --volfile-id shd/v -p /x.pid --process-name glustershd")))
	assert.False(t, isFUSEClient(split("/usr/sbin/glusterfs -s localhost --volfile-id gluster/quotad")))
}

// BenchmarkScrape2000 scrapes the metrics of 2 000 subvolumes on the memory
// backend: ours serves the last refresh from memory; the baseline is what
// an exporter without the cache would do per scrape (List + 2 000 Usage
// calls, then the same encoding).
func BenchmarkScrape2000(b *testing.B) {
	ctx := context.Background()
	m := New(&Options{Backend: "memory", NoNode: true})
	pool := newPool(b, m)
	for i := range 2000 {
		if _, err := pool.Allocate(ctx, fmt.Sprintf("pvc-%04d", i), quota.GiB, nil); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := m.Refresh(ctx, pool); err != nil {
		b.Fatal(err)
	}
	refresh := time.Since(t0)
	h := m.Handler()
	var scrapeTotal, directTotal time.Duration
	n := 0
	for b.Loop() {
		t1 := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		_, _ = io.Copy(io.Discard, rec.Body)
		scrapeTotal += time.Since(t1)

		t2 := time.Now()
		if err := m.Refresh(ctx, pool); err != nil {
			b.Fatal(err)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		directTotal += time.Since(t2)
		n++
	}
	b.ReportMetric(scrapeTotal.Seconds()/float64(n), "scrape-s")
	b.ReportMetric(directTotal.Seconds()/float64(n), "refresh+scrape-s")
	b.ReportMetric(refresh.Seconds(), "first-refresh-s")
}

func TestWrapAppendsToTheFrontEndsMetrics(t *testing.T) {
	m := New(&Options{Backend: "cli", NoNode: true})
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			_, _ = io.WriteString(w, "# HELP heketi_up Is heketi running?\n# TYPE heketi_up gauge\nheketi_up 1\n")
			return
		}
		http.Error(w, "front end", http.StatusTeapot)
	})
	m.Observe("allocate", "a", time.Millisecond, nil)
	text := scrape(t, m.Wrap(front))
	assert.True(t, strings.HasPrefix(text, "# HELP heketi_up"), text)
	assert.Contains(t, text, `subvolkit_operations_total{backend="cli",operation="allocate"} 1`)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)

	rec := httptest.NewRecorder()
	m.Wrap(front).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/volumes", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code, "other paths go to the front end")

	// A front end without /metrics of its own: ours only.
	text = scrape(t, m.Wrap(http.NotFoundHandler()))
	assert.True(t, strings.HasPrefix(text, "# HELP go_") || strings.HasPrefix(text, "# HELP subvolkit_"), text[:40])
}
