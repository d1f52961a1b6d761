package mount

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/glustertest"
)

// BenchmarkMountMemory compares N deep mounts with one shared mount and N
// binds (N = 1, 10, 20) on a real one-node GlusterFS volume: the resident
// memory of the glusterfs clients (sum of VmRSS, after a 64 KiB write and
// read through every target) and the latency of each publish. Run with
//
//	go test -bench=MountMemory -run=NONE ./mount/
//
// It prints a side-by-side table at the end. ns/op is one whole cycle
// (publish N, unpublish N) and means little; the custom metrics are the
// figures.
func BenchmarkMountMemory(b *testing.B) {
	c := glustertest.StartT(b, nil)
	root := c.MountT(b, "")
	const maxN = 20
	for i := range maxN {
		mkdirs(b, root, fmt.Sprintf("b%02d", i))
	}
	type result struct {
		rssMiB         float64
		procs          int
		first, median  time.Duration // first publish, median of the others
		unpublishTotal time.Duration
	}
	results := map[string]result{}
	ns := []int{1, 10, 20}
	for _, n := range ns {
		for _, mode := range []Mode{ModeDeep, ModeShared} {
			name := fmt.Sprintf("%s/N=%d", mode, n)
			b.Run(name, func(b *testing.B) {
				env := newRealEnv(b, mode, &Options{Logger: slog.New(slog.DiscardHandler)})
				ctx := b.Context()
				var firsts, rest, unpub []time.Duration
				var rss float64
				var procs int
				for b.Loop() {
					for i := range n {
						sv := clusterSubvol(c, fmt.Sprintf("/b%02d", i))
						t0 := time.Now()
						if err := env.m.Publish(ctx, sv, env.target(strconv.Itoa(i)), nil); err != nil {
							b.Fatal(err)
						}
						if d := time.Since(t0); i == 0 {
							firsts = append(firsts, d)
						} else {
							rest = append(rest, d)
						}
					}
					b.StopTimer()
					for i := range n {
						writeRead(b, env.target(strconv.Itoa(i)), "", "bench")
					}
					pids := fuseClients(c.Volume(), c.Servers()[0], env.logDir)
					procs, rss = len(pids), 0
					for _, pid := range pids {
						rss += vmRSSMiB(pid)
					}
					b.StartTimer()
					t0 := time.Now()
					for i := range n {
						if err := env.m.Unpublish(ctx, env.target(strconv.Itoa(i))); err != nil {
							b.Fatal(err)
						}
					}
					unpub = append(unpub, time.Since(t0))
					b.StopTimer()
					waitFor(b, 20*time.Second, "clients to exit", func() bool {
						return len(fuseClients(c.Volume(), c.Servers()[0], env.logDir)) == 0
					})
					b.StartTimer()
				}
				r := result{rssMiB: rss, procs: procs, first: median(firsts), median: median(rest), unpublishTotal: median(unpub)}
				results[name] = r
				b.ReportMetric(r.rssMiB, "MiB-rss")
				b.ReportMetric(float64(r.procs), "fuse-procs")
				b.ReportMetric(float64(r.first.Microseconds())/1000, "ms/first-publish")
				if n > 1 {
					b.ReportMetric(float64(r.median.Microseconds())/1000, "ms/next-publish")
				}
				b.ReportMetric(float64(r.unpublishTotal.Microseconds())/1000, "ms/unpublish-all")
			})
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-5s | %-34s | %-34s\n", "N", "deep: RSS, procs, 1st / next publish", "shared: RSS, procs, 1st / next publish")
	for _, n := range ns {
		d, s := results[fmt.Sprintf("deep/N=%d", n)], results[fmt.Sprintf("shared/N=%d", n)]
		cell := func(r result) string {
			next := "-"
			if n > 1 {
				next = fmt.Sprintf("%.1f ms", float64(r.median.Microseconds())/1000)
			}
			return fmt.Sprintf("%6.1f MiB, %2d, %5.1f ms / %s", r.rssMiB, r.procs, float64(r.first.Microseconds())/1000, next)
		}
		fmt.Fprintf(&sb, "%-5d | %-34s | %-34s\n", n, cell(d), cell(s))
	}
	// Printed, not logged: a parent benchmark's log is not shown.
	fmt.Print(sb.String())
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// vmRSSMiB returns the resident set of pid in MiB (0 if it is gone).
func vmRSSMiB(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
