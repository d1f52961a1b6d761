package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// makeFiles writes n small files (1 KiB) under dir, 100 per subdirectory,
// with 8 writers.
func makeFiles(b *testing.B, dir string, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 1024)
			for i := w; i < n; i += 8 {
				d := filepath.Join(dir, strconv.Itoa(i/100))
				if err := os.MkdirAll(d, 0o755); err != nil {
					errs <- err
					return
				}
				if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), buf, 0o644); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func benchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("SUBVOLKIT_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 20000
}

// BenchmarkDeleteBigTree compares, for a subvolume of 20 000 files
// (SUBVOLKIT_BENCH_FILES), the return time of the old delete (quota remove,
// rename, RemoveAll inline: what Delete did before the trash) with
// Delete's now (a rename into the trash), and reports the background
// purge's throughput.
//
//	go test -run=NONE -bench=DeleteBigTree -benchtime=1x ./backend/cli/
func BenchmarkDeleteBigTree(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	var bk *cli.Backend
	if !e.pool.As(&bk) {
		b.Fatal("not a cli backend")
	}
	n := benchFiles()
	var oldT, newT, purgeT time.Duration
	for range b.N {
		// Before: inline, the old way.
		name := e.name("bigold")
		if _, err := e.pool.Allocate(ctx, name, quota.GiB, nil); err != nil {
			b.Fatal(err)
		}
		makeFiles(b, filepath.Join(e.root, name), n)
		// The background purge of earlier runs may hold the volume lock
		// for a moment: rawQuota retries, timing only the call that works.
		removeT, err := e.rawQuota(ctx, "remove", "/"+name)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now().Add(-removeT)
		tmp := filepath.Join(e.root, ".subvolkit", "bench-old-"+name)
		if err := os.Rename(filepath.Join(e.root, name), tmp); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			b.Fatal(err)
		}
		oldT += time.Since(t0)

		// After: Delete returns after the rename; the purge follows.
		name = e.name("bignew")
		if _, err := e.pool.Allocate(ctx, name, quota.GiB, nil); err != nil {
			b.Fatal(err)
		}
		makeFiles(b, filepath.Join(e.root, name), n)
		time.Sleep(6 * time.Second) // past the purge's busy age: nothing is held back
		t0 = time.Now()
		if err := e.pool.Delete(ctx, name, &subvol.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		newT += time.Since(t0)
		t1 := time.Now()
		for {
			st, err := bk.Purge(ctx)
			if err == nil && st.Pending == 0 {
				break
			}
			if time.Since(t1) > 10*time.Minute {
				b.Fatalf("purge did not finish: %+v %v", st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		purgeT += time.Since(t1)
	}
	b.ReportMetric(float64(oldT.Milliseconds())/float64(b.N), "old-delete-ms")
	b.ReportMetric(float64(newT.Milliseconds())/float64(b.N), "delete-ms")
	b.ReportMetric(float64(n*b.N)/purgeT.Seconds(), "purge-files/s")
	b.Logf("%d files: old delete %v, delete %v, purge %v (%.0f files/s)", n, oldT/time.Duration(b.N),
		newT/time.Duration(b.N), purgeT/time.Duration(b.N), float64(n*b.N)/purgeT.Seconds())
}

// BenchmarkReconcile reports the time of a dry-run and a repairing Reconcile
// over 2 000 subvolumes (SUBVOLKIT_BENCH_SUBVOLS).
//
//	go test -run=NONE -bench=Reconcile -benchtime=1x ./backend/cli/
func BenchmarkReconcile(b *testing.B) {
	e := sharedBench(b)
	ctx := context.Background()
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("SUBVOLKIT_BENCH_SUBVOLS")); err == nil && v > 0 {
		n = v
	}
	have, err := e.pool.List(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := len(have); i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := e.pool.Allocate(ctx, fmt.Sprintf("rec-%05d", i), quota.MiB, nil); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	b.ResetTimer()
	var dry, fix time.Duration
	for range b.N {
		t0 := time.Now()
		if _, err := e.pool.Reconcile(ctx, nil); err != nil {
			b.Fatal(err)
		}
		dry += time.Since(t0)
		t0 = time.Now()
		if _, err := e.pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true}); err != nil {
			b.Fatal(err)
		}
		fix += time.Since(t0)
	}
	b.ReportMetric(float64(dry.Milliseconds())/float64(b.N), "dryrun-ms")
	b.ReportMetric(float64(fix.Milliseconds())/float64(b.N), "repair-ms")
	b.Logf("reconcile over %d subvolumes: dry run %v, repair %v", n, dry/time.Duration(b.N), fix/time.Duration(b.N))
}
