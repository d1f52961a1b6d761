package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/internal/testutil/glustertest"
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

func BenchmarkAllocate(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	b.Run("raw-cli", func(b *testing.B) {
		names := make([]string, 0, b.N)
		for i := 0; i < b.N; i++ {
			n := e.name("rawa")
			if err := e.rawAllocate(ctx, n); err != nil {
				b.Fatal(err)
			}
			names = append(names, n)
		}
		b.StopTimer()
		for _, n := range names {
			_ = e.rawDelete(ctx, n)
		}
	})
	b.Run("pool", func(b *testing.B) {
		names := make([]string, 0, b.N)
		for i := 0; i < b.N; i++ {
			n := e.name("poola")
			if _, err := e.pool.Allocate(ctx, n, quota.GiB, nil); err != nil {
				b.Fatal(err)
			}
			names = append(names, n)
		}
		b.StopTimer()
		for _, n := range names {
			_ = e.pool.Delete(ctx, n, nil)
		}
	})
}

func BenchmarkDelete(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	b.Run("raw-cli", func(b *testing.B) {
		b.StopTimer()
		names := make([]string, b.N)
		for i := range names {
			names[i] = e.name("rawd")
			if err := e.rawAllocate(ctx, names[i]); err != nil {
				b.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(e.root, names[i], "f"), []byte("x"), 0o644)
		}
		b.StartTimer()
		for _, n := range names {
			if err := e.rawDelete(ctx, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pool", func(b *testing.B) {
		b.StopTimer()
		names := make([]string, b.N)
		for i := range names {
			names[i] = e.name("poold")
			if _, err := e.pool.Allocate(ctx, names[i], quota.GiB, nil); err != nil {
				b.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(e.root, names[i], "f"), []byte("x"), 0o644)
		}
		b.StartTimer()
		for _, n := range names {
			if err := e.pool.Delete(ctx, n, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
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
	bk, err := cli.Open(context.Background(), &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(c.BaseDir(), "bench-mnt"), StrictQuota: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	return bk
}
