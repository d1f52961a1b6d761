package fsutil_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// BenchmarkCloneVsCp compares CopyTree (with backend/cli's options) with
// `cp -a` on one real GlusterFS mount, interleaved in one loop so both see
// the same load: clone-vs-cp-small (1 000 files of 4 KiB) and
// clone-vs-cp-big (one 200 MiB file, or $SUBVOLKIT_BENCH_BIG_MIB) report
// cp's time over ours (> 1 means CopyTree is faster), over 3 and 4 rounds
// (or $SUBVOLKIT_BENCH_ROUNDS).
//
//	CI=true go test -run=NONE -bench=CloneVsCp -benchtime=1x ./internal/fsutil/
func BenchmarkCloneVsCp(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	c := glustertest.StartT(b, nil)
	mnt := c.MountT(b, "")
	small := filepath.Join(mnt, "src-small")
	require.NoError(b, os.Mkdir(small, 0o755))
	buf := make([]byte, 4096)
	for i := range 1000 {
		_, _ = rand.Read(buf)
		require.NoError(b, os.WriteFile(filepath.Join(small, fmt.Sprintf("f%04d", i)), buf, 0o644))
	}
	big := filepath.Join(mnt, "src-big")
	require.NoError(b, os.Mkdir(big, 0o755))
	f, err := os.Create(filepath.Join(big, "big"))
	require.NoError(b, err)
	chunk := make([]byte, 1<<20)
	for range envInt("SUBVOLKIT_BENCH_BIG_MIB", 200) {
		_, _ = rand.Read(chunk)
		_, err := f.Write(chunk)
		require.NoError(b, err)
	}
	require.NoError(b, f.Close())

	b.Run("small", func(b *testing.B) {
		benchCloneVsCp(b, mnt, small, "clone-vs-cp-small", envInt("SUBVOLKIT_BENCH_ROUNDS", 3))
	})
	b.Run("big", func(b *testing.B) {
		benchCloneVsCp(b, mnt, big, "clone-vs-cp-big", envInt("SUBVOLKIT_BENCH_ROUNDS", 4))
	})
}

// envInt reads a positive integer from the environment, or returns def:
// CI runs the benchmark with small values so that it cannot rot.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchCloneVsCp(b *testing.B, mnt, src, metric string, rounds int) {
	var ours, cp time.Duration
	n := 0
	copyOurs := func(dst string) {
		opts := fullOpts
		start := time.Now()
		require.NoError(b, fsutil.CopyTree(context.Background(), src, dst, &opts))
		ours += time.Since(start)
	}
	copyCp := func(dst string) {
		start := time.Now()
		out, err := exec.Command("cp", "-a", src+"/.", dst+"/").CombinedOutput()
		require.NoError(b, err, "%s", out)
		cp += time.Since(start)
	}
	b.ResetTimer()
	for i := range b.N {
		for r := range rounds {
			// Alternate which goes first, so neither always gets the warm cache.
			d1 := filepath.Join(mnt, fmt.Sprintf("dst-%s-%d-%d-a", metric, i, r))
			d2 := filepath.Join(mnt, fmt.Sprintf("dst-%s-%d-%d-b", metric, i, r))
			require.NoError(b, os.Mkdir(d1, 0o755))
			require.NoError(b, os.Mkdir(d2, 0o755))
			if r%2 == 0 {
				copyOurs(d1)
				copyCp(d2)
			} else {
				copyCp(d2)
				copyOurs(d1)
			}
			n++
			b.StopTimer()
			require.NoError(b, os.RemoveAll(d1))
			require.NoError(b, os.RemoveAll(d2))
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(cp)/float64(ours), metric)
	b.ReportMetric(float64(ours.Milliseconds())/float64(n), "ms/clone")
	b.ReportMetric(float64(cp.Milliseconds())/float64(n), "ms/cp-a")
}
