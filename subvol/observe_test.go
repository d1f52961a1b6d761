package subvol_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

func TestObserverSeesEveryOperation(t *testing.T) {
	type call struct {
		op, name string
		kind     subvolkit.Kind
		ok       bool
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	obs := func(op, name string, d time.Duration, err error) {
		assert.GreaterOrEqual(t, d, time.Duration(0))
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{op, name, subvolkit.KindOf(err), err == nil})
	}
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), &subvol.Options{Observer: obs})
	defer pool.Close()

	_, err := pool.Allocate(ctx, "a", quota.MiB, nil)
	require.NoError(t, err)
	_, err = pool.Get(ctx, "missing")
	require.Error(t, err)
	_, err = pool.List(ctx)
	require.NoError(t, err)
	_, err = pool.Resize(ctx, "a", 2*quota.MiB)
	require.NoError(t, err)
	_, err = pool.Usage(ctx, "a")
	require.NoError(t, err)
	_, err = pool.Clone(ctx, "a", "b", nil)
	require.NoError(t, err)
	require.NoError(t, pool.Delete(ctx, "b", nil))
	_, err = pool.Allocate(ctx, "Bad/name", quota.MiB, nil)
	require.Error(t, err)

	assert.Equal(t, []call{
		{"allocate", "a", subvolkit.Unknown, true},
		{"get", "missing", subvolkit.NotFound, false},
		{"list", "", subvolkit.Unknown, true},
		{"resize", "a", subvolkit.Unknown, true},
		{"usage", "a", subvolkit.Unknown, true},
		{"clone", "b", subvolkit.Unknown, true},
		{"delete", "b", subvolkit.Unknown, true},
		{"allocate", "Bad/name", subvolkit.InvalidArgument, false},
	}, calls)
}

func TestObserverSeesSnapshotOperations(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []string
	)
	obs := func(op, name string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, op+" "+name+" "+subvolkit.KindOf(err).String())
	}
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), &subvol.Options{Observer: obs})
	defer pool.Close()

	_, err := pool.Allocate(ctx, "a", quota.MiB, nil)
	require.NoError(t, err)
	_, err = pool.CreateSnapshot(ctx, "s", "a", nil)
	require.NoError(t, err)
	_, err = pool.GetSnapshot(ctx, "missing")
	require.Error(t, err)
	_, err = pool.ListSnapshots(ctx)
	require.NoError(t, err)
	_, err = pool.Restore(ctx, "s", "r", nil)
	require.NoError(t, err)
	require.NoError(t, pool.DeleteSnapshot(ctx, "s"))

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"allocate a " + subvolkit.Unknown.String(),
		"create snapshot s " + subvolkit.Unknown.String(),
		"get snapshot missing " + subvolkit.NotFound.String(),
		"list snapshots  " + subvolkit.Unknown.String(),
		"restore r " + subvolkit.Unknown.String(),
		"delete snapshot s " + subvolkit.Unknown.String(),
	}, calls)
}
