package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// env is one real single-node GlusterFS cluster with a cli backend on it.
type env struct {
	c    *glustertest.Cluster
	b    *cli.Backend
	pool *subvol.Pool
	root string // a FUSE mount of the whole volume, for looking behind the backend
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	e := &env{c: c}
	e.b = openBackend(t, c, nil)
	e.pool = subvol.NewPool(e.b, nil)
	e.root = c.MountT(t, "")
	return e
}

func openBackend(t *testing.T, c *glustertest.Cluster, r cli.Runner, mods ...func(*cli.Options)) *cli.Backend {
	t.Helper()
	if r == nil {
		sr := &cli.ShellRunner{Command: c.Runner(1).Command}
		t.Cleanup(func() { sr.Close() })
		r = sr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cli.Prepare(ctx, r, c.Volume(), &cli.PrepareOptions{StrictQuota: true}))
	o := &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: r,
		MountDir: filepath.Join(t.TempDir(), "mnt"),
	}
	for _, m := range mods {
		m(o)
	}
	b, err := cli.Open(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// limits returns path -> hard limit from `quota list --xml` on the volume.
func (e *env) limits(t *testing.T) map[string]string {
	t.Helper()
	m, err := e.c.QuotaLimits(ctxT(t))
	require.NoError(t, err)
	return m
}

// limitsSettled returns the volume's limits once ok accepts them, or
// after 10 s the last ones read. `quota list` of the whole volume omits a
// row for a moment when quotad cannot look its directory up, as right
// after a crashed client's rename: a caller that needs every row asks
// again, within this bound, before it asserts.
func (e *env) limitsSettled(t *testing.T, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	lims := e.limits(t)
	for deadline := time.Now().Add(10 * time.Second); !ok(lims) && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		lims = e.limits(t)
	}
	return lims
}

// state is what the volume holds: top-level entries and quota limits.
func (e *env) state(t *testing.T) string {
	t.Helper()
	s, err := e.stateErr(ctxT(t))
	require.NoError(t, err)
	return s
}

func (e *env) stateErr(ctx context.Context) (string, error) {
	ents, err := os.ReadDir(e.root)
	if err != nil {
		return "", err
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	sort.Strings(names)
	lims, err := e.c.QuotaLimits(ctx)
	if err != nil {
		return "", err
	}
	// The trash is the background purger's: what it holds comes and goes
	// (TestReconcile and TestFaults check that it empties).
	for p := range lims {
		if strings.HasPrefix(p, "/.subvolkit/trash/") {
			delete(lims, p)
		}
	}
	return fmt.Sprintf("entries=%v limits=%v", names, lims), nil
}

// Open changes nothing on the volume: on a volume without quota it fails
// with FailedPrecondition and says to call Prepare; Prepare enables quota
// and the strict timeouts, idempotently, and Open then works.
func TestOpenNeedsPrepare(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1, Quota: glustertest.Bool(false)})
	ctx := ctxT(t)
	r := c.Runner(1)
	info := func() string {
		out, err := c.Gluster(ctx, "volume", "info", c.Volume())
		require.NoError(t, err)
		return out
	}
	require.NotContains(t, info(), "features.quota: on")

	_, err := cli.Open(ctx, &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: r, MountDir: filepath.Join(t.TempDir(), "mnt"),
	})
	require.Error(t, err)
	assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition), "%v", err)
	assert.Contains(t, err.Error(), "cli.Prepare")
	assert.NotContains(t, info(), "features.quota: on", "Open enabled quota")

	require.NoError(t, cli.Prepare(ctx, r, c.Volume(), &cli.PrepareOptions{StrictQuota: true}))
	got := info()
	assert.Contains(t, got, "features.quota: on")
	assert.Contains(t, got, "features.hard-timeout: 0")
	assert.Contains(t, got, "features.soft-timeout: 0")
	require.NoError(t, cli.Prepare(ctx, r, c.Volume(), &cli.PrepareOptions{StrictQuota: true}), "Prepare is idempotent")

	b := openBackend(t, c, r)
	pool := subvol.NewPool(b, nil)
	sv, err := pool.Allocate(ctx, "prepared", quota.MiB, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(quota.MiB), sv.SizeBytes)
	require.NoError(t, pool.Delete(ctx, "prepared", nil))

	err = cli.Prepare(ctx, r, "no-such-volume", nil)
	assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition) || errors.Is(err, subvolkit.ErrNotFound), "%v", err)
}

func TestPoolEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	sv, err := e.pool.Allocate(ctx, "e2e", 5*quota.MiB, &subvol.AllocateOptions{
		Owner: &subvol.Ownership{UID: 1000, GID: 2000, Mode: 0o2775},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(5*quota.MiB), sv.SizeBytes)
	assert.Equal(t, "/e2e", sv.Path)
	assert.Equal(t, e.c.Volume(), sv.Volume)
	assert.Equal(t, e.c.Servers(), sv.Servers)
	assert.Equal(t, "5242880", e.limits(t)["/e2e"], "limit set on the volume")

	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(e.root, "e2e"), &st))
	assert.Equal(t, uint32(1000), st.Uid)
	assert.Equal(t, uint32(2000), st.Gid)
	assert.Equal(t, uint32(0o2775), st.Mode&0o7777)

	got, err := e.pool.Get(ctx, "e2e")
	require.NoError(t, err)
	assert.Equal(t, sv.ID, got.ID)
	all, err := e.pool.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "e2e", all[0].Name)

	// Deep-mount the subvolume: df reports the quota, writes stop at it.
	mnt := e.c.MountT(t, sv.Path)
	assert.Equal(t, int64(5*quota.MiB), statfsSize(t, mnt), "df inside the deep mount shows the limit")
	written, werr := fillUntilError(t, filepath.Join(mnt, "fill"), 20*quota.MiB)
	require.Error(t, werr, "writing 20 MiB into a 5 MiB subvolume must fail")
	assert.True(t, errors.Is(werr, syscall.EDQUOT), "want EDQUOT, got %v", werr)
	// Gluster lets writes in flight overshoot a little (write-behind):
	// measured up to about 2 MiB with strict quota; bound it at 4 MiB.
	assert.LessOrEqual(t, written, int64(9*quota.MiB), "overshoot bounded")
	assert.GreaterOrEqual(t, written, int64(3*quota.MiB), "the limit is not hit early")
	t.Logf("wrote %d bytes into a 5 MiB subvolume before EDQUOT (overshoot %d)", written, written-5*quota.MiB)
	require.NoError(t, os.Remove(filepath.Join(mnt, "fill")))

	// Usage reflects what is there (poll: the marker accounts asynchronously).
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "one-mib"), bytes.Repeat([]byte{7}, int(quota.MiB)), 0o644))
	var us *quota.Usage
	require.Eventually(t, func() bool {
		us, err = e.pool.Usage(ctx, "e2e")
		return err == nil && us.Used >= quota.MiB && us.Used < 2*quota.MiB
	}, 30*time.Second, 200*time.Millisecond, "usage shows 1 MiB used: %+v %v", us, err)
	assert.Equal(t, int64(5*quota.MiB), us.Limit)
	assert.Equal(t, us.Limit-us.Used, us.Available)
	assert.Equal(t, int64(1), us.Files, "file count from the quota xattr")
	// The CLI agrees with what the backend read from the quota xattrs.
	viaCLI := subvol.NewPool(openBackend(t, e.c, nil, func(o *cli.Options) { o.NoQuotaAuxMount = true }), nil)
	cu, err := viaCLI.Usage(ctx, "e2e")
	require.NoError(t, err)
	assert.Equal(t, us.Limit, cu.Limit)
	assert.Equal(t, us.Used, cu.Used)

	// Resize: the new limit is in quota list and in df.
	sv, err = e.pool.Resize(ctx, "e2e", 12*quota.MiB)
	require.NoError(t, err)
	assert.Equal(t, int64(12*quota.MiB), sv.SizeBytes)
	assert.Equal(t, "12582912", e.limits(t)["/e2e"])
	require.Eventually(t, func() bool { return statfsSize(t, mnt) == 12*quota.MiB }, 20*time.Second, 100*time.Millisecond)
	// Shrinking below what is used is refused and changes nothing.
	_, err = e.pool.Resize(ctx, "e2e", 512*quota.KiB)
	assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
	assert.Equal(t, "12582912", e.limits(t)["/e2e"])

	// Clone keeps content, ownership, modes, symlinks and xattrs.
	require.NoError(t, os.Mkdir(filepath.Join(mnt, "d"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "d", "f"), []byte("hello"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(mnt, "d", "f"), 1234, 5678))
	require.NoError(t, os.Symlink("d/f", filepath.Join(mnt, "link")))
	require.NoError(t, syscall.Setxattr(filepath.Join(mnt, "d", "f"), "user.color", []byte("blue"), 0))
	cl, err := e.pool.Clone(ctx, "e2e", "e2e-clone", nil)
	require.NoError(t, err)
	assert.Equal(t, "e2e", cl.Source)
	assert.Equal(t, int64(12*quota.MiB), cl.SizeBytes, "a clone takes the source's size by default")
	assert.Equal(t, "12582912", e.limits(t)["/e2e-clone"])
	cdir := filepath.Join(e.root, "e2e-clone")
	b, err := os.ReadFile(filepath.Join(cdir, "d", "f"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	b, err = os.ReadFile(filepath.Join(cdir, "one-mib"))
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{7}, int(quota.MiB)), b)
	require.NoError(t, syscall.Lstat(filepath.Join(cdir, "d", "f"), &st))
	assert.Equal(t, [3]uint32{1234, 5678, 0o640}, [3]uint32{st.Uid, st.Gid, st.Mode & 0o7777})
	var srcSt syscall.Stat_t
	require.NoError(t, syscall.Lstat(filepath.Join(mnt, "d"), &srcSt))
	assert.Equal(t, uint32(0o2750), srcSt.Mode&0o7777, "mkdir in a setgid directory inherits setgid")
	require.NoError(t, syscall.Lstat(filepath.Join(cdir, "d"), &st))
	assert.Equal(t, srcSt.Mode&0o7777, st.Mode&0o7777)
	require.NoError(t, syscall.Lstat(cdir, &st))
	assert.Equal(t, [3]uint32{1000, 2000, 0o2775}, [3]uint32{st.Uid, st.Gid, st.Mode & 0o7777}, "clone root keeps the source's owner")
	link, err := os.Readlink(filepath.Join(cdir, "link"))
	require.NoError(t, err)
	assert.Equal(t, "d/f", link)
	xv := make([]byte, 16)
	n, err := syscall.Getxattr(filepath.Join(cdir, "d", "f"), "user.color", xv)
	require.NoError(t, err)
	assert.Equal(t, "blue", string(xv[:n]))
	// The clone is idempotent too.
	again, err := e.pool.Clone(ctx, "e2e", "e2e-clone", nil)
	require.NoError(t, err)
	assert.Equal(t, cl.ID, again.ID)

	// Delete: the limit goes first, then the directory; archive keeps data.
	require.NoError(t, e.pool.Delete(ctx, "e2e-clone", nil))
	assertGone(t, cdir)
	require.NoError(t, e.pool.Delete(ctx, "e2e", &subvol.DeleteOptions{Policy: subvol.DeletePolicyArchive}))
	lims := e.limits(t)
	assert.NotContains(t, lims, "/e2e")
	assert.NotContains(t, lims, "/e2e-clone")
	_, err = e.pool.Get(ctx, "e2e")
	assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
	archived, _ := filepath.Glob(filepath.Join(e.root, ".subvolkit", "archive", "e2e-*", "d", "f"))
	assert.Len(t, archived, 1, "archive keeps the data")
	// Deleting again succeeds (idempotent).
	require.NoError(t, e.pool.Delete(ctx, "e2e", nil))
}

