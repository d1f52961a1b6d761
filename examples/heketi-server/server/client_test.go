package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/quota"
)

// TestClientEndToEnd drives the server with the real heketi Go client on a
// real GlusterFS, the way heketi-cli and the in-tree provisioner do, and
// checks every answer against the volume itself.
func TestClientEndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	hc := e.admin()
	vol := e.c.Volume()
	host := e.c.Servers()[0]

	// --- create, as the in-tree provisioner asks (gid, replicate:3,
	// snapshots, volume options): the answer reports the real volume.
	req := &api.VolumeCreateRequest{Size: 1, Gid: 2000, GlusterVolumeOptions: []string{"performance.cache-size 64MB"}}
	req.Durability.Type = api.DurabilityReplicate
	req.Durability.Replicate.Replica = 3
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1.5
	t0 := time.Now()
	v, err := hc.VolumeCreate(req)
	require.NoError(t, err)
	t.Logf("VolumeCreate through the heketi client: %v", time.Since(t0).Round(time.Millisecond))
	dir := "vol_" + v.Id
	assert.Len(t, v.Id, 32)
	assert.Equal(t, 1, v.Size)
	assert.Equal(t, vol+"/"+dir, v.Name, "the name is the deep path")
	assert.Equal(t, int64(2000), v.Gid)
	assert.Equal(t, api.DurabilityDistributeOnly, v.Durability.Type, "a one-brick volume is distribute-only, whatever was asked")
	assert.False(t, v.Snapshot.Enable, "a directory cannot be snapshotted on its own")
	assert.Empty(t, v.GlusterVolumeOptions)
	assert.Equal(t, host+":/"+vol+"/"+dir, v.Mount.GlusterFS.MountPoint)
	assert.Equal(t, e.c.Servers(), v.Mount.GlusterFS.Hosts)

	// On disk: the directory with group 2000, setgid 2775, and a 1 GiB limit.
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(e.root, dir), &st))
	assert.Equal(t, uint32(2000), st.Gid)
	assert.Equal(t, uint32(0o2775), st.Mode&0o7777)
	assert.Equal(t, "1073741824", e.limits(t)["/"+dir])

	info, err := hc.VolumeInfo(v.Id)
	require.NoError(t, err)
	assert.Equal(t, v, info)
	list, err := hc.VolumeList()
	require.NoError(t, err)
	assert.Equal(t, []string{v.Id}, list.Volumes)

	// --- what the in-tree provisioner does next: storage hosts through
	// the cluster's nodes, then a mount of "<storage host>:<name>".
	cl, err := hc.ClusterInfo(v.Cluster)
	require.NoError(t, err)
	assert.Equal(t, []string{v.Id}, []string(cl.Volumes))
	require.Len(t, cl.Nodes, 1)
	node, err := hc.NodeInfo(cl.Nodes[0])
	require.NoError(t, err)
	require.Equal(t, []string{host}, []string(node.Hostnames.Storage))
	clusters, err := hc.ClusterList()
	require.NoError(t, err)
	assert.Equal(t, []string{v.Cluster}, clusters.Clusters)

	inTree := mountGluster(t, e.c, node.Hostnames.Storage[0]+":"+v.Name)
	assert.Equal(t, quota.GiB, dfSize(t, inTree), "df of the deep mount shows the quota")

	// --- the device heketi-cli and CSI drivers mount: write past the quota.
	mp := mountGluster(t, e.c, v.Mount.GlusterFS.MountPoint)
	require.NoError(t, os.WriteFile(filepath.Join(mp, "probe"), []byte("x"), 0o644))
	_, err = os.Stat(filepath.Join(inTree, "probe"))
	require.NoError(t, err, "both mounts are the same directory")
	t0 = time.Now()
	n, werr := fill(filepath.Join(mp, "big"), quota.GiB, quota.GiB+64*quota.MiB)
	require.Truef(t, errors.Is(werr, syscall.EDQUOT), "want EDQUOT, got %v after %d bytes", werr, n)
	t.Logf("EDQUOT after %d bytes (limit %+d bytes) in %v", n, n-quota.GiB, time.Since(t0).Round(time.Millisecond))
	assert.GreaterOrEqual(t, n, quota.GiB-4*quota.MiB, "writes stopped well before the limit")
	assert.LessOrEqual(t, n, quota.GiB+8*quota.MiB, "strict quota stops writes within a few MiB of the limit")

	// --- expand by 1 GiB: the limit becomes 2 GiB, df shows it.
	t0 = time.Now()
	v2, err := hc.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err)
	t.Logf("VolumeExpand: %v", time.Since(t0).Round(time.Millisecond))
	assert.Equal(t, 2, v2.Size)
	assert.Equal(t, v.Id, v2.Id)
	assert.Equal(t, "2147483648", e.limits(t)["/"+dir])
	poll(t, 30*time.Second, "df to show 2 GiB", func() bool { return dfSize(t, mp) == 2*quota.GiB })
	require.NoError(t, os.WriteFile(filepath.Join(mp, "after-expand"), []byte("room again"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(mp, "big")))

	// --- clone: a new volume with a copy of the data.
	t0 = time.Now()
	cv, err := hc.VolumeClone(v.Id, &api.VolumeCloneRequest{Name: "copy_of_first"})
	require.NoError(t, err)
	t.Logf("VolumeClone: %v", time.Since(t0).Round(time.Millisecond))
	assert.NotEqual(t, v.Id, cv.Id)
	assert.Equal(t, vol+"/copy_of_first", cv.Name)
	assert.Equal(t, 2, cv.Size)
	assert.Equal(t, int64(2000), cv.Gid, "the clone keeps the source's group")
	cmp := mountGluster(t, e.c, cv.Mount.GlusterFS.MountPoint)
	got, err := os.ReadFile(filepath.Join(cmp, "after-expand"))
	require.NoError(t, err)
	assert.Equal(t, "room again", string(got))
	assert.Equal(t, "2147483648", e.limits(t)["/copy_of_first"])

	// --- a named volume, then the same name again: refused, nothing changes.
	named, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "app_data"})
	require.NoError(t, err)
	assert.Equal(t, vol+"/app_data", named.Name)
	assert.Equal(t, int64(0), named.Gid)
	require.NoError(t, syscall.Stat(filepath.Join(e.root, "app_data"), &st))
	assert.Equal(t, uint32(0o755), st.Mode&0o7777, "no gid: root's directory, as heketi leaves a brick")
	before := e.disk(t)
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 3, Name: "app_data"})
	require.ErrorContains(t, err, "Volume name 'app_data' already in use")
	_, err = hc.VolumeClone(v.Id, &api.VolumeCloneRequest{Name: "app_data"})
	require.ErrorContains(t, err, "already in use")
	assert.Equal(t, before, e.disk(t))

	// A name that is valid for heketi but not as a directory name.
	odd, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "_leading_underscore"})
	require.NoError(t, err)
	assert.Equal(t, vol+"/h._leading_underscore", odd.Name, "reversible: heketi names never hold a dot")
	oddDir := strings.TrimPrefix(odd.Name, vol+"/")
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "_leading_underscore"})
	require.ErrorContains(t, err, "already in use")

	list, err = hc.VolumeList()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v.Id, cv.Id, named.Id, odd.Id}, list.Volumes)

	// --- delete everything: 204 through the client, nothing left on disk.
	for _, m := range []string{mp, inTree, cmp} {
		require.NoError(t, syscall.Unmount(m, 0))
	}
	for _, id := range []string{v.Id, cv.Id, named.Id, odd.Id} {
		t0 = time.Now()
		require.NoError(t, hc.VolumeDelete(id))
		t.Logf("VolumeDelete: %v", time.Since(t0).Round(time.Millisecond))
		_, err = hc.VolumeInfo(id)
		require.ErrorContains(t, err, "Id not found")
	}
	list, err = hc.VolumeList()
	require.NoError(t, err)
	assert.Empty(t, list.Volumes)
	for _, d := range []string{dir, "copy_of_first", "app_data", oddDir} {
		_, err := os.Lstat(filepath.Join(e.root, d))
		assert.True(t, os.IsNotExist(err), "%s still exists: %v", d, err)
		assert.NotContains(t, e.limits(t), "/"+d)
	}
	require.ErrorContains(t, hc.VolumeDelete(v.Id), "Id not found")
}
