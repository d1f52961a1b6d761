package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// The benchmarks compare subvolkit with the raw gluster CLI calls a script
// would make, side by side on the same real one-node cluster:
//
//	go test -run=NONE -bench=. -benchtime=40x ./backend/cli/
//
// raw allocate = mkdir on a FUSE mount + `volume quota VOL limit-usage`;
// raw delete = `volume quota VOL remove` + rm -rf. The raw concurrent case
// runs 8 of them at once without retries, as a naive provisioner would.

type benchEnv struct {
	c    *glustertest.Cluster
	bk   *cli.Backend
	pool *subvol.Pool
	root string
	seq  atomic.Int64
	// busy counts the raw CLI attempts that found the volume lock busy
	// and were retried (untimed).
	busy atomic.Int64
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
)

// sharedBench starts one cluster for all benchmarks of this run: one node,
// or $SUBVOLKIT_BENCH_NODES (2 or 3: a replica volume, a brick per node).
func sharedBench(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		nodes := 1
		if n, err := strconv.Atoi(os.Getenv("SUBVOLKIT_BENCH_NODES")); err == nil && n > 0 {
			nodes = n
		}
		c, err := glustertest.Start(context.Background(), &glustertest.Options{Nodes: nodes})
		if err != nil {
			b.Fatalf("start gluster: %v", err)
		}
		bk := openBackendB(b, c)
		root, err := c.Mount(context.Background(), "")
		if err != nil {
			b.Fatal(err)
		}
		benchE = &benchEnv{c: c, bk: bk, pool: subvol.NewPool(bk, nil), root: root}
	})
	if benchE == nil {
		b.Fatal("benchmark cluster failed to start")
	}
	return benchE
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchE != nil {
		benchE.pool.Close()
		benchE.c.Close()
	}
	os.Exit(code)
}

func (e *benchEnv) name(prefix string) string {
	return fmt.Sprintf("%s-%06d", prefix, e.seq.Add(1))
}

func (e *benchEnv) rawAllocate(ctx context.Context, name string) error {
	if err := os.Mkdir(filepath.Join(e.root, name), 0o755); err != nil {
		return err
	}
	out, errOut, err := e.c.Runner(1).Run(ctx, "--mode=script", "volume", "quota", e.c.Volume(), "limit-usage", "/"+name, "1GB")
	if err != nil {
		return fmt.Errorf("%v: %s %s", err, out, errOut)
	}
	return nil
}

