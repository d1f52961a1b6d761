package heketi

import (
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

func replicate(n int) api.VolumeDurabilityInfo {
	var d api.VolumeDurabilityInfo
	d.Type = api.DurabilityReplicate
	d.Replicate.Replica = n
	return d
}

func disperse(data, red int) api.VolumeDurabilityInfo {
	var d api.VolumeDurabilityInfo
	d.Type = api.DurabilityEC
	d.Disperse.Data, d.Disperse.Redundancy = data, red
	return d
}

func TestParseVolumeType(t *testing.T) {
	good := []struct {
		in   string
		want api.VolumeDurabilityInfo
	}{
		{"", replicate(3)},
		{"  ", replicate(3)},
		{"replicate", replicate(3)},
		{"replicate:3", replicate(3)},
		{"replicate:2", replicate(2)},
		{"replicate:1", replicate(1)},
		{"replicate: 2", replicate(2)},
		{"disperse:4:2", disperse(4, 2)},
		{"disperse:2:1", disperse(2, 1)},
		{"disperse:8:3", disperse(8, 3)},
		{"disperse:8:4", disperse(8, 4)},
		{"none", api.VolumeDurabilityInfo{Type: api.DurabilityDistributeOnly}},
	}
	for _, tc := range good {
		got, err := parseVolumeType(tc.in)
		require.NoError(t, err, "%q", tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
	}
	bad := map[string]string{
		"replicate:0":    "positive integer",
		"replicate:4":    "at most 3",
		"replicate:x":    "positive integer",
		"replicate:-1":   "positive integer",
		"replicate:2:1":  "replicate:N",
		"disperse":       "disperse:DATA:REDUNDANCY",
		"disperse:4":     "disperse:DATA:REDUNDANCY",
		"disperse:4:2:1": "disperse:DATA:REDUNDANCY",
		"disperse:3:1":   "2:1, 4:2, 8:3 and 8:4",
		"disperse:4:0":   "positive integer",
		"disperse:a:b":   "positive integer",
		"none:1":         "no counts",
		"mirror":         "want replicate",
		"Replicate":      "want replicate",
		"distribute":     "want replicate",
	}
	for in, want := range bad {
		_, err := parseVolumeType(in)
		require.Error(t, err, "%q", in)
		assert.Contains(t, err.Error(), want, "%q", in)
		assert.Contains(t, err.Error(), in, "the error quotes the input %q", in)
	}
}

func TestOptionsFromParams(t *testing.T) {
	o, err := OptionsFromParams(map[string]string{
		"resturl":          "https://heketi:8080",
		"restuser":         "admin",
		"restuserkey":      "k",
		"clusterid":        "aa000000000000000000000000000000, bb000000000000000000000000000000",
		"volumetype":       "disperse:4:2",
		"gid":              "2000",
		"volumeoptions":    "features.read-only off, performance.cache-size 64MB",
		"snapfactor":       "1.5",
		"tlsinsecure":      "true",
		"tlscafile":        "/a.pem",
		"retrymaxattempts": "2", "retrymindelay": "10ms", "retrymaxdelay": "1s",
	})
	require.NoError(t, err)
	assert.Equal(t, &Options{
		URL: "https://heketi:8080", User: "admin", Key: "k",
		Clusters:       []string{"aa000000000000000000000000000000", "bb000000000000000000000000000000"},
		Durability:     "disperse:4:2",
		Gid:            2000,
		VolumeOptions:  []string{"features.read-only off", "performance.cache-size 64MB"},
		SnapshotFactor: 1.5, TLS: TLS{InsecureSkipVerify: true, CAFile: "/a.pem"},
		RetryMaxAttempts: 2, RetryMinDelay: 10 * time.Millisecond, RetryMaxDelay: time.Second,
	}, o)

	for _, params := range []map[string]string{
		{"resturl": "http://h", "secretName": "s"},
		{"resturl": "http://h", "gidMin": "2000"},
		{"resturl": "http://h", "gid": "x"},
		{"resturl": "http://h", "gid": "-1"},
		{"resturl": "http://h", "gid": "2147483647"},
		{"resturl": "http://h", "snapfactor": "0.5"},
		{"resturl": "http://h", "snapfactor": "101"},
		{"resturl": "http://h", "snapfactor": "many"},
		{"resturl": "http://h", "tlsinsecure": "maybe"},
	} {
		_, err := OptionsFromParams(params)
		require.Error(t, err, "%v", params)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v: %v", params, err)
	}
}

func TestOwnerGid(t *testing.T) {
	gid, err := ownerGid(nil, 7)
	require.NoError(t, err)
	assert.Equal(t, int64(7), gid)
	gid, err = ownerGid(&backend.Ownership{UID: -1, GID: 2000}, 7)
	require.NoError(t, err)
	assert.Equal(t, int64(2000), gid)
	gid, err = ownerGid(&backend.Ownership{UID: 0, GID: 2000, Mode: 0o2775}, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(2000), gid)
	gid, err = ownerGid(&backend.Ownership{UID: -1, GID: -1}, 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), gid)

	for _, o := range []*backend.Ownership{
		{UID: 1000, GID: -1},
		{UID: -1, GID: -1, Mode: 0o755},
		{UID: -1, GID: 0, Mode: 0o2775},
		{UID: -1, GID: 2000, Mode: 0o700},
	} {
		_, err := ownerGid(o, 0)
		assert.Error(t, err, "%+v", o)
	}
}

func TestSplitName(t *testing.T) {
	for _, c := range []struct{ in, vol, path, hname string }{
		{"vol_0123", "vol_0123", "", "vol_0123"},
		{"svkvol/pvc-1", "svkvol", "/pvc-1", "pvc-1"},
		{"svkvol/h._my_ddata__1", "svkvol", "/h._my_ddata__1", "_my_ddata__1"},
		{"gv0/a/b", "gv0", "/a/b", "b"},
		{"gv0/h.x.y", "gv0", "/h.x.y", "h.x.y"}, // not a prefixed heketi name: heketi names have no '.'
	} {
		v, p, h := splitName(c.in, "h.")
		if v != c.vol || p != c.path || h != c.hname {
			t.Errorf("splitName(%q) = %q %q %q, want %q %q %q", c.in, v, p, h, c.vol, c.path, c.hname)
		}
	}
	b := &Backend{opts: Options{DeepDirPrefix: "h."}}
	if got := subvolName(b.reportedHName("svkvol/h._my_ddata__1")); got != "my.data_1" {
		t.Errorf("deep escaped name maps to %q", got)
	}
	if _, _, h := splitName("svkvol/h.pv", ""); h != "h.pv" {
		t.Errorf("without a prefix option, the directory is the heketi name; got %q", h)
	}
}
