package cli_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// BenchmarkWarmAllocate compares Allocate from a warm class with the normal
// (cold) path, interleaved on the same volume:
//
//   - ms/warm-allocate and ms/cold-allocate: the median of 20 single
//     Allocates each, one at a time, in pairs (cold, then warm; the stock
//     refills between pairs, untimed, so that no refill's quota call
//     meets a timed one). Each timed call starts once glusterd's aux mount
//     of the quota call before it has exited (untimed, ms/settle is the
//     median wait): on this one machine its teardown would otherwise land
//     on the next call, which a client on another machine than the
//     cluster does not see;
//
//   - burst-warm-ms and burst-cold-ms: a burst of N Allocates (100, or
//     $SUBVOLKIT_BENCH_BURST) from 16 callers, the normal way and then
//     from a full warm stock of N, and burst-speedup (cold over warm, > 1
//     is faster).
//
//     CI=true go test -run=NONE -bench=WarmAllocate -benchtime=1x ./backend/cli/
func BenchmarkWarmAllocate(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("SUBVOLKIT_BENCH_BURST")); err == nil && v > 0 {
		n = v
	}
	const single = 20
	e := sharedBench(b)
	ctx := context.Background()
	// Sizes of this benchmark only, so that no other warm stock is used.
	warmSize, coldSize := quota.GiB+4096, quota.GiB+8192
	var made []string
	b.Cleanup(func() {
		_ = e.pool.SetWarm(nil)
		for _, nm := range made {
			_ = e.pool.Delete(context.Background(), nm, nil)
		}
		_, _ = e.pool.DrainWarm(context.Background())
	})
	alloc := func(name string, size int64) time.Duration {
		t0 := time.Now()
		if _, err := e.pool.Allocate(ctx, name, size, nil); err != nil {
			b.Fatalf("Allocate %s: %v", name, err)
		}
		made = append(made, name)
		return time.Since(t0)
	}
	burst := func(size int64) time.Duration {
		names := make([]string, n)
		for i := range names {
			names[i] = e.name("burst")
		}
		made = append(made, names...)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		next := make(chan string, n)
		for _, nm := range names {
			next <- nm
		}
		close(next)
		t0 := time.Now()
		for range 16 {
			wg.Go(func() {
				for nm := range next {
					if _, err := e.pool.Allocate(ctx, nm, size, nil); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		d := time.Since(t0)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return d
	}
	waitWarm := func(count int) {
		if err := e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: warmSize, Count: count}}); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := e.pool.WaitWarm(wctx); err != nil {
			b.Fatal(err)
		}
	}

	var warmMs, coldMs, settleMs []float64
	// settle waits (untimed) until glusterd's aux mount of the last quota
	// call has exited: see glustertest.Cluster.WaitAuxMounts.
	settle := func() {
		b.StopTimer()
		defer b.StartTimer()
		t0 := time.Now()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := e.c.WaitAuxMounts(sctx); err != nil {
			b.Fatal(err)
		}
		settleMs = append(settleMs, ms(time.Since(t0)))
	}
	var burstWarm, burstCold time.Duration
	var taken0 uint64
	b.ResetTimer()
	for range b.N {
		for range single {
			b.StopTimer()
			waitWarm(single)
			b.StartTimer()
			settle()
			coldMs = append(coldMs, ms(alloc(e.name("cold"), coldSize)))
			settle()
			warmMs = append(warmMs, ms(alloc(e.name("warm"), warmSize)))
		}
		b.StopTimer()
		waitWarm(n)
		taken0 = e.pool.WarmStatus()[0].Taken
		b.StartTimer()
		// Cold first: the stock is full, so no refill runs meanwhile.
		burstCold += burst(coldSize)
		burstWarm += burst(warmSize)
	}
	b.StopTimer()
	st := e.pool.WarmStatus()[0]
	if got := st.Taken - taken0; got < uint64(n) {
		b.Fatalf("the warm burst took %d warm subvolumes of %d (missed %d)", got, n, st.Missed)
	}
	b.ReportMetric(median(warmMs), "ms/warm-allocate")
	b.ReportMetric(median(settleMs), "ms/settle")
	b.ReportMetric(median(coldMs), "ms/cold-allocate")
	b.ReportMetric(float64(burstWarm.Milliseconds())/float64(b.N), "burst-warm-ms")
	b.ReportMetric(float64(burstCold.Milliseconds())/float64(b.N), "burst-cold-ms")
	b.ReportMetric(float64(burstCold)/float64(burstWarm), "burst-speedup")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
