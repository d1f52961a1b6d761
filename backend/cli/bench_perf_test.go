package cli_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/quota"
)

// BenchmarkListUsage2000 measures the read side at scale (measurement only):
// with N subvolumes (2 000, or $SUBVOLKIT_BENCH_LIST_N) on the volume, it
// reports list-vs-readdir (Pool.List time over os.ReadDir of the volume
// root, interleaved in one loop; lower is better, 1 is ReadDir's speed) and
// usage<N>-ms (Pool.Usage of every subvolume, one call each, in sequence).
//
//	CI=true go test -run=NONE -bench=ListUsage2000 -benchtime=1x ./backend/cli/
func BenchmarkListUsage2000(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("SUBVOLKIT_BENCH_LIST_N")); err == nil && v > 0 {
		n = v
	}
	e := sharedBench(b)
	ctx := context.Background()
	names := make([]string, n)
	for i := range names {
		names[i] = e.name("lst")
	}
	// Fill with 4 callers; glusterd serializes limit-usage anyway.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if _, err := e.pool.Allocate(ctx, names[i], quota.GiB, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, nm := range names {
			_ = e.pool.Delete(context.Background(), nm, nil)
		}
	})

	var tList, tReadDir, tUsage time.Duration
	b.ResetTimer()
	for i := range b.N {
		list := func() {
			start := time.Now()
			subs, err := e.pool.List(ctx)
			tList += time.Since(start)
			if err != nil || len(subs) < n {
				b.Fatalf("List: %d subvolumes, %v", len(subs), err)
			}
		}
		readDir := func() {
			start := time.Now()
			ents, err := os.ReadDir(e.root)
			tReadDir += time.Since(start)
			if err != nil || len(ents) < n {
				b.Fatalf("ReadDir: %d entries, %v", len(ents), err)
			}
		}
		if i%2 == 0 {
			list()
			readDir()
		} else {
			readDir()
			list()
		}
		start := time.Now()
		for _, nm := range names {
			if _, err := e.pool.Usage(ctx, nm); err != nil {
				b.Fatalf("Usage %s: %v", nm, err)
			}
		}
		tUsage += time.Since(start)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(float64(tList)/float64(tReadDir), "list-vs-readdir")
	b.ReportMetric(per(tList), "list-ms")
	b.ReportMetric(per(tReadDir), "readdir-ms")
	b.ReportMetric(per(tUsage), "usage"+strconv.Itoa(n)+"-ms")
}