// assertGone waits until path disappears from a second FUSE mount, whose
// dentry cache may show a removed entry for up to a second.
func assertGone(t *testing.T, path string) {
	t.Helper()
	assert.Eventually(t, func() bool {
		_, err := os.Stat(path)
		return os.IsNotExist(err)
	}, 10*time.Second, 50*time.Millisecond, "%s still exists", path)
}

func statfsSize(t *testing.T, path string) int64 {
	t.Helper()
	var s syscall.Statfs_t
	require.NoError(t, syscall.Statfs(path, &s))
	return int64(s.Blocks) * int64(s.Bsize)
}

// fillUntilError writes 256 KiB blocks with fsync until an error or max.
func fillUntilError(t *testing.T, path string, max int64) (int64, error) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	buf := bytes.Repeat([]byte{0xab}, 256*1024)
	var n int64
	for n < max {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return n, err
		}
	}
	return n, f.Close()
}

func TestConcurrentAllocate(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	t.Run("DistinctNames", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = e.pool.Allocate(ctx, fmt.Sprintf("par-%02d", i), int64(i+1)*quota.MiB, nil)
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "allocate %d", i)
		}
		lims := e.limits(t)
		for i := range errs {
			assert.Equal(t, fmt.Sprint(int64(i+1)*quota.MiB), lims[fmt.Sprintf("/par-%02d", i)])
		}
	})

	t.Run("SameNameTwoBackends", func(t *testing.T) {
		// Two backends with their own mounts stand for two processes.
		other := subvol.NewPool(openBackend(t, e.c, nil), nil)
		pools := []*subvol.Pool{e.pool, other}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				sv, err := pools[i%2].Allocate(ctx, "same", 3*quota.MiB, nil)
				errs[i] = err
				if err == nil {
					ids[i] = sv.ID
				}
			}(i)
		}
		wg.Wait()
		for i := range ids {
			require.NoError(t, errs[i], "allocate %d", i)
			assert.Equal(t, ids[0], ids[i])
		}
		matches, _ := filepath.Glob(filepath.Join(e.root, "same*"))
		assert.Len(t, matches, 1)
		assert.Equal(t, "3145728", e.limits(t)["/same"])
		// A bigger size for the same name is a conflict.
		_, err := e.pool.Allocate(ctx, "same", 4*quota.MiB, nil)
		assert.True(t, errors.Is(err, subvolkit.ErrAlreadyExists), "%v", err)
	})
}

func TestBadInputCreatesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	_, err := e.pool.Allocate(ctx, "keep", quota.MiB, nil)
	require.NoError(t, err)
	before := e.state(t)
	cases := []struct {
		name string
		size int64
		kind subvolkit.Kind
	}{
		{"..", quota.MiB, subvolkit.InvalidArgument},
		{"../etc", quota.MiB, subvolkit.InvalidArgument},
		{"a/b", quota.MiB, subvolkit.InvalidArgument},
		{"", quota.MiB, subvolkit.InvalidArgument},
		{"nul\x00x", quota.MiB, subvolkit.InvalidArgument},
		{".hidden", quota.MiB, subvolkit.InvalidArgument},
		{strings.Repeat("x", 200), quota.MiB, subvolkit.InvalidArgument},
		{"zero", 0, subvolkit.InvalidArgument},
		{"negative", -1, subvolkit.InvalidArgument},
		{"huge", 1 << 60, subvolkit.InvalidArgument},
	}
	for _, c := range cases {
		_, err := e.pool.Allocate(ctx, c.name, c.size, nil)
		assert.Equal(t, c.kind, subvolkit.KindOf(err), "allocate(%q, %d): %v", c.name, c.size, err)
	}
	for _, s := range []string{"", "abc", "-1Gi", "10XB"} {
		_, err := quota.ParseQuantity(s)
		assert.True(t, s == "" || errors.Is(err, subvolkit.ErrInvalidArgument), "ParseQuantity(%q): %v", s, err)
	}
	_, err = e.pool.Resize(ctx, "keep", 1<<60)
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	_, err = e.pool.Clone(ctx, "keep", "../x", nil)
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	_, err = e.pool.Clone(ctx, "keep", "smaller", &subvol.CloneOptions{SizeBytes: quota.KiB})
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	_, err = e.pool.Clone(ctx, "missing", "c", nil)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
	assert.Equal(t, before, e.state(t), "bad input changed the volume")
}

// cancelRunner cancels a context when it sees a CLI call matching match,
// either before running it or after.
type cancelRunner struct {
	inner  cli.Runner
	match  string
	after  bool
	cancel context.CancelFunc
	once   sync.Once
}

func (r *cancelRunner) Run(ctx context.Context, args ...string) ([]byte, []byte, error) {
	hit := strings.Contains(strings.Join(args, " "), r.match)
	if hit && !r.after {
		r.once.Do(r.cancel)
	}
	out, errOut, err := r.inner.Run(ctx, args...)
	if hit && r.after {
		r.once.Do(r.cancel)
	}
	return out, errOut, err
}

func TestCancelMidAllocateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		match string
		after bool
		cliRB bool // read limits back through the CLI (no quota aux mount)
	}{
		{"limit-usage", false, false}, // cancelled before the limit is set
		{"limit-usage", true, false},  // cancelled after the limit is set
		{" list ", false, true},       // cancelled before a CLI read-back
	} {
		t.Run(fmt.Sprintf("%s-after-%v", strings.TrimSpace(c.match), c.after), func(t *testing.T) {
			before := e.state(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &cancelRunner{inner: e.c.Runner(1), match: c.match, after: c.after, cancel: cancel}
			pool := subvol.NewPool(openBackend(t, e.c, r, func(o *cli.Options) { o.NoQuotaAuxMount = c.cliRB }), nil)
			_, err := pool.Allocate(ctx, "cancelled", 2*quota.MiB, nil)
			require.Error(t, err)
			assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err), "%v", err)
			assert.Equal(t, before, e.state(t), "a cancelled allocate left something behind")
		})
	}
}

func TestOwnerMarkerAndRecovery(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	// A directory we did not make is never removed or handed out.
	require.NoError(t, os.Mkdir(filepath.Join(e.root, "foreign"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "foreign", "precious"), []byte("x"), 0o644))
	err := e.pool.Delete(ctx, "foreign", nil)
	assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
	_, err = e.pool.Allocate(ctx, "foreign", quota.MiB, nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)
	_, err = os.Stat(filepath.Join(e.root, "foreign", "precious"))
	assert.NoError(t, err, "foreign data kept")

	// A half-made subvolume (crash after mkdir, marker and limit, before
	// "ready") is invisible, and the next Allocate replaces it.
	half := filepath.Join(e.root, "half")
	require.NoError(t, os.Mkdir(half, 0o700))
	require.NoError(t, syscall.Setxattr(half, "trusted.subvolkit.v1", []byte(`{"state":"creating","name":"half","size":1048576}`), 0))
	out, err := e.c.Gluster(ctx, "volume", "quota", e.c.Volume(), "limit-usage", "/half", "1048576")
	require.NoError(t, err, out)
	_, err = e.pool.Get(ctx, "half")
	assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
	sv, err := e.pool.Allocate(ctx, "half", 3*quota.MiB, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(3*quota.MiB), sv.SizeBytes)
	assert.Equal(t, "3145728", e.limits(t)["/half"])

	// A half-made subvolume is removed, not archived, whatever the policy.
	half2 := filepath.Join(e.root, "half2")
	require.NoError(t, os.Mkdir(half2, 0o700))
	require.NoError(t, syscall.Setxattr(half2, "trusted.subvolkit.v1", []byte(`{"state":"creating","name":"half2","size":1048576}`), 0))
	require.NoError(t, e.pool.Delete(ctx, "half2", &subvol.DeleteOptions{Policy: subvol.DeletePolicyArchive}))
	assertGone(t, half2)
	archived, _ := filepath.Glob(filepath.Join(e.root, ".subvolkit", "archive", "half2-*"))
	assert.Empty(t, archived)

	// Retain keeps data and limit but frees nothing; the name stays taken.
	require.NoError(t, os.WriteFile(filepath.Join(half, "data"), []byte("keep me"), 0o644))
	require.NoError(t, e.pool.Delete(ctx, "half", &subvol.DeleteOptions{Policy: subvol.DeletePolicyRetain}))
	_, err = e.pool.Get(ctx, "half")
	assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
	b, err := os.ReadFile(filepath.Join(half, "data"))
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	_, err = e.pool.Allocate(ctx, "half", 3*quota.MiB, nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)
	// An explicit delete removes a retained subvolume, limit first.
	require.NoError(t, e.b.Delete(ctx, "half", nil))
	assert.NotContains(t, e.limits(t), "/half")
	assertGone(t, half)
}

// fuseClientPID returns the pid of the glusterfs client whose command line
// ends with the mount point mnt (mount.glusterfs and the aux mount both put
// it last).
func fuseClientPID(t *testing.T, mnt string) int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("glusterfs")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if args[len(args)-1] == mnt {
			var pid int
			_, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid)
			require.NoError(t, err)
			return pid
		}
	}
	t.Fatalf("no glusterfs client for %s", mnt)
	return 0
}

// killAndWait kills a FUSE client we started and waits until the mount
// answers as dead.
func killAndWait(t *testing.T, pid int, mnt string) {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		var st syscall.Statfs_t
		err := syscall.Statfs(mnt, &st)
		return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
	}, 10*time.Second, 20*time.Millisecond, "%s did not die", mnt)
}

