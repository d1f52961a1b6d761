package metrics

import (
	"bytes"
	"context"
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
	"github.com/subvolkit/subvolkit/mount"
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

// stateOf returns the state NodeMounts reports for mountpoint.
func stateOf(t *testing.T, mountpoint string) mount.MountState {
	t.Helper()
	ms, err := mount.NodeMounts(context.Background(), time.Second)
	require.NoError(t, err)
	for _, m := range ms {
		if m.MountPoint == mountpoint {
			return m.State
		}
	}
	return ""
}

// TestNodeMetricsOnRealGlusterFS mounts a real volume, checks that its
// client is counted as a FUSE client and its mount as ok, kills it and
// checks that the mount is reported stale. (Other tests may mount and
// unmount on this machine at the same time: the checks are about this
// mount, and lower bounds on the node-wide gauges.)
func TestNodeMetricsOnRealGlusterFS(t *testing.T) {
	glustertest.RequirePrereqs(t)
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	m := New(&Options{Backend: "cli"})

	mnt := c.MountT(t, "")
	pid := fuseClientOf(t, mnt)
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	require.NoError(t, err)
	assert.True(t, isFUSEClient(bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})), "%q", cmdline)
	assert.Equal(t, mount.MountOK, stateOf(t, mnt))
	text := scrape(t, m.Handler())
	assert.GreaterOrEqual(t, gauge(t, text, `subvolkit_node_glusterfs_processes{role="fuse"}`), 1.0)
	assert.Greater(t, gauge(t, text, `subvolkit_node_glusterfs_resident_memory_bytes{role="fuse"}`), float64(1<<20))
	assert.GreaterOrEqual(t, gauge(t, text, `subvolkit_node_glusterfs_mounts{state="ok"}`), 1.0)

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return stateOf(t, mnt) == mount.MountStale },
		10*time.Second, 50*time.Millisecond, "the dead client's mount is stale")
	text = scrape(t, m.Handler())
	assert.GreaterOrEqual(t, gauge(t, text, `subvolkit_node_glusterfs_mounts{state="stale"}`), 1.0)
}
