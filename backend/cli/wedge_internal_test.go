package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
)

// TestWatchMountLostRequest checks the watchdog's second sign of a wedged
// client: a request of the copy that is never answered while the client
// answers everything else (GlusterFS 10.3's client lost a write so, hung in
// its crash handler, with its other threads serving statfs). A blocking
// lock stands in for the lost request: it waits in the client, on a lock
// another client of the volume holds, while statfs is answered. With no
// progress for WedgeTimeout, the watchdog aborts the mount, the wait fails,
// and the backend mounts the volume again on its next call.
func TestWatchMountLostRequest(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, Prepare(ctx, c.Runner(1), c.Volume(), nil))
	const timeout = 2 * time.Second
	b, err := Open(ctx, &Options{Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(t.TempDir(), "mnt"), WedgeTimeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })

	other := c.MountT(t, "")
	holder, err := os.Create(filepath.Join(other, "lockfile"))
	require.NoError(t, err)
	lock := syscall.Flock_t{Type: syscall.F_WRLCK, Start: 0, Len: 1}
	require.NoError(t, syscall.FcntlFlock(holder.Fd(), syscall.F_SETLK, &lock))
	// Should the watchdog miss it, the lock goes after 30 s: the test
	// fails on the time instead of hanging.
	release := time.AfterFunc(30*time.Second, func() { holder.Close() })
	defer release.Stop()
	defer holder.Close()

	progressed := false
	start := time.Now()
	err = b.watchMount(ctx, func(alive func()) error {
		alive()
		progressed = true
		f, err := os.OpenFile(filepath.Join(b.mnt, "lockfile"), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		// statfs is answered meanwhile: this is not the first sign.
		var st syscall.Statfs_t
		if err := syscall.Statfs(b.mnt, &st); err != nil {
			return err
		}
		return syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lock)
	})
	took := time.Since(start)
	require.True(t, progressed)
	require.Error(t, err, "the lock wait must have failed, not been granted")
	assert.True(t, errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED), "%v", err)
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, 20*time.Second)
	t.Logf("the lost request was cut after %v: %v", took.Round(time.Millisecond), err)

	// The backend's next call mounts the volume again.
	_, err = b.List(ctx, nil)
	require.NoError(t, err)
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(b.mnt, &st))
}
