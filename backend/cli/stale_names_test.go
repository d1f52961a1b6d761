package cli_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// TestStaleNames runs operations in a process whose FUSE client still
// holds a name another process has changed since: the client keeps names
// for a second, here for a minute so that the window is certain.
func TestStaleNames(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	other := subvol.NewPool(openCachingBackend(t, e), nil)
	// made by this process, looked up by the other, deleted by this one
	deletedHere := func(t *testing.T, name string) {
		t.Helper()
		_, err := e.pool.Allocate(ctx, name, quota.MiB, nil)
		require.NoError(t, err)
		_, err = other.Get(ctx, name)
		require.NoError(t, err)
		require.NoError(t, e.pool.Delete(ctx, name, nil))
	}

	t.Run("GetAfterDelete", func(t *testing.T) {
		deletedHere(t, "get-gone")
		_, err := other.Get(ctx, "get-gone")
		assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
		_, err = other.Usage(ctx, "get-gone")
		assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
	})

	t.Run("CreateAfterDelete", func(t *testing.T) {
		deletedHere(t, "create-gone")
		sv, err := other.Allocate(ctx, "create-gone", 2*quota.MiB, nil)
		require.NoError(t, err)
		assert.Equal(t, int64(2*quota.MiB), sv.SizeBytes)
		got, err := e.pool.Get(ctx, "create-gone")
		require.NoError(t, err)
		assert.Equal(t, int64(2*quota.MiB), got.SizeBytes)
	})

	t.Run("DeleteAfterDelete", func(t *testing.T) {
		deletedHere(t, "delete-gone")
		assert.NoError(t, other.Delete(ctx, "delete-gone", nil), "deleting what is gone succeeds")
	})

	t.Run("SnapshotAfterDelete", func(t *testing.T) {
		_, err := e.pool.Allocate(ctx, "snap-src", quota.MiB, nil)
		require.NoError(t, err)
		_, err = e.pool.CreateSnapshot(ctx, "snap-gone", "snap-src", nil)
		require.NoError(t, err)
		_, err = other.GetSnapshot(ctx, "snap-gone")
		require.NoError(t, err)
		require.NoError(t, e.pool.DeleteSnapshot(ctx, "snap-gone"))
		_, err = other.GetSnapshot(ctx, "snap-gone")
		assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
		_, err = other.CreateSnapshot(ctx, "snap-gone", "snap-src", nil)
		assert.NoError(t, err, "the name is free again")
	})

	t.Run("ReplacedMeanwhile", func(t *testing.T) {
		deletedHere(t, "replaced")
		_, err := e.pool.Allocate(ctx, "replaced", 3*quota.MiB, &subvol.AllocateOptions{Labels: map[string]string{"by": "first"}})
		require.NoError(t, err)
		// The other client still reaches the deleted directory by the
		// name: it must not report it, nor act on the new one blindly.
		_, err = other.Get(ctx, "replaced")
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
		_, err = other.Resize(ctx, "replaced", 5*quota.MiB)
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
		got, err := e.pool.Get(ctx, "replaced")
		require.NoError(t, err)
		assert.Equal(t, int64(3*quota.MiB), got.SizeBytes)
		assert.Equal(t, map[string]string{"by": "first"}, got.Labels)
		assert.Equal(t, "3145728", e.limits(t)["/replaced"], "the limit is untouched")
	})
}

// openCachingBackend opens another backend on e's volume, as another
// process would, whose FUSE client keeps names and attributes for a minute
// instead of a second.
func openCachingBackend(t *testing.T, e *env) *cli.Backend {
	return openBackend(t, e.c, nil, func(o *cli.Options) {
		o.MountOptions = []string{"entry-timeout=60", "attribute-timeout=60"}
	})
}
