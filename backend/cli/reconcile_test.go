package cli_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	pool := e.pool
	gl := func(args ...string) {
		t.Helper()
		out, err := e.c.Gluster(ctx, args...)
		require.NoError(t, err, out)
	}
	mark := func(dir, js string) {
		t.Helper()
		require.NoError(t, syscall.Setxattr(dir, "trusted.subvolkit.v1", []byte(js), 0))
	}
	vol := e.c.Volume()
	meta := filepath.Join(e.root, ".subvolkit")

	// A staging leftover of a crashed create, with its limit.
	st := filepath.Join(meta, "staging", "st1.abc123")
	require.NoError(t, os.Mkdir(st, 0o700))
	mark(st, `{"state":"creating","name":"st1","size":1048576}`)
	gl("volume", "quota", vol, "limit-usage", "/.subvolkit/staging/st1.abc123", "1048576")
	// A "creating" directory of an older version at the root.
	half := filepath.Join(e.root, "half")
	require.NoError(t, os.Mkdir(half, 0o700))
	mark(half, `{"state":"creating","name":"half","size":1048576}`)
	gl("volume", "quota", vol, "limit-usage", "/half", "1048576")
	// An empty unmarked directory (an older version crashed after mkdir),
	// and a foreign one with data.
	require.NoError(t, os.Mkdir(filepath.Join(e.root, "empty1"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(e.root, "foreign"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "foreign", "keep"), []byte("x"), 0o644))
	// A resize interrupted after the limit was set.
	_, err := pool.Allocate(ctx, "rp", 2*quota.MiB, nil)
	require.NoError(t, err)
	mark(filepath.Join(e.root, "rp"), `{"state":"ready","name":"rp","size":2097152,"pending":4194304}`)
	gl("volume", "quota", vol, "limit-usage", "/rp", "4194304")
	// A limit changed behind the backend's back.
	_, err = pool.Allocate(ctx, "mm", 2*quota.MiB, nil)
	require.NoError(t, err)
	gl("volume", "quota", vol, "limit-usage", "/mm", "3145728")
	// An archive interrupted after the move (limit kept), and an old one.
	ar := filepath.Join(meta, "archive", "ar-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
	require.NoError(t, os.Mkdir(ar, 0o700))
	gl("volume", "quota", vol, "limit-usage", "/.subvolkit/archive/"+filepath.Base(ar), "1048576")
	old := filepath.Join(meta, "archive", "old-20200101T000000.000000000Z")
	require.NoError(t, os.Mkdir(old, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(old, "f"), []byte("old"), 0o644))
	// Its data is as old as its name says: the purge leaves files changed in
	// the last PurgeBusyAge alone (they may have a writer).
	long := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(old, "f"), long, long))
	require.NoError(t, os.Chtimes(old, long, long))
	// A live subvolume that must not be touched.
	_, err = pool.Allocate(ctx, "ok", 2*quota.MiB, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "ok", "f"), bytes.Repeat([]byte{1}, 4096), 0o644))

	// List shows broken and out-of-pool subvolumes on request only.
	live, err := pool.List(ctx)
	require.NoError(t, err)
	assert.Len(t, live, 3) // mm, ok, rp
	all, err := pool.ListAll(ctx)
	require.NoError(t, err)
	states := map[string]string{}
	for _, sv := range all {
		states[sv.Path] = sv.State
	}
	assert.Equal(t, backend.StateBroken, states["/half"])
	assert.Equal(t, backend.StateBroken, states["/rp"])
	assert.Equal(t, backend.StateBroken, states["/.subvolkit/staging/st1.abc123"])
	assert.Equal(t, "", states["/ok"])

	// Dry run: reports, changes nothing.
	before := e.state(t)
	rep, err := pool.Reconcile(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, before, e.state(t), "a dry run changed the volume")
	found := map[string]string{}
	for _, it := range rep.Items {
		assert.False(t, it.Repaired)
		found[it.Path] = it.Problem
	}
	want := map[string]string{
		"/.subvolkit/staging/st1.abc123": backend.ProblemHalfMade,
		"/half":                          backend.ProblemHalfMade,
		"/empty1":                        backend.ProblemUnmarked,
		"/foreign":                       backend.ProblemUnmarked,
		"/rp":                            backend.ProblemResizePending,
		"/mm":                            backend.ProblemLimitMismatch,
		"/.subvolkit/archive/" + filepath.Base(ar): backend.ProblemOrphanLimit,
	}
	for p, problem := range want {
		assert.Equal(t, problem, found[p], "problem at %s (report %+v)", p, rep.Items)
	}
	assert.NotContains(t, found, "/.subvolkit/archive/"+filepath.Base(old), "no retention given")

	// Repair.
	rep, err = pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true, ArchiveRetention: 24 * time.Hour})
	require.NoError(t, err)
	for _, it := range rep.Items {
		if it.Path == "/foreign" {
			assert.False(t, it.Repaired, "foreign data is never removed")
			continue
		}
		assert.True(t, it.Repaired, "%+v", it)
	}
	t.Logf("repair: %d scanned, %d items in %v", rep.Scanned, len(rep.Items), rep.Duration)
	sv, err := pool.Get(ctx, "rp")
	require.NoError(t, err)
	assert.Equal(t, int64(4*quota.MiB), sv.SizeBytes)
	lims := e.limits(t)
	assert.Equal(t, "4194304", lims["/rp"])
	assert.Equal(t, "2097152", lims["/mm"])
	assert.Equal(t, "2097152", lims["/ok"])
	assertGone(t, half)
	assertGone(t, filepath.Join(e.root, "empty1"))
	assertGone(t, old)
	_, err = os.Stat(filepath.Join(e.root, "foreign", "keep"))
	assert.NoError(t, err, "foreign data kept")
	_, err = os.Stat(ar)
	assert.NoError(t, err, "a recent archive is kept")

	// Afterwards only the foreign directory is reported, and the volume
	// holds complete subvolumes only.
	require.NoError(t, os.RemoveAll(filepath.Join(e.root, "foreign")))
	rep, err = pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
	require.NoError(t, err)
	for _, it := range rep.Items {
		assert.Equal(t, backend.ProblemTrash, it.Problem, "%+v", it)
	}
	e.checkClean(t, e.b, pool)

	// A limit on a path removed behind the backend's back.
	require.NoError(t, os.Mkdir(filepath.Join(e.root, "gone"), 0o755))
	gl("volume", "quota", vol, "limit-usage", "/gone", "1048576")
	require.NoError(t, os.Remove(filepath.Join(e.root, "gone")))
	rep, err = pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
	t.Logf("after removing a limited path: %+v %v", rep, err)
	if err != nil {
		assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
		require.NotNil(t, rep)
		require.NotEmpty(t, rep.Items)
		assert.Equal(t, backend.ProblemOrphanLimit, rep.Items[len(rep.Items)-1].Problem)
	}
	// The documented way out: recreate the path, remove its limit.
	require.NoError(t, os.Mkdir(filepath.Join(e.root, "gone"), 0o755))
	_, _ = e.c.Gluster(ctx, "volume", "quota", vol, "remove", "/gone")
	require.NoError(t, os.Remove(filepath.Join(e.root, "gone")))
}

