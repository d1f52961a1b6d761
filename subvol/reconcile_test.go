package subvol_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// noReconcile hides the memory backend's Reconcile.
type noReconcile struct{ backend.Backend }

func TestPoolReconcile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pool := subvol.NewPool(memory.New(&memory.Options{Dir: dir}), nil)
	defer pool.Close()
	_, err := pool.Allocate(ctx, "keep", quota.MiB, nil)
	require.NoError(t, err)
	_, err = pool.Allocate(ctx, "old", quota.MiB, nil)
	require.NoError(t, err)
	require.NoError(t, pool.Delete(ctx, "old", &subvol.DeleteOptions{Policy: subvol.DeletePolicyArchive}))
	archived, err := filepath.Glob(filepath.Join(dir, ".archive", "*"))
	require.NoError(t, err)
	require.Len(t, archived, 1)
	past := time.Now().Add(-48 * time.Hour)
	require.NoError(t, os.Chtimes(archived[0], past, past))

	rep, err := pool.Reconcile(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Items, "no retention asked")
	rep, err = pool.Reconcile(ctx, &subvol.ReconcileOptions{ArchiveRetention: 24 * time.Hour})
	require.NoError(t, err)
	require.Len(t, rep.Items, 1)
	assert.Equal(t, backend.ProblemArchiveExpired, rep.Items[0].Problem)
	assert.False(t, rep.Items[0].Repaired)
	_, err = os.Stat(archived[0])
	require.NoError(t, err, "a dry run removes nothing")
	rep, err = pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true, ArchiveRetention: 24 * time.Hour})
	require.NoError(t, err)
	require.Len(t, rep.Items, 1)
	assert.True(t, rep.Items[0].Repaired)
	_, err = os.Stat(archived[0])
	assert.True(t, os.IsNotExist(err), "%v", err)
	_, err = pool.Get(ctx, "keep")
	require.NoError(t, err)

	all, err := pool.ListAll(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "", all[0].State)

	other := subvol.NewPool(noReconcile{memory.New(nil)}, nil)
	defer other.Close()
	_, err = other.Reconcile(ctx, nil)
	assert.Equal(t, subvolkit.Unimplemented, subvolkit.KindOf(err), "%v", err)
	require.NoError(t, pool.Close())
	_, err = pool.Reconcile(ctx, nil)
	assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
}
