package server_test

import (
	"net/http"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadRequests sends what heketi refuses and checks that the server
// answers with heketi's status and message, and that nothing changes on
// the volume (directories, owner markers, quota limits).
func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	hc := e.admin()
	v, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "existing"})
	require.NoError(t, err)
	const unknown = "0123456789abcdef0123456789abcdef"
	vid := "/volumes/" + v.Id

	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"create: not JSON", "POST", "/volumes", `{"size": 1`, 422, "request unable to be parsed"},
		{"create: wrong type", "POST", "/volumes", `{"size": "ten"}`, 422, "request unable to be parsed"},
		{"create: empty body", "POST", "/volumes", ``, 422, "request unable to be parsed"},
		{"create: size 0", "POST", "/volumes", `{"size": 0}`, 400, "validation failed: size: cannot be blank."},
		{"create: negative size", "POST", "/volumes", `{"size": -3}`, 400, "validation failed: size: must be no less than 1."},
		{"create: size overflows bytes", "POST", "/volumes", `{"size": 9000000000}`, 400, "Invalid volume size"},
		{"create: bad name", "POST", "/volumes", `{"size": 1, "name": "a/b"}`, 400, "validation failed: name: must be in a valid format."},
		{"create: negative gid", "POST", "/volumes", `{"size": 1, "gid": -5}`, 400, "Bad group id less than zero"},
		{"create: huge gid", "POST", "/volumes", `{"size": 1, "gid": 4294967296}`, 400, "Bad group id equal or greater than 2**32"},
		{"create: unknown durability", "POST", "/volumes", `{"size": 1, "durability": {"type": "mirror"}}`, 400, "Unknown durability type"},
		{"create: 4 replicas", "POST", "/volumes", `{"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 4}}}`, 400, "Invalid replica value"},
		{"create: bad disperse", "POST", "/volumes", `{"size": 1, "durability": {"type": "disperse", "disperse": {"data": 3, "redundancy": 1}}}`, 400, "Invalid dispersion combination: 3+1"},
		{"create: snapshot factor", "POST", "/volumes", `{"size": 1, "snapshot": {"enable": true, "factor": 500}}`, 400, "Invalid snapshot factor"},
		{"create: unknown cluster", "POST", "/volumes", `{"size": 1, "clusters": ["` + unknown + `"]}`, 400, "Cluster id " + unknown + " not found"},
		{"create: cluster not an id", "POST", "/volumes", `{"size": 1, "clusters": ["c1"]}`, 400, "Cluster id c1 not found"}, // heketi's UUID check never sees slices,
		{"create: duplicate name", "POST", "/volumes", `{"size": 1, "name": "existing"}`, 500, "Failed to allocate new volume: Volume name 'existing' already in use"},
		{"create: block", "POST", "/volumes", `{"size": 1, "block": true}`, 500, "Failed to allocate new volume: block-hosting volumes are not supported"},
		{"expand: not JSON", "POST", vid + "/expand", `nope`, 422, "request unable to be parsed"},
		{"expand: size 0", "POST", vid + "/expand", `{"expand_size": 0}`, 400, "validation failed: expand_size: cannot be blank."},
		{"expand: negative", "POST", vid + "/expand", `{"expand_size": -1}`, 400, "validation failed: expand_size: must be no less than 1."},
		{"expand: unknown id", "POST", "/volumes/" + unknown + "/expand", `{"expand_size": 1}`, 404, "Id not found"},
		{"clone: not JSON", "POST", vid + "/clone", `[`, 422, "request unable to be parsed"},
		{"clone: bad name", "POST", vid + "/clone", `{"name": "x y"}`, 400, "validation failed: name: must be in a valid format."},
		{"clone: unknown id", "POST", "/volumes/" + unknown + "/clone", `{}`, 404, "Id not found"},
		{"clone: duplicate name", "POST", vid + "/clone", `{"name": "existing"}`, 500, "Failed clone volume " + v.Id + ": Volume name 'existing' already in use"},
		{"info: unknown id", "GET", "/volumes/" + unknown, "", 404, "Id not found"},
		{"info: id of a cluster", "GET", "/volumes/" + v.Cluster, "", 404, "Id not found"},
		{"info: not hex", "GET", "/volumes/existing", "", 404, "Invalid path or request"},
		{"delete: unknown id", "DELETE", "/volumes/" + unknown, "", 404, "Id not found"},
		{"delete: not hex", "DELETE", "/volumes/xyz", "", 404, "Invalid path or request"},
		{"queue: unknown id", "GET", "/queue/" + unknown, "", 404, "Id not found"},
		{"cluster: unknown id", "GET", "/clusters/" + unknown, "", 404, "Id not found"},
		{"node: unknown id", "GET", "/nodes/" + unknown, "", 404, "Id not found"},
		{"node: a volume id", "GET", "/nodes/" + v.Id, "", 404, "Id not found"},
		{"wrong method", "PUT", "/volumes", "{}", 405, "Method Not Allowed"},
		{"unknown path", "GET", "/bricks/" + unknown, "", 404, "Invalid path or request"},
		{"unknown device", "GET", "/devices/" + unknown, "", 404, "Id not found"},
		{"create: larger than the volume", "POST", "/volumes", `{"size": 100000}`, 500, "Failed to allocate new volume: No space"},
		{"expand: larger than the volume", "POST", vid + "/expand", `{"expand_size": 1024}`, 500, "Failed to allocate volume expansion: No space"},
	}
	before := e.disk(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := raw(t, e.hs.URL, c.method, c.path, c.body, "admin")
			assert.Equal(t, c.status, r.status, r.body)
			assert.Contains(t, r.body, c.msg)
			assert.Equal(t, before, e.disk(t), "the volume changed")
		})
	}

	// A size that fits the volume but not its free space fails in the
	// operation (the memory backend counts what is allocated): 202, then
	// heketi's message from the queue, once, and nothing made.
	big, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 600, Name: "big"})
	require.NoError(t, err)
	before = e.disk(t)
	r := raw(t, e.hs.URL, "POST", "/volumes", `{"size": 600}`, "admin")
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	done := pollQueue(t, e.hs.URL, r.header.Get("Location"))
	assert.Equal(t, http.StatusInternalServerError, done.status)
	assert.Equal(t, "Failed to allocate new volume: No space", done.body)
	assert.Equal(t, http.StatusNotFound, raw(t, e.hs.URL, "GET", r.header.Get("Location"), "", "admin").status,
		"a finished operation is reported once")
	_, err = hc.VolumeExpand(big.Id, &api.VolumeExpandRequest{Size: 500})
	require.EqualError(t, err, "Failed to allocate volume expansion: No space")
	_, err = hc.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 100000})
	require.EqualError(t, err, "Failed to allocate volume expansion: No space", "refused at once")
	assert.Equal(t, before, e.disk(t))
	require.NoError(t, hc.VolumeDelete(big.Id))
	before = e.disk(t)

	// The real client sees heketi's messages.
	_, err = hc.VolumeInfo(unknown)
	require.EqualError(t, err, "Id not found")
	require.EqualError(t, hc.VolumeDelete(unknown), "Id not found")
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 0})
	require.ErrorContains(t, err, "validation failed")
	_, err = hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "existing"})
	require.ErrorContains(t, err, "already in use")
	assert.Equal(t, before, e.disk(t))
	info, err := hc.VolumeInfo(v.Id)
	require.NoError(t, err)
	assert.Equal(t, v, info, "the existing volume is untouched")
}