func TestDeleteBoundsOpenWriter(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	const limit = 200 * quota.MiB
	sv, err := e.pool.Allocate(ctx, "big", limit, nil)
	require.NoError(t, err)
	mnt := e.c.MountT(t, sv.Path)
	f, err := os.Create(filepath.Join(mnt, "f"))
	require.NoError(t, err)
	defer f.Close()
	buf := bytes.Repeat([]byte{0xcd}, int(quota.MiB))
	var written int64
	for written < 20*quota.MiB {
		n, err := f.Write(buf)
		written += int64(n)
		require.NoError(t, err)
	}
	t0 := time.Now()
	require.NoError(t, e.pool.Delete(ctx, "big", nil))
	took := time.Since(t0)
	t.Logf("delete returned in %v", took)
	lims := e.limits(t)
	assert.NotContains(t, lims, "/big")
	var inTrash []string
	for p, l := range lims {
		if filepath.Dir(p) == "/.subvolkit/trash" {
			inTrash = append(inTrash, p)
			assert.Equal(t, "209715200", l, "the deleted subvolume keeps its limit")
		}
	}
	assert.Len(t, inTrash, 1, "%v", lims)

	// The writer goes on until the limit stops it; it never gets far past.
	var werr error
	deadline := time.Now().Add(2 * time.Minute)
	for werr == nil && written < 2*limit && time.Now().Before(deadline) {
		var n int
		n, werr = f.Write(buf)
		written += int64(n)
		if werr == nil && written%(8*quota.MiB) == 0 {
			werr = f.Sync()
		}
	}
	t.Logf("writer stopped after %d bytes: %v", written, werr)
	require.Error(t, werr)
	assert.True(t, errors.Is(werr, syscall.EDQUOT), "%v", werr)
	assert.LessOrEqual(t, written, int64(limit+8*quota.MiB), "a writer in a deleted subvolume is bounded by its limit")
	// A retry a moment later is refused too.
	time.Sleep(time.Second)
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	assert.Error(t, err, "still bounded")
	if err := f.Close(); err != nil {
		assert.True(t, errors.Is(err, syscall.EDQUOT), "%v", err) // the last flush
	}

	// Once the writer is gone, the purge removes data and limit (bounded poll).
	var b = e.b
	require.Eventually(t, func() bool {
		st, err := b.Purge(ctx)
		return err == nil && st.Pending == 0
	}, 90*time.Second, time.Second, "purge: %+v", b.PurgeStatus())
	st := b.PurgeStatus()
	t.Logf("purge status: %+v", st)
	assert.GreaterOrEqual(t, st.BytesRemoved, int64(limit))
	lims = e.limits(t)
	for p := range lims {
		assert.NotContains(t, p, "/.subvolkit/", "limit left: %v", lims)
	}
	left, err := os.ReadDir(filepath.Join(e.root, ".subvolkit", "trash"))
	require.NoError(t, err)
	assert.Empty(t, left)
}
