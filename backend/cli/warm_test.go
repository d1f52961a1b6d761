package cli_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// TestWarm checks warm subvolumes on real GlusterFS: a subvolume handed out
// warm has its limit at its new path (quota list and a deep mount's df
// agree, writes stop at it), concurrent Allocates of the class all get
// distinct subvolumes, Reconcile accepts the warm area and repairs a warm
// subvolume whose limit was changed behind its back, and DrainWarm leaves
// no limit behind.
func TestWarm(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	const size = 5 * quota.MiB
	require.NoError(t, e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 4}}))
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, e.pool.WaitWarm(wctx))
	warm := warmAtRoot(t, e.root)
	require.Len(t, warm, 4, "the root holds the class's count of warm entries")
	lims := e.limits(t)
	for _, w := range warm {
		assert.Equal(t, "5242880", lims["/"+w], "limit of warm %s", w)
	}
	svs, err := e.pool.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, svs, "warm entries are no subvolumes")

	t.Run("HandedOutKeepsItsLimit", func(t *testing.T) {
		sv, err := e.pool.Allocate(ctx, "hot", size, &subvol.AllocateOptions{
			Owner:  &subvol.Ownership{UID: 1000, GID: 2000, Mode: 0o2775},
			Labels: map[string]string{"pvc": "hot"},
		})
		require.NoError(t, err)
		assert.Equal(t, uint64(1), e.pool.WarmStatus()[0].Taken, "served warm")
		assert.Equal(t, "5242880", e.limits(t)["/hot"], "the limit followed the rename")
		got, err := e.pool.Get(ctx, "hot")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"pvc": "hot"}, got.Labels)
		assert.Equal(t, []any{1000, 2000, uint32(0o2775)}, []any{got.UID, got.GID, got.Mode})
		// A take reports the owner and mode from the entry's stat before
		// the rename and what it changed, not from a stat after it.
		assert.Equal(t, []any{got.UID, got.GID, got.Mode}, []any{sv.UID, sv.GID, sv.Mode}, "Allocate reports what is there")
		require.NoError(t, e.pool.WaitWarm(wctx))
		plain, err := e.pool.Allocate(ctx, "hot-plain", size, nil)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), e.pool.WarmStatus()[0].Taken, "served warm")
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(filepath.Join(e.root, "hot-plain"), &st))
		assert.Equal(t, []any{int(st.Uid), int(st.Gid), st.Mode & 0o7777}, []any{plain.UID, plain.GID, plain.Mode}, "without an owner too")
		mnt := e.c.MountT(t, sv.Path)
		assert.Equal(t, int64(size), statfsSize(t, mnt), "df inside the deep mount shows the limit")
		written, werr := fillUntilError(t, filepath.Join(mnt, "fill"), 20*quota.MiB)
		assert.True(t, errors.Is(werr, syscall.EDQUOT), "want EDQUOT, got %v", werr)
		assert.LessOrEqual(t, written, int64(9*quota.MiB), "overshoot bounded")
		require.NoError(t, os.Remove(filepath.Join(mnt, "fill")))
	})

	t.Run("ConcurrentTakes", func(t *testing.T) {
		require.NoError(t, e.pool.WaitWarm(wctx))
		// A second backend (another process's, sharing the volume) takes
		// from the same stock.
		other := subvol.NewPool(openBackend(t, e.c, nil), nil)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range 8 {
			p := e.pool
			if i%2 == 1 {
				p = other
			}
			wg.Go(func() { _, errs[i] = p.Allocate(ctx, fmt.Sprintf("burst-%d", i), size, nil) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "burst-%d", i)
		}
		lims := e.limits(t)
		for i := range 8 {
			assert.Equal(t, "5242880", lims[fmt.Sprintf("/burst-%d", i)], "limit of burst-%d", i)
		}
		// Every warm entry was handed out once at most: the limits of
		// the warm area and the burst add up to what was made.
		require.NoError(t, e.pool.WaitWarm(wctx))
		n := 0
		for p := range e.limits(t) {
			if strings.HasPrefix(p, "/.subvolkit-warm.") {
				n++
			}
		}
		assert.Equal(t, 4, n, "stock refilled to the count")
	})

	t.Run("TakenThroughACachedName", func(t *testing.T) {
		require.NoError(t, e.pool.WaitWarm(wctx))
		// Another process's backend, whose FUSE client keeps names for a
		// minute instead of the default second, so that what is at most
		// a second's window there is certain here: it lists the stock,
		// then this process takes all of it.
		ob := openCachingBackend(t, e)
		counts, err := ob.WarmCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, 4, counts[size])
		require.NoError(t, e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 0}}), "no refill meanwhile")
		t.Cleanup(func() { _ = e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 4}}) })
		taken0 := e.pool.WarmStatus()[0].Taken
		firsts := map[string]syscall.Stat_t{}
		for i := range 2 {
			name := fmt.Sprintf("first-%d", i)
			_, err := e.pool.Allocate(ctx, name, size, &subvol.AllocateOptions{Labels: map[string]string{"by": "first"}})
			require.NoError(t, err)
			var st syscall.Stat_t
			require.NoError(t, syscall.Stat(filepath.Join(e.root, name), &st))
			firsts[name] = st
		}
		require.Equal(t, taken0+2, e.pool.WarmStatus()[0].Taken, "both served warm")
		drained, err := e.pool.DrainWarm(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, drained)
		// The other process's cached names of the stock now lead to this
		// process's subvolumes and into the trash. Its takes must find
		// them taken or gone, leave them alone and fall back to the
		// normal path.
		other := subvol.NewPool(ob, nil)
		require.NoError(t, other.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 0}}))
		for i := range 4 {
			sv, err := other.Allocate(ctx, fmt.Sprintf("second-%d", i), size, &subvol.AllocateOptions{
				Owner:  &subvol.Ownership{UID: 4242, GID: 4242, Mode: 0o700},
				Labels: map[string]string{"by": "second"},
			})
			if assert.NoError(t, err) {
				assert.Equal(t, []any{4242, 4242, uint32(0o700)}, []any{sv.UID, sv.GID, sv.Mode})
			}
		}
		assert.Equal(t, uint64(0), other.WarmStatus()[0].Taken, "no stock was left to take")
		for name, before := range firsts {
			got, err := e.pool.Get(ctx, name)
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"by": "first"}, got.Labels, "labels of %s", name)
			raw := make([]byte, 4096)
			n, err := unix.Lgetxattr(filepath.Join(e.root, name), "trusted.subvolkit.v1", raw)
			require.NoError(t, err)
			assert.Contains(t, string(raw[:n]), `"name":"`+name+`"`, "marker of %s", name)
			var st syscall.Stat_t
			require.NoError(t, syscall.Stat(filepath.Join(e.root, name), &st))
			assert.Equal(t, []any{before.Uid, before.Gid, before.Mode}, []any{st.Uid, st.Gid, st.Mode}, "owner and mode of %s", name)
		}

		// An entry drained into the trash after the other process's marker
		// read (as one drained before its look-up but not yet purged looks
		// there): the take's rename finds nothing and the take moves on.
		require.NoError(t, e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 1}}))
		require.NoError(t, e.pool.WaitWarm(wctx))
		require.NoError(t, e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 0}}))
		counts, err = ob.WarmCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, counts[size])
		entry := warmAtRoot(t, e.root)[0]
		cli.SetFailpointHook(ob, func(step string) {
			if step == "take:marked" {
				assert.NoError(t, os.Rename(filepath.Join(e.root, entry), filepath.Join(e.root, ".subvolkit/trash/_warm-5242880.0123456789abcdef")))
			}
		})
		_, err = other.Allocate(ctx, "second-drained", size, nil)
		cli.SetFailpointHook(ob, func(string) {})
		require.NoError(t, err)
		assert.Equal(t, uint64(0), other.WarmStatus()[0].Taken, "made the normal way")

		require.NoError(t, e.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 4}}))
		require.NoError(t, e.pool.WaitWarm(wctx))
	})

	t.Run("Reconcile", func(t *testing.T) {
		rep, err := e.pool.Reconcile(ctx, nil)
		require.NoError(t, err)
		for _, it := range rep.Items {
			assert.NotContains(t, it.Path, "/.subvolkit-warm.", "warm entries are not problems: %+v", it)
		}
		// A warm subvolume whose limit was changed behind the backend's
		// back, and one where versions before kept them.
		bad := "/" + warmAtRoot(t, e.root)[0]
		_, errOut, err := e.c.Runner(1).Run(ctx, "--mode=script", "volume", "quota", e.c.Volume(), "limit-usage", bad, "7MB")
		require.NoError(t, err, "%s", errOut)
		legacy := "/.subvolkit/warm/5242880.18ed6b0c5d2e4f00aabbccdd"
		require.NoError(t, os.MkdirAll(filepath.Join(e.root, legacy), 0o755))
		_, errOut, err = e.c.Runner(1).Run(ctx, "--mode=script", "volume", "quota", e.c.Volume(), "limit-usage", legacy, "5MB")
		require.NoError(t, err, "%s", errOut)
		rep, err = e.pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
		require.NoError(t, err)
		found := map[string]bool{}
		for _, it := range rep.Items {
			if it.Path == bad || it.Path == legacy {
				found[it.Path] = true
				assert.Equal(t, backend.ProblemHalfMade, it.Problem)
				assert.True(t, it.Repaired, "%+v", it)
			}
		}
		assert.Equal(t, map[string]bool{bad: true, legacy: true}, found, "the changed and the legacy warm subvolumes are reported: %+v", rep.Items)
		// Seen through another client, whose entry cache may lag a moment.
		for _, p := range []string{bad, legacy} {
			assert.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(e.root, p))
				return errors.Is(err, os.ErrNotExist)
			}, 10*time.Second, 100*time.Millisecond, "%s moved to the trash", p)
		}
		// The purger removes their limits (which followed them into the
		// trash).
		assert.Eventually(t, func() bool {
			if st, err := e.b.Purge(ctx); err != nil || st.Pending != 0 {
				return false
			}
			for p := range e.limits(t) {
				if p == bad || p == legacy || strings.HasPrefix(p, "/.subvolkit/trash/") {
					return false
				}
			}
			return true
		}, 60*time.Second, 200*time.Millisecond, "the limits of the removed warm subvolumes")
	})

	t.Run("Drain", func(t *testing.T) {
		require.NoError(t, e.pool.SetWarm(nil))
		_, err := e.pool.DrainWarm(ctx)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			st, err := e.b.Purge(ctx)
			return err == nil && st.Pending == 0
		}, time.Minute, 200*time.Millisecond)
		for p := range e.limits(t) {
			assert.False(t, strings.HasPrefix(p, "/.subvolkit"), "limit left on %s", p)
		}
		assert.Empty(t, warmAtRoot(t, e.root))
	})
}

// warmAtRoot lists the warm entries at the volume's root, mounted at root.
func warmAtRoot(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".subvolkit-warm.") {
			names = append(names, e.Name())
		}
	}
	return names
}
