package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
)

// TestClientEndToEnd is the one test on real GlusterFS: the real heketi Go
// client creates a volume through the server over the cli backend, mounts
// it as the in-tree provisioner and as heketi-cli's users do, writes until
// the quota stops it, expands it and deletes it, each step checked on the
// volume itself. Every other test runs on the memory backend.
func TestClientEndToEnd(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	require.NoError(t, cli.Prepare(ctxT(t), c.Runner(1), c.Volume(), &cli.PrepareOptions{StrictQuota: true}))
	b, err := cli.Open(ctxT(t), &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(t.TempDir(), "mnt"),
	})
	require.NoError(t, err)
	pool := openPool(t, b)
	// No Config.VolumeInfo: the layout comes from the cli backend.
	_, hs := serve(t, pool, server.Config{Volume: c.Volume(), Servers: c.Servers(), AdminKey: adminKey})
	hc := newClient(hs.URL, "admin", adminKey)
	vol, host, brick := c.Volume(), c.Servers()[0], c.BrickPath(1)
	limits := func() map[string]string {
		m, err := c.QuotaLimits(ctxT(t))
		require.NoError(t, err)
		return m
	}

	// --- create, as the in-tree provisioner asks (gid, replicate:3,
	// snapshots): the answer reports the real volume.
	req := &api.VolumeCreateRequest{Size: 1, Gid: 2000}
	req.Durability.Type = api.DurabilityReplicate
	req.Durability.Replicate.Replica = 3
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1.5
	t0 := time.Now()
	v, err := hc.VolumeCreate(req)
	require.NoError(t, err)
	t.Logf("VolumeCreate through the heketi client: %v", time.Since(t0).Round(time.Millisecond))
	dir := "vol_" + v.Id
	assert.Equal(t, vol+"/"+dir, v.Name, "the name is the deep path")
	assert.Equal(t, api.DurabilityDistributeOnly, v.Durability.Type, "a one-brick volume is distribute-only, whatever was asked")
	assert.Equal(t, host+":/"+vol+"/"+dir, v.Mount.GlusterFS.MountPoint)
	require.Len(t, v.Bricks, 1, "one brick, read with `gluster volume info`")
	assert.Equal(t, strings.TrimPrefix(brick, host+":")+"/"+dir, v.Bricks[0].Path)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(brick, dir), &st))
	assert.Equal(t, uint32(2000), st.Gid)
	assert.Equal(t, uint32(0o2775), st.Mode&0o7777)
	assert.Equal(t, "1073741824", limits()["/"+dir])

	// --- what the in-tree provisioner mounts: "<storage host>:<name>".
	cl, err := hc.ClusterInfo(v.Cluster)
	require.NoError(t, err)
	require.Len(t, cl.Nodes, 1)
	node, err := hc.NodeInfo(cl.Nodes[0])
	require.NoError(t, err)
	inTree := mountGluster(t, c, node.Hostnames.Storage[0]+":"+v.Name)
	assert.Equal(t, quota.GiB, dfSize(t, inTree), "df of the deep mount shows the quota")

	// --- the device heketi-cli users mount: write past the quota.
	mp := mountGluster(t, c, v.Mount.GlusterFS.MountPoint)
	t0 = time.Now()
	n, werr := fill(filepath.Join(mp, "big"), quota.GiB, quota.GiB+64*quota.MiB)
	require.Truef(t, errors.Is(werr, syscall.EDQUOT), "want EDQUOT, got %v after %d bytes", werr, n)
	t.Logf("EDQUOT after %d bytes (limit %+d bytes) in %v", n, n-quota.GiB, time.Since(t0).Round(time.Millisecond))
	assert.GreaterOrEqual(t, n, quota.GiB-4*quota.MiB, "writes stopped well before the limit")
	assert.LessOrEqual(t, n, quota.GiB+8*quota.MiB, "strict quota stops writes within a few MiB of the limit")
	_, err = os.Stat(filepath.Join(inTree, "big"))
	require.NoError(t, err, "both mounts are the same directory")

	// --- expand by 1 GiB: the limit becomes 2 GiB, df shows it, writes go on.
	v2, err := hc.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, v2.Size)
	assert.Equal(t, "2147483648", limits()["/"+dir])
	poll(t, 30*time.Second, "df to show 2 GiB", func() bool { return dfSize(t, mp) == 2*quota.GiB })
	require.NoError(t, os.WriteFile(filepath.Join(mp, "after-expand"), []byte("room again"), 0o644))

	// --- delete: 204 through the client, nothing left on the volume.
	for _, m := range []string{mp, inTree} {
		require.NoError(t, syscall.Unmount(m, 0))
	}
	require.NoError(t, hc.VolumeDelete(v.Id))
	_, err = hc.VolumeInfo(v.Id)
	require.ErrorContains(t, err, "Id not found")
	_, err = os.Lstat(filepath.Join(brick, dir))
	assert.True(t, os.IsNotExist(err), "%s still exists: %v", dir, err)
	assert.NotContains(t, limits(), "/"+dir)
	list, err := hc.VolumeList()
	require.NoError(t, err)
	assert.Empty(t, list.Volumes)
}

var mounts atomic.Int64

// mountGluster mounts source ("host:/vol/dir" or "host:vol/dir") with
// mount.glusterfs, checks the mount table (mount.glusterfs answers 0 even
// when nothing got mounted) and unmounts in t.Cleanup.
func mountGluster(t *testing.T, c *glustertest.Cluster, source string, opts ...string) string {
	t.Helper()
	i := mounts.Add(1)
	mp := filepath.Join(c.BaseDir(), fmt.Sprintf("hs-mnt-%d", i))
	require.NoError(t, os.MkdirAll(mp, 0o755))
	opts = append([]string{"log-file=" + filepath.Join(c.BaseDir(), fmt.Sprintf("hs-mnt-%d.log", i))}, opts...)
	ctx, cancel := context.WithTimeout(ctxT(t), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mount", "-t", "glusterfs", "-o", strings.Join(opts, ","), source, mp).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() {
		if err := syscall.Unmount(mp, 0); err != nil {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	require.Contains(t, string(mi), " "+mp+" ", "mount.glusterfs %s reported success but nothing is mounted", source)
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mp, &st))
	return mp
}

// dfSize is the size statfs reports (the quota limit on a deep mount).
func dfSize(t *testing.T, mp string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mp, &st))
	return int64(st.Blocks) * int64(st.Bsize)
}

// fill fills path up to limit-prealloc... then writes until a write (or
// fsync) fails or max bytes are in the file. The first limit-64 MiB are
// allocated with fallocate (which the quota translator accounts like
// writes, and which takes milliseconds instead of the ~15 s that 1 GiB of
// quota-checked FUSE writes take); the rest are real writes, synced one by
// one, so the failure shows where it happens.
func fill(path string, limit, max int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := limit - 64<<20
	if n > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
			return 0, fmt.Errorf("fallocate: %w", err)
		}
		if _, err := f.Seek(n, io.SeekStart); err != nil {
			return 0, err
		}
	} else {
		n = 0
	}
	buf := bytes.Repeat([]byte("heketi-server subvolume "), 1<<20/24+1)[:1<<20]
	for n < max {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
	return n, f.Close()
}
