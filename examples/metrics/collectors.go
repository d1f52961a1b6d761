package metrics

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/subvolkit/subvolkit/mount"
)

// usageCollector serves the last refresh's per-subvolume gauges: a scrape
// reads memory only, whatever the backend costs.
type usageCollector struct {
	limit, used, files           *prometheus.Desc
	count, refreshDur, refreshAt *prometheus.Desc
	skippedDesc                  *prometheus.Desc
	mu                           sync.Mutex
	rows                         []usageRow
	total, skipped               int
	dur                          time.Duration
	at                           time.Time
}

func newUsageCollector(cl prometheus.Labels) *usageCollector {
	sv := []string{"volume", "subvolume"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("subvolkit_"+name, help, labels, cl)
	}
	return &usageCollector{
		limit:       d("subvolume_limit_bytes", "Quota limit (size) of the subvolume, at the last refresh.", sv),
		used:        d("subvolume_used_bytes", "Bytes used in the subvolume, at the last refresh.", sv),
		files:       d("subvolume_files", "Files in the subvolume, at the last refresh.", sv),
		count:       d("subvolumes", "Subvolumes in the pool, at the last refresh.", nil),
		refreshDur:  d("usage_refresh_duration_seconds", "How long the last refresh of the per-subvolume gauges took.", nil),
		refreshAt:   d("usage_refresh_timestamp_seconds", "When the per-subvolume gauges were last refreshed (Unix time).", nil),
		skippedDesc: d("usage_subvolumes_skipped", "Subvolumes left out of the per-subvolume gauges by MaxSubvolumes.", nil),
	}
}

func (c *usageCollector) set(rows []usageRow, total, skipped int, dur time.Duration, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows, c.total, c.skipped, c.dur, c.at = rows, total, skipped, dur, at
}

// Describe implements prometheus.Collector.
func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limit, c.used, c.files, c.count, c.refreshDur, c.refreshAt, c.skippedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rows, total, skipped, dur, at := c.rows, c.total, c.skipped, c.dur, c.at
	c.mu.Unlock()
	if at.IsZero() {
		return // not refreshed yet: no values rather than wrong ones
	}
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(c.count, g, float64(total))
	ch <- prometheus.MustNewConstMetric(c.skippedDesc, g, float64(skipped))
	ch <- prometheus.MustNewConstMetric(c.refreshDur, g, dur.Seconds())
	ch <- prometheus.MustNewConstMetric(c.refreshAt, g, float64(at.UnixNano())/1e9)
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.limit, g, float64(r.limit), r.volume, r.name)
		if r.used >= 0 {
			ch <- prometheus.MustNewConstMetric(c.used, g, float64(r.used), r.volume, r.name)
		}
		if r.files >= 0 {
			ch <- prometheus.MustNewConstMetric(c.files, g, float64(r.files), r.volume, r.name)
		}
	}
}

// nodeCollector reports the node's glusterfs client processes and GlusterFS
// mounts at scrape time: a walk of /proc and one statfs per mount, in
// parallel, each bounded by timeout.
type nodeCollector struct {
	procs, rss, mounts *prometheus.Desc
	timeout            time.Duration
	procDir            string
	nodeMounts         func(ctx context.Context, timeout time.Duration) ([]mount.NodeMount, error)
}

func newNodeCollector(timeout time.Duration) *nodeCollector {
	return &nodeCollector{
		procs: prometheus.NewDesc("subvolkit_node_glusterfs_processes",
			"glusterfs client processes on the node: role fuse serves a mount, daemon is any other (self-heal, quotad).", []string{"role"}, nil),
		rss: prometheus.NewDesc("subvolkit_node_glusterfs_resident_memory_bytes",
			"Resident memory of the node's glusterfs client processes.", []string{"role"}, nil),
		mounts: prometheus.NewDesc("subvolkit_node_glusterfs_mounts",
			"GlusterFS mounts (FUSE mounts and binds of them) in the node's mount table, by the state a statfs found.", []string{"state"}, nil),
		timeout:    timeout,
		procDir:    "/proc",
		nodeMounts: mount.NodeMounts,
	}
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.procs
	ch <- c.rss
	ch <- c.mounts
}

// Collect implements prometheus.Collector.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	g := prometheus.GaugeValue
	count, rss := glusterfsProcesses(c.procDir)
	for _, role := range []string{"fuse", "daemon"} {
		ch <- prometheus.MustNewConstMetric(c.procs, g, float64(count[role]), role)
		ch <- prometheus.MustNewConstMetric(c.rss, g, float64(rss[role]), role)
	}
	ms, err := c.nodeMounts(context.Background(), c.timeout)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.mounts, err)
		return
	}
	byState := map[mount.MountState]int{}
	for _, m := range ms {
		byState[m.State]++
	}
	for _, s := range []mount.MountState{mount.MountOK, mount.MountStale, mount.MountUnresponsive, mount.MountError} {
		ch <- prometheus.MustNewConstMetric(c.mounts, g, float64(byState[s]), string(s))
	}
}

// glusterfsProcesses counts the processes named glusterfs (the client
// binary; bricks are glusterfsd, the management daemon glusterd) and sums
// their resident memory, by role.
func glusterfsProcesses(procDir string) (count, rss map[string]int64) {
	count, rss = map[string]int64{}, map[string]int64{}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return count, rss
	}
	page := int64(os.Getpagesize())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(procDir, e.Name())
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || string(bytes.TrimSpace(comm)) != "glusterfs" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		role := "daemon"
		if isFUSEClient(bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})) {
			role = "fuse"
		}
		count[role]++
		if statm, err := os.ReadFile(filepath.Join(dir, "statm")); err == nil {
			if f := bytes.Fields(statm); len(f) > 1 {
				if n, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
					rss[role] += n * page
				}
			}
		}
	}
	return count, rss
}

// isFUSEClient tells a glusterfs process serving a mount (mount.glusterfs
// passes --process-name fuse; the cli backend's aux mount
// --process-name=fuse.subvolkit-quota) from the daemons (--process-name
// glustershd, quotad, ...).
func isFUSEClient(args [][]byte) bool {
	for i, a := range args {
		var v []byte
		switch {
		case bytes.Equal(a, []byte("--process-name")) && i+1 < len(args):
			v = args[i+1]
		case bytes.HasPrefix(a, []byte("--process-name=")):
			v = a[len("--process-name="):]
		default:
			continue
		}
		return bytes.HasPrefix(v, []byte("fuse"))
	}
	return false
}
