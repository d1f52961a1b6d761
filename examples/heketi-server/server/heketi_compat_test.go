package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
)

// TestHeketiCompat checks what the server answers as heketi does beyond
// volumes: /metrics without a token, heketi's 404 text, the snapshot
// factor, devices (the backing volume's bricks), POST /clusters and
// /internal/logging.
func TestHeketiCompat(t *testing.T) {
	level := new(slog.LevelVar)
	e := newEnv(t, func(c *server.Config) { c.LogLevel = level })
	hc := e.admin()

	req := &api.VolumeCreateRequest{Size: 2}
	req.Snapshot.Enable, req.Snapshot.Factor = true, 1.5
	v, err := hc.VolumeCreate(req)
	require.NoError(t, err)
	assert.True(t, v.Snapshot.Enable)
	assert.Equal(t, float32(1.5), v.Snapshot.Factor, "heketi reports the factor asked for")
	cv, err := hc.VolumeClone(v.Id, &api.VolumeCloneRequest{})
	require.NoError(t, err)
	assert.Equal(t, v.Snapshot, cv.Snapshot, "a clone keeps it")
	plain, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1})
	require.NoError(t, err)
	assert.False(t, plain.Snapshot.Enable)

	// Prometheus scrapes /metrics without a token, as from heketi.
	m := raw(t, e.hs.URL, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, m.status, m.body)
	for _, line := range []string{
		"heketi_up 1",
		"heketi_cluster_count 1",
		`heketi_volumes_count{cluster="` + v.Cluster + `"} 3`,
		`heketi_nodes_count{cluster="` + v.Cluster + `"} 3`,
		`heketi_device_count{cluster="` + v.Cluster + `",hostname="gfs1",storage_hostname="gfs1"} 1`,
		"heketi_operations_inFlight_count 0",
	} {
		assert.Contains(t, m.body, line)
	}

	// Paths heketi does not serve: 401 without a token, then heketi's 404.
	assert.Equal(t, http.StatusUnauthorized, raw(t, e.hs.URL, "GET", "/nope", "", "").status)
	r := raw(t, e.hs.URL, "GET", "/nope", "", "admin")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "Invalid path or request", r.body)

	// Devices are the volume's bricks; a node lists its own.
	node, err := hc.NodeInfo(v.Bricks[1].NodeId)
	require.NoError(t, err)
	assert.Equal(t, []string{"gfs2"}, []string(node.Hostnames.Manage))
	require.Len(t, node.DevicesInfo, 1)
	assert.Equal(t, v.Bricks[1].DeviceId, node.DevicesInfo[0].Id)
	assert.Equal(t, "/bricks/gv0", node.DevicesInfo[0].Name)
	dev, err := hc.DeviceInfo(v.Bricks[1].DeviceId)
	require.NoError(t, err)
	assert.Equal(t, "/bricks/gv0", dev.Name)
	assert.Equal(t, api.EntryStateOnline, dev.State)
	var paths []string
	for _, b := range dev.Bricks {
		paths = append(paths, b.Path)
	}
	assert.ElementsMatch(t, []string{v.Bricks[1].Path, cv.Bricks[1].Path, plain.Bricks[1].Path}, paths)
	assert.Equal(t, uint64(1<<30), dev.Storage.Total, "MaxVolumeBytes, in KiB")
	assert.Equal(t, uint64(5<<20), dev.Storage.Used, "2 + 2 + 1 GiB of bricks, in KiB")

	// POST /clusters answers the one cluster, 201 as for a new one.
	cl, err := hc.ClusterCreate(&api.ClusterCreateRequest{ClusterFlags: api.ClusterFlags{File: true}})
	require.NoError(t, err)
	assert.Equal(t, v.Cluster, cl.Id)
	assert.Len(t, cl.Nodes, 3)

	// heketi-cli loglevel get / set.
	ll, err := hc.LogLevelGet()
	require.NoError(t, err)
	assert.Equal(t, "info", ll.LogLevel["glusterfs"])
	require.NoError(t, hc.LogLevelSet(&api.LogLevelInfo{LogLevel: map[string]string{"glusterfs": "debug"}}))
	assert.Equal(t, slog.LevelDebug, level.Level())
	ll, err = hc.LogLevelGet()
	require.NoError(t, err)
	assert.Equal(t, "debug", ll.LogLevel["glusterfs"])
	err = hc.LogLevelSet(&api.LogLevelInfo{LogLevel: map[string]string{"other": "debug"}})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), `Only "glusterfs" logger may be modified`), err.Error())
}
