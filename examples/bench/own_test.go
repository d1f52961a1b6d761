package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// cancelOn is stderr for run: it cancels the run a moment after a line
// containing marker was written, as a Ctrl-C would.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	after  time.Duration
	cancel context.CancelFunc
	fired  bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if !c.fired && strings.Contains(c.buf.String(), c.marker) {
		c.fired = true
		time.AfterFunc(c.after, c.cancel)
	}
	return len(p), nil
}

// TestBenchOwnVolumeCleansUp runs the command on an existing volume (as an
// administrator would: --volume, --servers and a gluster binary), stops it
// in the middle of the burst section like a Ctrl-C, and checks that it
// removed everything it made (directories, limits, warm subvolumes, the
// trash) and touched nothing else.
func TestBenchOwnVolumeCleansUp(t *testing.T) {
	glustertest.RequirePrereqs(t)
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "gluster")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter -t %d -m -n -- gluster --glusterd-sock=%s --log-file=%s \"$@\"\n",
		c.GlusterdPID(1), c.GlusterdSocket(1), filepath.Join(c.LogDir(1), "bench-cli.log"))
	require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
	ctx := context.Background()
	require.NoError(t, cli.Prepare(ctx, c.Runner(1), c.Volume(), nil))

	// The administrator's own subvolume, and a warm stock of their own.
	bk, err := cli.Open(ctx, &cli.Options{Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(dir, "own")})
	require.NoError(t, err)
	pool := subvol.NewPool(bk, nil)
	defer pool.Close()
	_, err = pool.Allocate(ctx, "mine", quota.GiB, nil)
	require.NoError(t, err)
	require.NoError(t, bk.Warm(ctx, quota.GiB))

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stderr := &cancelOn{marker: "section burst", after: 3 * time.Second, cancel: cancel}
	var stdout bytes.Buffer
	code := run(rctx, []string{"--volume", c.Volume(), "--servers", strings.Join(c.Servers(), ","),
		"--gluster-path", wrapper, "--mount-dir", filepath.Join(dir, "bench"),
		"--sections", "allocate,burst,clone", "--count", "6", "--rounds", "2", "--big-rounds", "1"}, &stdout, stderr)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.buf.String())
	require.True(t, stderr.fired, "the run never reached the burst section")
	assert.Equal(t, 1, code, "an interrupted run fails")
	assert.Contains(t, stdout.String(), "allocate: p50", "what was measured before the interrupt is printed")

	ents, err := os.ReadDir(bk.MountPath())
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), "bench-"), "left behind: %s", e.Name())
	}
	out, err := c.Gluster(ctx, "volume", "quota", c.Volume(), "list")
	require.NoError(t, err)
	assert.NotContains(t, out, "/bench-")
	assert.Contains(t, out, "/mine")
	_, err = pool.Get(ctx, "mine")
	require.NoError(t, err)
	counts, err := bk.WarmCounts(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[int64]int{quota.GiB: 1}, counts, "only the administrator's warm subvolume is left")
	st, err := bk.Purge(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Pending, "the trash is empty")
}