// rawQuota runs a quota command as a careful script would: a busy volume
// lock ("Another transaction is in progress", which the previous call or
// the background purge can leave for a moment) is retried after 20 ms. Only
// the successful attempt is timed, so the baseline never pays for waiting.
func (e *benchEnv) rawQuota(ctx context.Context, args ...string) (time.Duration, error) {
	args = append([]string{"--mode=script", "volume", "quota", e.c.Volume()}, args...)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		out, errOut, err := e.c.Runner(1).Run(ctx, args...)
		d := time.Since(start)
		if err == nil {
			return d, nil
		}
		if attempt == 100 || !strings.Contains(string(out)+string(errOut), "Another transaction is in progress") {
			return d, fmt.Errorf("%v: %s %s", err, out, errOut)
		}
		e.busy.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// rawAllocateTimed is mkdir + limit-usage, timed as rawQuota says.
func (e *benchEnv) rawAllocateTimed(ctx context.Context, name string) (time.Duration, error) {
	start := time.Now()
	if err := os.Mkdir(filepath.Join(e.root, name), 0o755); err != nil {
		return 0, err
	}
	d := time.Since(start)
	q, err := e.rawQuota(ctx, "limit-usage", "/"+name, "1GB")
	return d + q, err
}

// rawDeleteTimed is quota remove + rm -rf, timed as rawQuota says.
func (e *benchEnv) rawDeleteTimed(ctx context.Context, name string) (time.Duration, error) {
	q, err := e.rawQuota(ctx, "remove", "/"+name)
	if err != nil {
		return q, err
	}
	start := time.Now()
	err = os.RemoveAll(filepath.Join(e.root, name))
	return q + time.Since(start), err
}

func (e *benchEnv) rawDelete(ctx context.Context, name string) error {
	_, err := e.rawDeleteTimed(ctx, name)
	return err
}

// quiesce waits (untimed) until the background purge has nothing left, so
// that its quota calls do not run during a measurement.
func (e *benchEnv) quiesce(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for {
		st, err := e.bk.Purge(ctx)
		if err != nil {
			b.Fatalf("purge: %v", err)
		}
		if st.Pending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sideBySide runs raw and pool once each per iteration, alternating which
// goes first, after the background purge is idle, and reports both means
// and their ratio (pool-vs-raw), so that drift in the machine's load hits
// both alike. raw times itself (see rawQuota).
func sideBySide(b *testing.B, raw func(i int) (time.Duration, error), pool func(i int) error) {
	var tRaw, tPool time.Duration
	runRaw := func(i int) {
		d, err := raw(i)
		if err != nil {
			b.Fatal(err)
		}
		tRaw += d
	}
	runPool := func(i int) {
		start := time.Now()
		if err := pool(i); err != nil {
			b.Fatal(err)
		}
		tPool += time.Since(start)
	}
	busy0 := benchE.busy.Load()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		benchE.quiesce(b)
		b.StartTimer()
		if i%2 == 0 {
			runRaw(i)
			runPool(i)
		} else {
			runPool(i)
			runRaw(i)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(tRaw), "raw-ms/op")
	b.ReportMetric(ms(tPool), "pool-ms/op")
	b.ReportMetric(float64(tPool)/float64(tRaw), "pool-vs-raw")
	b.ReportMetric(float64(benchE.busy.Load()-busy0)/float64(b.N), "raw-busy-retries/op")
}

// BenchmarkAllocate: mkdir + limit-usage by hand versus Pool.Allocate
// (marker, ownership, limit, read-back, cluster-wide name lock).
func BenchmarkAllocate(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	var raw, pool []string
	sideBySide(b, func(int) (time.Duration, error) {
		n := e.name("rawa")
		raw = append(raw, n)
		return e.rawAllocateTimed(ctx, n)
	}, func(int) error {
		n := e.name("poola")
		pool = append(pool, n)
		_, err := e.pool.Allocate(ctx, n, quota.GiB, nil)
		return err
	})
	for _, n := range raw {
		_ = e.rawDelete(ctx, n)
	}
	for _, n := range pool {
		_ = e.pool.Delete(ctx, n, nil)
	}
}

// BenchmarkDelete: quota remove + rm -rf by hand versus Pool.Delete (owner
// check, limit removal, rename to trash, removal).
func BenchmarkDelete(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	b.StopTimer()
	raw := make([]string, b.N)
	pool := make([]string, b.N)
	for i := range raw {
		raw[i], pool[i] = e.name("rawd"), e.name("poold")
		if _, err := e.rawAllocateTimed(ctx, raw[i]); err != nil {
			b.Fatal(err)
		}
		if _, err := e.pool.Allocate(ctx, pool[i], quota.GiB, nil); err != nil {
			b.Fatal(err)
		}
		for _, d := range []string{raw[i], pool[i]} {
			_ = os.WriteFile(filepath.Join(e.root, d, "f"), []byte("x"), 0o644)
		}
	}
	b.StartTimer()
	sideBySide(b, func(i int) (time.Duration, error) { return e.rawDeleteTimed(ctx, raw[i]) },
		func(i int) error { return e.pool.Delete(ctx, pool[i], nil) })
}

// BenchmarkConcurrentAllocate8 runs rounds of 8 simultaneous allocates and
// reports the fraction that failed ("failed/op").
func BenchmarkConcurrentAllocate8(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	run := func(b *testing.B, alloc func(name string) error, cleanup func(name string)) {
		var failed, total int
		var names []string
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			errs := make([]error, 8)
			round := make([]string, 8)
			for j := range errs {
				round[j] = e.name("conc")
				wg.Add(1)
				go func(j int) {
					defer wg.Done()
					errs[j] = alloc(round[j])
				}(j)
			}
			wg.Wait()
			for _, err := range errs {
				total++
				if err != nil {
					failed++
				}
			}
			names = append(names, round...)
		}
		b.StopTimer()
		b.ReportMetric(float64(failed)/float64(total), "failed/op")
		for _, n := range names {
			cleanup(n)
		}
	}
	b.Run("raw-cli", func(b *testing.B) {
		run(b, func(n string) error { return e.rawAllocate(ctx, n) },
			func(n string) { _ = e.rawDelete(ctx, n) })
	})
	b.Run("pool", func(b *testing.B) {
		run(b, func(n string) error { _, err := e.pool.Allocate(ctx, n, quota.GiB, nil); return err },
			func(n string) { _ = e.pool.Delete(ctx, n, nil) })
	})
}

func openBackendB(b *testing.B, c *glustertest.Cluster) *cli.Backend {
	if err := cli.Prepare(context.Background(), c.Runner(1), c.Volume(), &cli.PrepareOptions{StrictQuota: true}); err != nil {
		b.Fatal(err)
	}
	// The Pool's runner is a ShellRunner, the default of cli.Open; with
	// SUBVOLKIT_BENCH_RUNNER=exec, one gluster process per call, as the raw
	// baseline runs them.
	var r cli.Runner = &cli.ShellRunner{Command: c.Runner(1).Command}
	if os.Getenv("SUBVOLKIT_BENCH_RUNNER") == "exec" {
		r = c.Runner(1)
	}
	bk, err := cli.Open(context.Background(), &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: r,
		MountDir: filepath.Join(c.BaseDir(), "bench-mnt"),
	})
	if err != nil {
		b.Fatal(err)
	}
	return bk
}
