package server_test

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
)

// TestRestartAndNoDrift checks that the volume list lives in the backend
// (on the Gluster volume, with the cli backend), not in the server: a new
// server (a new Pool) answers exactly as the old one did, and a server sees
// volumes that another server made or removed, and subvolumes removed
// behind its back.
func TestRestartAndNoDrift(t *testing.T) {
	mem, _ := newMemory(t)

	// Server A makes three volumes, then stops.
	poolA := openPool(t, shared{mem})
	srvA, hsA := serve(t, poolA, baseConfig())
	a := newClient(hsA.URL, "admin", adminKey)
	v1, err := a.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Gid: 3000})
	require.NoError(t, err)
	v2, err := a.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "keep_me"})
	require.NoError(t, err)
	v2, err = a.VolumeExpand(v2.Id, &api.VolumeExpandRequest{Size: 2})
	require.NoError(t, err)
	require.Equal(t, 3, v2.Size)
	v3, err := a.VolumeClone(v1.Id, &api.VolumeCloneRequest{})
	require.NoError(t, err)
	assert.Equal(t, testVolume+"/vol_"+v3.Id, v3.Name, "a clone without a name gets heketi's default")
	hsA.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, srvA.Shutdown(ctx))
	require.NoError(t, poolA.Close())

	// The ids are in the backend, in each subvolume's labels.
	for _, v := range []*api.VolumeInfoResponse{v1, v2, v3} {
		sv, err := mem.Get(ctxT(t), path.Base(v.Name))
		require.NoError(t, err)
		assert.Equal(t, v.Id, sv.Labels[server.LabelID])
	}

	// Server B, with its own Pool, answers the same.
	poolB := openPool(t, shared{mem})
	_, hsB := serve(t, poolB, baseConfig())
	b := newClient(hsB.URL, "admin", adminKey)
	list, err := b.VolumeList()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v1.Id, v2.Id, v3.Id}, list.Volumes)
	for _, v := range []*api.VolumeInfoResponse{v1, v2, v3} {
		got, err := b.VolumeInfo(v.Id)
		require.NoError(t, err)
		assert.Equal(t, v, got, "after a restart")
	}
	v1b, err := b.VolumeExpand(v1.Id, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, v1b.Size)
	assert.Equal(t, int64(3000), v1b.Gid)

	// Server C on the same volume at the same time: each sees what the
	// other does.
	poolC := openPool(t, shared{mem})
	_, hsC := serve(t, poolC, baseConfig())
	cc := newClient(hsC.URL, "admin", adminKey)
	v4, err := cc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "made_by_c"})
	require.NoError(t, err)
	poll(t, 10*time.Second, "B to see C's volume", func() bool {
		got, err := b.VolumeInfo(v4.Id)
		return err == nil && got.Name == v4.Name
	})
	_, err = b.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "made_by_c"})
	require.ErrorContains(t, err, "already in use", "B knows C's name is taken")
	require.NoError(t, b.VolumeDelete(v4.Id))
	poll(t, 10*time.Second, "C to see B's delete", func() bool {
		_, err := cc.VolumeInfo(v4.Id)
		return err != nil && err.Error() == "Id not found"
	})

	// A subvolume removed behind the servers' backs (with the SDK) is gone
	// from their answers too.
	require.NoError(t, poolC.Delete(ctxT(t), "keep_me", nil))
	poll(t, 10*time.Second, "B to see keep_me gone", func() bool {
		_, err := b.VolumeInfo(v2.Id)
		return err != nil && err.Error() == "Id not found"
	})
	list, err = b.VolumeList()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v1.Id, v3.Id}, list.Volumes)
	require.ErrorContains(t, b.VolumeDelete(v2.Id), "Id not found")

	// Subvolumes the SDK made without a heketi id are not heketi's to
	// list or delete.
	_, err = poolC.Allocate(ctxT(t), "sdk-only", 1<<30, nil)
	require.NoError(t, err)
	list, err = b.VolumeList()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v1.Id, v3.Id}, list.Volumes)
}
