package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	pool *subvol.Pool
	root string
	seq  atomic.Int64
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
)

// sharedBench starts one cluster for all benchmarks of this run.
func sharedBench(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		c, err := glustertest.Start(context.Background(), &glustertest.Options{Nodes: 1})
		if err != nil {
			b.Fatalf("start gluster: %v", err)
		}
		bk := openBackendB(b, c)
		root, err := c.Mount(context.Background(), "")
		if err != nil {
			b.Fatal(err)
		}
		benchE = &benchEnv{c: c, pool: subvol.NewPool(bk, nil), root: root}
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

func (e *benchEnv) rawDelete(ctx context.Context, name string) error {
	out, errOut, err := e.c.Runner(1).Run(ctx, "--mode=script", "volume", "quota", e.c.Volume(), "remove", "/"+name)
	if err != nil {
		return fmt.Errorf("%v: %s %s", err, out, errOut)
	}
	return os.RemoveAll(filepath.Join(e.root, name))
}

// sideBySide runs raw and pool once each per iteration, alternating which
// goes first, and reports both means and their ratio, so that drift in the
// machine's load hits both alike.
func sideBySide(b *testing.B, raw, pool func(i int) error) {
	var tRaw, tPool time.Duration
	timed := func(f func(int) error, i int, acc *time.Duration) {
		start := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		*acc += time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			timed(raw, i, &tRaw)
			timed(pool, i, &tPool)
		} else {
			timed(pool, i, &tPool)
			timed(raw, i, &tRaw)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(tRaw), "raw-ms/op")
	b.ReportMetric(ms(tPool), "pool-ms/op")
	b.ReportMetric(float64(tPool)/float64(tRaw), "pool-vs-raw")
}

// BenchmarkAllocate: mkdir + limit-usage by hand versus Pool.Allocate
// (marker, ownership, limit, read-back, cluster-wide name lock).
func BenchmarkAllocate(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	var raw, pool []string
	sideBySide(b, func(int) error {
		n := e.name("rawa")
		raw = append(raw, n)
		return e.rawAllocate(ctx, n)
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
		if err := e.rawAllocate(ctx, raw[i]); err != nil {
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
	sideBySide(b, func(i int) error { return e.rawDelete(ctx, raw[i]) },
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
	bk, err := cli.Open(context.Background(), &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(c.BaseDir(), "bench-mnt"),
	})
	if err != nil {
		b.Fatal(err)
	}
	return bk
}
