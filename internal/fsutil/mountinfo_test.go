package fsutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMountinfoLine(t *testing.T) {
	e, ok := ParseMountinfoLine(`36 35 0:40 / /tmp/a\040b\134c rw,relatime shared:1 - fuse.glusterfs 10.0.0.1:/vol rw,user_id=0`)
	require.True(t, ok)
	assert.Equal(t, MountEntry{Device: "0:40", MountPoint: `/tmp/a b\c`, FSType: "fuse.glusterfs", Source: "10.0.0.1:/vol"}, e)
	for _, bad := range []string{"", "36 35 0:40 / /x rw", "1 2 - x", `36 35 0:40 / /tmp/a\04 rw - ext4 /dev/sda1 rw`} {
		e, ok := ParseMountinfoLine(bad)
		if ok {
			// A short escape is kept as it is, never misread.
			assert.Equal(t, `/tmp/a\04`, e.MountPoint, "%q", bad)
		}
	}
	ms, err := ReadMountinfo()
	require.NoError(t, err)
	var root bool
	for _, m := range ms {
		root = root || m.MountPoint == "/"
	}
	assert.True(t, root, "/ is mounted")
}

func FuzzParseMountinfoLine(f *testing.F) {
	f.Add(`36 35 0:40 / /tmp/a\040b rw - fuse.glusterfs h:/v rw`)
	f.Add(`1 2 3 4 \ - a b`)
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := ParseMountinfoLine(line)
		if !ok {
			return
		}
		if len(e.MountPoint) > len(line) || e.FSType == "" {
			t.Fatalf("%q parsed as %+v", line, e)
		}
	})
}
