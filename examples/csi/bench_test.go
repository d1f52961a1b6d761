package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/subvol"
)

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rssKiB is the resident memory of a process, from /proc/<pid>/status.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkCSI measures, side by side on one real GlusterFS volume:
// CreateVolume against Pool.Allocate on the same volume (interleaved, b.N
// pairs; createvolume-vs-allocate is the ratio of their medians), then
// NodeStageVolume of further volumes of an already mounted Gluster volume
// (ms/stage), NodePublishVolume of a staged volume (ms/publish), and the
// memory of the node side with 50 volumes staged (one glusterfs client:
// fuse-MiB, fuse-processes; the plugin's own Go heap is in-process here).
//
//	CI=true go test -run=NONE -bench=BenchmarkCSI -benchtime=20x ./csi/
func BenchmarkCSI(b *testing.B) {
	c := startCluster(b)
	e := newEnv(b, c, envOptions{})
	ctx := context.Background()
	dir := b.TempDir()
	if err := cli.Prepare(ctx, c.Runner(1), c.Volume(), &cli.PrepareOptions{StrictQuota: true}); err != nil {
		b.Fatal(err)
	}
	raw, err := cli.Open(ctx, &cli.Options{Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(dir, "mnt")})
	if err != nil {
		b.Fatal(err)
	}
	pool := subvol.NewPool(raw, nil)
	b.Cleanup(func() { pool.Close() })
	const size = 16 << 20
	var create, alloc []time.Duration
	var vols []*csi.Volume
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-alloc-%d", i)
		start := time.Now()
		if _, err := pool.Allocate(ctx, name, size, nil); err != nil {
			b.Fatalf("Allocate: %v", err)
		}
		alloc = append(alloc, time.Since(start))
		start = time.Now()
		v := e.create(b, fmt.Sprintf("bench-create-%d", i), size)
		create = append(create, time.Since(start))
		vols = append(vols, v)
	}
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		_ = pool.Delete(ctx, fmt.Sprintf("bench-alloc-%d", i), nil)
	}
	// 50 volumes staged; the first stage mounts the Gluster volume.
	for i := len(vols); i < 50; i++ {
		vols = append(vols, e.create(b, fmt.Sprintf("bench-create-%d", i), size))
	}
	var stage, publish []time.Duration
	var stages []string
	for i, v := range vols {
		start := time.Now()
		stages = append(stages, e.stage(b, v))
		if i > 0 {
			stage = append(stage, time.Since(start))
		}
	}
	for i, v := range vols {
		start := time.Now()
		p := e.publish(b, v, stages[i], "bench-pod", false)
		publish = append(publish, time.Since(start))
		if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	procs := glusterfsClients(b, e.state)
	rss := rssKiB(sharedClientPID(b, e.state))
	ratio := float64(p50(create)) / float64(p50(alloc))
	b.ReportMetric(ratio, "createvolume-vs-allocate")
	b.ReportMetric(ms(p50(create)), "ms/createvolume")
	b.ReportMetric(ms(p50(alloc)), "ms/allocate")
	b.ReportMetric(ms(p50(stage)), "ms/stage")
	b.ReportMetric(ms(p50(publish)), "ms/publish")
	b.ReportMetric(float64(rss)/1024, "fuse-MiB")
	b.ReportMetric(float64(procs), "fuse-processes")
	b.ReportMetric(0, "ns/op")
	b.Logf("p50: CreateVolume %.1f ms vs Pool.Allocate %.1f ms (%.2fx); NodeStageVolume %.1f ms; NodePublishVolume %.1f ms; %d volumes staged: %d glusterfs process(es), %.1f MiB RSS",
		ms(p50(create)), ms(p50(alloc)), ratio, ms(p50(stage)), ms(p50(publish)), len(vols), procs, float64(rss)/1024)
}
