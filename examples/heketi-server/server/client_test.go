package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientFlow drives the server with the real heketi Go client the way
// heketi-cli and the in-tree provisioner do (create, info, list, cluster
// and node lookups, expand, clone, names, delete) on the memory backend,
// and checks every answer against the backend itself.
func TestClientFlow(t *testing.T) {
	e := newEnv(t, nil)
	hc := e.admin()

	// --- create as the in-tree provisioner asks: gid, replicate:3,
	// snapshots, volume options.
	req := &api.VolumeCreateRequest{Size: 1, Gid: 2000, GlusterVolumeOptions: []string{"performance.cache-size 64MB"}}
	req.Durability.Type = api.DurabilityReplicate
	req.Durability.Replicate.Replica = 3
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1.5
	v, err := hc.VolumeCreate(req)
	require.NoError(t, err)
	dir := "vol_" + v.Id
	assert.Len(t, v.Id, 32)
	assert.Equal(t, 1, v.Size)
	assert.Equal(t, testVolume+"/"+dir, v.Name, "the name is the deep path")
	assert.Equal(t, int64(2000), v.Gid)
	assert.Equal(t, api.DurabilityReplicate, v.Durability.Type)
	assert.Equal(t, 3, v.Durability.Replicate.Replica)
	assert.Empty(t, v.GlusterVolumeOptions)
	assert.Equal(t, "gfs1:/"+testVolume+"/"+dir, v.Mount.GlusterFS.MountPoint)
	assert.Equal(t, testServers, v.Mount.GlusterFS.Hosts)
	assert.Equal(t, "gfs2:gfs3", v.Mount.GlusterFS.Options["backup-volfile-servers"])
	require.Len(t, v.Bricks, 3, "one brick part per brick of the volume")
	for i, b := range v.Bricks {
		assert.Equal(t, "/bricks/"+testVolume+"/"+dir, b.Path)
		assert.Equal(t, v.Id, b.VolumeId)
		assert.Equal(t, uint64(1<<20), b.Size, "replica 3: each brick holds the whole GiB (in KiB)")
		assert.NotEqual(t, v.Bricks[(i+1)%3].NodeId, b.NodeId)
	}
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(e.dir, dir), &st))
	assert.Equal(t, uint32(2000), st.Gid)
	assert.Equal(t, uint32(0o2775), st.Mode&0o7777)

	info, err := hc.VolumeInfo(v.Id)
	require.NoError(t, err)
	assert.Equal(t, v, info)
	list, err := hc.VolumeList()
	require.NoError(t, err)
	assert.Equal(t, []string{v.Id}, list.Volumes)

	// --- the in-tree provisioner's next calls: the cluster's nodes and
	// their storage hosts.
	cl, err := hc.ClusterInfo(v.Cluster)
	require.NoError(t, err)
	assert.Equal(t, []string{v.Id}, []string(cl.Volumes))
	require.Len(t, cl.Nodes, 3)
	node, err := hc.NodeInfo(cl.Nodes[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"gfs1"}, []string(node.Hostnames.Storage))
	assert.Equal(t, v.Bricks[0].NodeId, node.Id)
	clusters, err := hc.ClusterList()
	require.NoError(t, err)
	assert.Equal(t, []string{v.Cluster}, clusters.Clusters)

	// --- expand by 1 GiB.
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, dir, "data"), []byte("kept"), 0o644))
	v2, err := hc.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, v2.Size)
	assert.Equal(t, v.Id, v2.Id)
	sv, err := e.pool.Get(ctxT(t), dir)
	require.NoError(t, err)
	assert.Equal(t, int64(2<<30), sv.SizeBytes)

	// --- clone: a new volume with a copy of the data.
	cv, err := hc.VolumeClone(v.Id, &api.VolumeCloneRequest{Name: "copy_of_first"})
	require.NoError(t, err)
	assert.NotEqual(t, v.Id, cv.Id)
	assert.Equal(t, testVolume+"/copy_of_first", cv.Name)
	assert.Equal(t, 2, cv.Size)
	assert.Equal(t, int64(2000), cv.Gid, "the clone keeps the source's group")
	got, err := os.ReadFile(filepath.Join(e.dir, "copy_of_first", "data"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(got))

	// --- a named volume, then the same name again: refused, nothing changes.
	named, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "app_data"})
	require.NoError(t, err)
	assert.Equal(t, testVolume+"/app_data", named.Name)
	assert.Equal(t, int64(0), named.Gid)
	before := e.disk(t)
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 3, Name: "app_data"})
	require.ErrorContains(t, err, "Volume name 'app_data' already in use")
	_, err = hc.VolumeClone(v.Id, &api.VolumeCloneRequest{Name: "app_data"})
	require.ErrorContains(t, err, "already in use")
	assert.Equal(t, before, e.disk(t))

	// A name that is valid for heketi but not as a directory name.
	odd, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "_leading_underscore"})
	require.NoError(t, err)
	assert.Equal(t, testVolume+"/h._leading_underscore", odd.Name, "reversible: heketi names never hold a dot")
	oddDir := strings.TrimPrefix(odd.Name, testVolume+"/")
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "_leading_underscore"})
	require.ErrorContains(t, err, "already in use")

	list, err = hc.VolumeList()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v.Id, cv.Id, named.Id, odd.Id}, list.Volumes)

	// --- delete everything: 204 through the client, nothing left.
	for _, id := range []string{v.Id, cv.Id, named.Id, odd.Id} {
		require.NoError(t, hc.VolumeDelete(id))
		_, err = hc.VolumeInfo(id)
		require.ErrorContains(t, err, "Id not found")
	}
	list, err = hc.VolumeList()
	require.NoError(t, err)
	assert.Empty(t, list.Volumes)
	for _, d := range []string{dir, "copy_of_first", "app_data", oddDir} {
		_, err := os.Lstat(filepath.Join(e.dir, d))
		assert.True(t, os.IsNotExist(err), "%s still exists: %v", d, err)
	}
	assert.Empty(t, e.disk(t))
	require.ErrorContains(t, hc.VolumeDelete(v.Id), "Id not found")
}