func TestSurvivesDeadFUSEClients(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	var b *cli.Backend
	require.True(t, e.pool.As(&b))
	mnt := b.MountPath()

	// The backend's own mount dies: the next call mounts the volume again.
	killAndWait(t, fuseClientPID(t, mnt), mnt)
	sv, err := e.pool.Allocate(ctx, "after-main-death", 2*quota.MiB, nil)
	require.NoError(t, err)
	assert.Equal(t, "2097152", e.limits(t)["/after-main-death"])
	assert.NotZero(t, fuseClientPID(t, mnt), "a new client serves the mount")

	// The quota aux mount dies: limits are still read back (it is
	// mounted again, or the CLI is used).
	aux := filepath.Join(filepath.Dir(mnt), "quota")
	killAndWait(t, fuseClientPID(t, aux), aux)
	_, err = e.pool.Resize(ctx, "after-main-death", 3*quota.MiB)
	require.NoError(t, err)
	u, err := e.pool.Usage(ctx, sv.Name)
	require.NoError(t, err)
	assert.Equal(t, int64(3*quota.MiB), u.Limit)

	// The list mount dies: the next List with usage mounts it again.
	page, err := e.pool.ListPage(ctx, &subvol.ListOptions{WithUsage: true})
	require.NoError(t, err)
	require.Len(t, page.Subvols, 1)
	list := filepath.Join(filepath.Dir(mnt), "list")
	killAndWait(t, fuseClientPID(t, list), list)
	page, err = e.pool.ListPage(ctx, &subvol.ListOptions{WithUsage: true})
	require.NoError(t, err)
	require.Len(t, page.Subvols, 1)
	require.NotNil(t, page.Subvols[0].Usage)
	assert.Equal(t, int64(3*quota.MiB), page.Subvols[0].Usage.Limit)
	assert.NotZero(t, fuseClientPID(t, list), "a new client serves the list mount")

	require.NoError(t, e.pool.Delete(ctx, sv.Name, nil))
	assert.NotContains(t, e.limits(t), "/after-main-death")
}

// TestWedgedClientDuringClone: the backend's glusterfs client stops
// answering in the middle of a copy (stopped here with SIGSTOP; GlusterFS
// 10.3's client was seen to hang so in its crash handler after an ENOSPC).
// The Clone does not wait forever: once a statfs of the mount has gone
// unanswered for WedgeTimeout, the mount's FUSE connection is aborted, the
// Clone fails as Unavailable with nothing left behind, and the next call
// works through a mount made again.
func TestWedgedClientDuringClone(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	e := &env{c: c, root: c.MountT(t, "")}
	e.b = openBackend(t, c, nil, func(o *cli.Options) { o.WedgeTimeout = 2 * time.Second })
	e.pool = subvol.NewPool(e.b, nil)
	ctx := ctxT(t)
	src, err := e.pool.Allocate(ctx, "src", 8*quota.MiB, nil)
	require.NoError(t, err)
	sum := fill(t, filepath.Join(e.root, src.Path), 2)
	before := e.state(t)

	mnt := e.b.MountPath()
	pid := fuseClientPID(t, mnt)
	stopped := false
	t.Cleanup(func() {
		if stopped {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the client this test stopped
		}
	})
	// Right before the copy (the limit is set), the client stops answering.
	cli.SetFailpointHook(e.b, func(step string) {
		if step == "clone:limit" {
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			stopped = true
		}
	})
	start := time.Now()
	_, err = e.pool.Clone(ctx, "src", "cl", nil)
	took := time.Since(start)
	cli.SetFailpointHook(e.b, func(string) {})
	require.Error(t, err)
	require.True(t, stopped, "the failpoint was reached")
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
	assert.True(t, errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED), "%v", err)
	assert.Less(t, took, 30*time.Second, "the Clone returned once the client was found wedged")
	t.Logf("Clone with a wedged client failed after %v: %v", took.Round(time.Millisecond), err)
	// The stopped client is ended (by its PID) before its successor is
	// looked for: both name the mount in their command lines.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, os.ErrNotExist)
	}, 10*time.Second, 20*time.Millisecond, "the stopped client did not end")
	stopped = false
	assert.NotEqual(t, pid, fuseClientPID(t, mnt), "a new client serves the mount")

	// Nothing left behind, and the next Clone works.
	e.checkClean(t, e.b, e.pool)
	assert.Equal(t, before, e.state(t))
	cl, err := e.pool.Clone(ctx, "src", "cl", nil)
	require.NoError(t, err)
	assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, cl.Path)))
}
