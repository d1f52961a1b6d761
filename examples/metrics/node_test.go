package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
)

// fuseClientOf returns the pid of the glusterfs process serving mountpoint
// (its last argument).
func fuseClientOf(t *testing.T, mountpoint string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmd, "\x00"), []byte{0})
		if filepath.Base(string(args[0])) == "glusterfs" && string(args[len(args)-1]) == mountpoint {
			return pid
		}
	}
	t.Fatalf("no glusterfs client serves %s", mountpoint)
	return 0
}

func gauge(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(series) + ` (\S+)`).FindStringSubmatch(text)
	require.NotNil(t, m, "no %s in\n%s", series, text)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// TestNodeMetricsOnRealGlusterFS mounts a real volume, checks that its
// client is counted, kills it and checks that the mount is reported stale.
func TestNodeMetricsOnRealGlusterFS(t *testing.T) {
	glustertest.RequirePrereqs(t)
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	m := New(&Options{Backend: "cli"})
	before := scrape(t, m.Handler())
	fuseBefore := gauge(t, before, `subvolkit_node_glusterfs_processes{role="fuse"}`)
	staleBefore := gauge(t, before, `subvolkit_node_glusterfs_mounts{state="stale"}`)

	mnt := c.MountT(t, "")
	text := scrape(t, m.Handler())
	assert.Equal(t, fuseBefore+1, gauge(t, text, `subvolkit_node_glusterfs_processes{role="fuse"}`))
	assert.Greater(t, gauge(t, text, `subvolkit_node_glusterfs_resident_memory_bytes{role="fuse"}`), float64(1<<20))
	assert.GreaterOrEqual(t, gauge(t, text, `subvolkit_node_glusterfs_mounts{state="ok"}`), 1.0)

	pid := fuseClientOf(t, mnt)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		text := scrape(t, m.Handler())
		return gauge(t, text, `subvolkit_node_glusterfs_mounts{state="stale"}`) == staleBefore+1 &&
			gauge(t, text, `subvolkit_node_glusterfs_processes{role="fuse"}`) == fuseBefore
	}, 10*time.Second, 50*time.Millisecond, "the dead client's mount is counted as stale")
}
