package cli_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// BenchmarkListUsage2000 measures the read side at scale: with N
// subvolumes (2 000, or $SUBVOLKIT_BENCH_LIST_N) on the volume it reports,
// measured interleaved in one loop so that the machine's load hits all
// alike: list-vs-readdir, a names-only List (Pool.ListPage with NamesOnly,
// all pages) over an os.ReadDir of the volume's root (lower is better, 1 is
// ReadDir's speed; goal at most 1.5); list-details-vs-readdir, Pool.List
// (sizes, owners, labels) over ReadDir; usage2000-ms, Pool.ListPage with
// WithUsage of all N (details, limits and usage: the bulk path; the name
// stays usage2000-ms whatever N is), next to its baseline
// quota-list-xml-ms, one `gluster volume quota VOL list --xml` through the
// cluster's runner, and usage-one-by-one-ms, Pool.Usage of every subvolume
// in sequence; usage-vs-quota-list is the bulk path over the baseline
// (goal at most 0.5). usage-first-ms is the first List with usage, before
// the loop: it also makes the backend's list mount.
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

	// listAll pages through Pool.ListPage with opts and returns the count.
	listAll := func(opts subvol.ListOptions) int {
		count := 0
		for {
			page, err := e.pool.ListPage(ctx, &opts)
			if err != nil {
				b.Fatalf("ListPage(%+v): %v", opts, err)
			}
			for _, sv := range page.Subvols {
				if opts.WithUsage && sv.Usage == nil {
					b.Fatalf("ListPage with usage: %s has none", sv.Name)
				}
			}
			count += len(page.Subvols)
			if page.NextPageToken == "" {
				return count
			}
			opts.PageToken = page.NextPageToken
		}
	}
	var tNames, tDetails, tReadDir, tUsage, tQuotaList, tOneByOne, tBackend time.Duration
	timed := func(acc *time.Duration, f func()) {
		start := time.Now()
		f()
		*acc += time.Since(start)
	}
	steps := []func(){
		func() {
			timed(&tReadDir, func() {
				ents, err := os.ReadDir(e.root)
				if err != nil || len(ents) < n {
					b.Fatalf("ReadDir: %d entries, %v", len(ents), err)
				}
			})
		},
		func() {
			timed(&tNames, func() {
				if got := listAll(subvol.ListOptions{NamesOnly: true}); got < n {
					b.Fatalf("names-only List: %d subvolumes", got)
				}
			})
		},
		func() {
			timed(&tDetails, func() {
				subs, err := e.pool.List(ctx)
				if err != nil || len(subs) < n {
					b.Fatalf("List: %d subvolumes, %v", len(subs), err)
				}
			})
		},
		func() {
			timed(&tUsage, func() {
				if got := listAll(subvol.ListOptions{WithUsage: true}); got < n {
					b.Fatalf("List with usage: %d subvolumes", got)
				}
			})
		},
		func() {
			// Timed by rawQuota: a busy volume lock is retried untimed.
			d, err := e.rawQuota(ctx, "list", "--xml")
			if err != nil {
				b.Fatalf("quota list: %v", err)
			}
			tQuotaList += d
		},
	}
	// The first List with usage makes the list mount (once per Backend):
	// timed apart, as usage-first-ms, so the loop measures the steady state.
	var tFirst time.Duration
	timed(&tFirst, func() {
		if got := listAll(subvol.ListOptions{WithUsage: true}); got < n {
			b.Fatalf("first List with usage: %d subvolumes", got)
		}
	})
	b.ResetTimer()
	for i := range b.N {
		// Rotate the order each iteration; ReadDir runs next to each list.
		for j := range steps {
			steps[(i+j)%len(steps)]()
		}
		// The backend's bulk path alone (no Pool fallback for entries it
		// left without usage): how many it could not read.
		timed(&tBackend, func() {
			page, err := e.bk.List(ctx, &backend.ListOptions{WithUsage: true})
			if err != nil {
				b.Fatalf("backend List with usage: %v", err)
			}
			missing := 0
			for _, sv := range page.Subvols {
				if sv.Usage == nil {
					missing++
				}
			}
			b.ReportMetric(float64(missing), "backend-usage-missing")
		})
		timed(&tOneByOne, func() {
			for _, nm := range names {
				if _, err := e.pool.Usage(ctx, nm); err != nil {
					b.Fatalf("Usage %s: %v", nm, err)
				}
			}
		})
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(float64(tNames)/float64(tReadDir), "list-vs-readdir")
	b.ReportMetric(float64(tDetails)/float64(tReadDir), "list-details-vs-readdir")
	b.ReportMetric(per(tReadDir), "readdir-ms")
	b.ReportMetric(per(tNames), "list-names-ms")
	b.ReportMetric(per(tDetails), "list-details-ms")
	b.ReportMetric(per(tUsage), "usage2000-ms")
	b.ReportMetric(float64(tFirst)/1e6, "usage-first-ms")
	b.ReportMetric(per(tQuotaList), "quota-list-xml-ms")
	b.ReportMetric(float64(tUsage)/float64(tQuotaList), "usage-vs-quota-list")
	b.ReportMetric(per(tOneByOne), "usage-one-by-one-ms")
	b.ReportMetric(per(tBackend), "usage-backend-ms")
	b.ReportMetric(float64(n), "subvolumes")
}
