package heketi

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"

	"github.com/subvolkit/subvolkit/naming"
)

// heketiNameRe is heketi's volume name pattern (pkg/glusterfs/api).
var heketiNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func TestNameMapping(t *testing.T) {
	for name, want := range map[string]string{
		"pvc-1":        "pvc-1",
		"vol_abc":      "vol_abc",
		"a.b":          "_a_db",
		"my.data_1":    "_my_ddata__1",
		"x_d.y":        "_x__d_dy",
		"A.B-c_":       "_A_dB-c__",
		"v1.2.3":       "_v1_d2_d3",
		"plain_d_name": "plain_d_name",
	} {
		assert.Equal(t, want, heketiName(name), "heketiName(%q)", name)
		assert.Equal(t, name, subvolName(want), "subvolName(%q)", want)
	}
	// Names other tools gave heketi volumes are their own names.
	for _, h := range []string{"_scratch", "_a_x", "_", "_a_", "_ab", "__", "-x", "_a_d_d", "_a__", "_.a"} {
		assert.Equal(t, h, subvolName(h), "subvolName(%q)", h)
	}
}

func TestNameMappingProperties(t *testing.T) {
	const alphabet = "aZ09_.-d"
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for range 20000 {
		n := 1 + rng.IntN(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		name := string(b)
		if naming.ValidateSubvolName(name) != nil {
			continue
		}
		h := heketiName(name)
		if !heketiNameRe.MatchString(h) {
			t.Fatalf("heketiName(%q) = %q is not a heketi volume name", name, h)
		}
		if got := subvolName(h); got != name {
			t.Fatalf("subvolName(heketiName(%q)) = %q", name, got)
		}
		if other, dup := seen[h]; dup && other != name {
			t.Fatalf("%q and %q both map to %q", name, other, h)
		}
		seen[h] = name
	}
}

func TestServersPutTheDeviceHostFirst(t *testing.T) {
	// heketi rewrites the mount device when a node goes
	// (updateHostandMountPoint); the device's host is the one to use.
	var info api.VolumeInfoResponse
	info.Mount.GlusterFS.Hosts = []string{"h1", "h2", "h3"}
	info.Mount.GlusterFS.MountPoint = "h2:vol"
	assert.Equal(t, []string{"h2", "h1", "h3"}, servers(&info))
	info.Mount.GlusterFS.MountPoint = "[fe80::1]:vol"
	info.Mount.GlusterFS.Hosts = []string{"[fe80::1]", "h2"}
	assert.Equal(t, []string{"[fe80::1]", "h2"}, servers(&info))
	info.Mount.GlusterFS.MountPoint = ""
	assert.Equal(t, []string{"[fe80::1]", "h2"}, servers(&info))

	info.Mount.GlusterFS.Options = map[string]string{"backup-volfile-servers": ""}
	assert.Nil(t, mountOptions(&info), "a lone host has no backup servers")
}
