package driver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdoptLegacyMounts swaps drivers on a node with pods running:
// glfs-subvol's shared mount at <driver dir>/.mnt/<server>-<volume> with
// two pods bound from it. Unmounting them through this driver removes the
// binds and, with the last, glfs-subvol's shared mount and its directory;
// a new pod meanwhile gets this driver's own shared mount.
func TestAdoptLegacyMounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	legacyDir := filepath.Join(filepath.Dir(e.state), "exec", "rht~glfs-subvol", ".mnt")
	e.d.cfg.LegacyMountDir = legacyDir
	e.d.cfg.LegacyLockDir = filepath.Join(filepath.Dir(e.state), "lock")

	// What glfs-subvol did: mount -t glusterfs … server:/vol .mnt/server-vol,
	// then mount --bind .mnt/server-vol/<dir> <mount dir>.
	legacy := filepath.Join(legacyDir, legacyName("192.168.173.15", "testvol"))
	require.NoError(t, os.MkdirAll(legacy, 0o755))
	require.NoError(t, e.node.Mount("192.168.173.15:/testvol", legacy, "glusterfs",
		[]string{"backup-volfile-servers=192.168.173.16:192.168.173.17"}))
	old1, old2 := e.target("old1"), e.target("old2")
	for _, tg := range []string{old1, old2} {
		require.NoError(t, os.MkdirAll(tg, 0o755))
		require.NoError(t, e.node.Mount(filepath.Join(legacy, "00/01"), tg, "", []string{"bind"}))
	}

	// A new pod: this driver's own shared mount, next to the legacy one.
	fresh := e.target("new")
	r := e.d.Run(ctx, []string{"mount", fresh, opts(t, "00/02")})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	fuse, binds := e.node.count(t)
	assert.Equal(t, []int{2, 3}, []int{fuse, binds})

	r = e.d.Run(ctx, []string{"unmount", old1})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "glfs-subvol's shared mount "+legacy)
	assert.NotContains(t, r.Message, "last one")
	assert.DirExists(t, legacy)

	r = e.d.Run(ctx, []string{"unmount", old2})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "last one, the shared mount is unmounted")
	assert.NoDirExists(t, legacy, "glfs-subvol's mount point is removed, as it would")
	fuse, binds = e.node.count(t)
	assert.Equal(t, []int{1, 1}, []int{fuse, binds}, "only this driver's mount and its bind are left")
	assert.FileExists(t, filepath.Join(e.d.cfg.LegacyLockDir, legacyName("192.168.173.15", "testvol")+".lock"),
		"under glfs-subvol's own lock file")
	assert.Contains(t, e.log.String(), "! umount "+legacy)

	r = e.d.Run(ctx, []string{"unmount", fresh})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	fuse, binds = e.node.count(t)
	assert.Equal(t, []int{0, 0}, []int{fuse, binds})
}

// TestInitReturnsAtOnce checks that init leaves the restore of shared
// mounts to a detached run of the driver, and replies without waiting.
func TestInitReturnsAtOnce(t *testing.T) {
	e := newEnv(t)
	started := make(chan []string, 1)
	e.d.background = func(args []string) error { started <- args; return nil }
	t0 := time.Now()
	r := e.d.Run(context.Background(), []string{"init"})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Less(t, time.Since(t0), time.Second)
	assert.Equal(t, []string{cmdHeal}, <-started)
	assert.NotNil(t, r.Capabilities)
	assert.Empty(t, e.node.GetLog(), "init itself mounts nothing")

	// The detached run itself: a heal with nothing to restore.
	r = e.d.Run(context.Background(), []string{cmdHeal})
	assert.Equal(t, StatusSuccess, r.Status, r.Message)
}
