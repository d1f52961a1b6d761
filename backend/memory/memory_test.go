package memory_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// capacity is the memory backends' capacity in the conformance suite.
const capacity = 4 * quota.GiB

// harness runs the conformance suite against a memory backend, with or
// without a directory.
type harness struct {
	withDir bool
	dir     string
	b       *memory.Backend
}

func (h *harness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	opts := &memory.Options{Servers: []string{"10.0.0.1", "10.0.0.2"}, Volume: "vol0", MaxSizeBytes: capacity}
	if h.withDir {
		h.dir = t.TempDir()
		opts.Dir = h.dir
	}
	h.b = memory.New(opts)
	return h.b, nil
}

func (h *harness) Options() backendtest.Options {
	o := backendtest.Options{
		SizeUnit: 1, MaxSizeBytes: capacity,
		Capabilities: backendtest.Resize | backendtest.Clone | backendtest.Usage | backendtest.Ping | backendtest.Retain | backendtest.Archive | backendtest.Owner | backendtest.Labels | backendtest.Shrink | backendtest.Reconcile | backendtest.Snapshot | backendtest.Warm | backendtest.ListUsage,
		AsTypes:      []any{new(*memory.Backend)},
	}
	if h.withDir {
		o.WriteFile = func(ctx context.Context, sv *subvol.Subvol, path string, data []byte) error {
			p := filepath.Join(h.dir, sv.Path, filepath.FromSlash(path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		}
		o.ReadFile = func(ctx context.Context, sv *subvol.Subvol, path string) ([]byte, error) {
			return os.ReadFile(filepath.Join(h.dir, sv.Path, filepath.FromSlash(path)))
		}
		// What is on disk (outside the backend's own .trash) and in the
		// map, so that the suite sees a failed call that leaves a
		// directory behind.
		o.Snapshot = func(ctx context.Context) (string, error) {
			tree, err := treeListing(h.dir)
			if err != nil {
				return "", err
			}
			page, err := h.b.List(ctx, &backend.ListOptions{MaxResults: 1 << 20})
			if err != nil {
				return "", err
			}
			var b strings.Builder
			b.WriteString(tree)
			for _, sv := range page.Subvols {
				fmt.Fprintf(&b, "\nsubvol %s %s %d", sv.Name, sv.ID, sv.SizeBytes)
			}
			return b.String(), nil
		}
	}
	return o
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		t.Run(fmt.Sprintf("dir=%v", withDir), func(t *testing.T) {
			backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
				return &harness{withDir: withDir}, nil
			})
		})
	}
}

// treeListing lists every path under dir with its mode and, for regular
// files, size (a directory's size varies by file system), except the
// backend's .trash.
func treeListing(dir string) (string, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == ".trash" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		if info.Mode().IsRegular() {
			line += fmt.Sprintf(" %d", info.Size())
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n"), err
}

func newDirBackend(t *testing.T, capacity int64) (*memory.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	b := memory.New(&memory.Options{Dir: dir, MaxSizeBytes: capacity})
	t.Cleanup(func() { _ = b.Close() })
	return b, dir
}

func create(t *testing.T, b backend.Backend, name string, size int64) *backend.Subvol {
	t.Helper()
	sv, err := b.Create(t.Context(), &backend.CreateRequest{Name: name, SizeBytes: size})
	require.NoError(t, err)
	return sv
}

func TestDefaults(t *testing.T) {
	b := memory.New(nil)
	sv := create(t, b, "a", 10)
	assert.Equal(t, []string{memory.DefaultServer}, sv.Servers)
	assert.Equal(t, memory.DefaultVolume, sv.Volume)
	assert.Equal(t, "/a", sv.Path)
	assert.Equal(t, uint32(0o755), sv.Mode)
	assert.Equal(t, 0, sv.UID)
	assert.False(t, sv.Created.IsZero())
	// Unlimited capacity.
	create(t, b, "huge", 1<<62)
	assert.Equal(t, int64(10+1<<62), b.Allocated())
}

func TestCapacityAccounting(t *testing.T) {
	ctx := t.Context()
	b := memory.New(&memory.Options{MaxSizeBytes: 10 * quota.MiB})
	create(t, b, "a", 4*quota.MiB)
	create(t, b, "b", 4*quota.MiB)
	require.Equal(t, 8*quota.MiB, b.Allocated())

	_, err := b.Create(ctx, &backend.CreateRequest{Name: "c", SizeBytes: 3 * quota.MiB})
	require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
	assert.Contains(t, err.Error(), `"c"`)
	assert.Contains(t, err.Error(), "only 2 MiB of 10 MiB is free")
	create(t, b, "c", 2*quota.MiB) // exactly what is free

	// Growing needs free space; shrinking frees it.
	_, err = b.Resize(ctx, "a", 5*quota.MiB)
	require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
	_, err = b.Resize(ctx, "a", 1*quota.MiB)
	require.NoError(t, err)
	require.Equal(t, 7*quota.MiB, b.Allocated())
	_, err = b.Resize(ctx, "b", 7*quota.MiB)
	require.NoError(t, err)
	require.Equal(t, 10*quota.MiB, b.Allocated())

	// A clone needs room for its own size.
	_, err = b.Clone(ctx, &backend.CloneRequest{Source: "a", Name: "a2"})
	require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)

	// Every delete policy gives the space back.
	for name, policy := range map[string]backend.DeletePolicy{
		"a": backend.DeletePolicyDelete, "b": backend.DeletePolicyRetain, "c": backend.DeletePolicyArchive,
	} {
		require.NoError(t, b.Delete(ctx, name, &backend.DeleteOptions{Policy: policy}))
	}
	require.Equal(t, int64(0), b.Allocated())
	require.Equal(t, 0, b.Len())
	create(t, b, "full", 10*quota.MiB)
}

func TestConcurrentCapacity(t *testing.T) {
	// 100 goroutines race for room for 10 subvolumes.
	b := memory.New(&memory.Options{MaxSizeBytes: 10 * quota.MiB})
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = b.Create(t.Context(), &backend.CreateRequest{Name: fmt.Sprintf("s%03d", i), SizeBytes: quota.MiB})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
	}
	require.Equal(t, 10, ok)
	require.Equal(t, 10*quota.MiB, b.Allocated())
}

func TestDirLayoutAndPolicies(t *testing.T) {
	ctx := t.Context()
	b, dir := newDirBackend(t, 0)
	for _, n := range []string{"del", "ret", "arc"} {
		sv := create(t, b, n, quota.MiB)
		require.NoError(t, os.WriteFile(filepath.Join(dir, sv.Path, "f"), []byte(n), 0o644))
	}
	arc, err := b.Get(ctx, "arc")
	require.NoError(t, err)

	require.NoError(t, b.Delete(ctx, "del", nil))
	assert.NoDirExists(t, filepath.Join(dir, "del"))

	require.NoError(t, b.Delete(ctx, "ret", &backend.DeleteOptions{Policy: backend.DeletePolicyRetain}))
	data, err := os.ReadFile(filepath.Join(dir, "ret", "f"))
	require.NoError(t, err, "retained data stays where it was")
	assert.Equal(t, "ret", string(data))

	require.NoError(t, b.Delete(ctx, "arc", &backend.DeleteOptions{Policy: backend.DeletePolicyArchive}))
	assert.NoDirExists(t, filepath.Join(dir, "arc"))
	data, err = os.ReadFile(filepath.Join(dir, ".archive", "arc-"+arc.ID, "f"))
	require.NoError(t, err, "archived data moves under .archive")
	assert.Equal(t, "arc", string(data))

	// Nothing of the deleted subvolume is left, not even in the trash.
	entries, err := os.ReadDir(filepath.Join(dir, ".trash"))
	require.NoError(t, err)
	assert.Empty(t, entries)

	// Retained data is never adopted or overwritten by a new subvolume.
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "ret", SizeBytes: quota.MiB})
	require.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)
	_, err = os.Stat(filepath.Join(dir, "ret", "f"))
	require.NoError(t, err)
	// An archived name is free again.
	sv := create(t, b, "arc", quota.MiB)
	entries, err = os.ReadDir(filepath.Join(dir, sv.Path))
	require.NoError(t, err)
	assert.Empty(t, entries, "a new subvolume starts empty")
}

func TestDirMissing(t *testing.T) {
	b := memory.New(&memory.Options{Dir: filepath.Join(t.TempDir(), "nope")})
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "a", SizeBytes: 1})
	require.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
	require.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(b.Ping(t.Context())))
	require.Equal(t, 0, b.Len())
}

func TestDirOwnership(t *testing.T) {
	b, dir := newDirBackend(t, 0)
	sv, err := b.Create(t.Context(), &backend.CreateRequest{
		Name: "o", SizeBytes: 1, Owner: &backend.Ownership{UID: -1, GID: -1, Mode: 0o2770},
	})
	require.NoError(t, err)
	assert.Equal(t, uint32(0o2770), sv.Mode)
	fi, err := os.Stat(filepath.Join(dir, "o"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o770)|os.ModeSetgid|os.ModeDir, fi.Mode())
	assert.Equal(t, os.Getuid(), sv.UID)

	_, err = b.Create(t.Context(), &backend.CreateRequest{
		Name: "bad", SizeBytes: 1, Owner: &backend.Ownership{UID: -1, GID: -1, Mode: 0o10000},
	})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	assert.NoDirExists(t, filepath.Join(dir, "bad"))
}

func TestDirShrinkBelowUsed(t *testing.T) {
	ctx := t.Context()
	b, dir := newDirBackend(t, 0)
	create(t, b, "s", quota.MiB)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s", "f"), make([]byte, 300<<10), 0o644))
	_, err := b.Resize(ctx, "s", 200<<10)
	require.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
	assert.Contains(t, err.Error(), `"s"`)
	sv, err := b.Get(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, quota.MiB, sv.SizeBytes)
	sv, err = b.Resize(ctx, "s", 300<<10)
	require.NoError(t, err)
	assert.Equal(t, int64(300<<10), sv.SizeBytes)

	u, err := b.Usage(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, quota.Usage{Limit: 300 << 10, Used: 300 << 10, Available: 0, Files: 1, Dirs: 0}, *u)
	assert.True(t, u.Exceeded())
}

func TestDirCloneCopiesTree(t *testing.T) {
	ctx := t.Context()
	b, dir := newDirBackend(t, 0)
	create(t, b, "src", quota.MiB)
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "ro", "deep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "ro", "deep", "x"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink("ro/deep/x", filepath.Join(src, "link")))
	require.NoError(t, os.Chmod(filepath.Join(src, "ro"), 0o555))
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })

	sv, err := b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "dst"})
	require.NoError(t, err)
	assert.Equal(t, "src", sv.Source)
	dst := filepath.Join(dir, "dst")
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	want, err := treeListing(src)
	require.NoError(t, err)
	got, err := treeListing(dst)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	link, err := os.Readlink(filepath.Join(dst, "link"))
	require.NoError(t, err)
	assert.Equal(t, "ro/deep/x", link)

	u, err := b.Usage(ctx, "dst")
	require.NoError(t, err)
	assert.Equal(t, int64(1), u.Used)
	assert.Equal(t, int64(2), u.Files) // x and link
	assert.Equal(t, int64(2), u.Dirs)  // ro and ro/deep
}

func TestCloneCanceledMidCopyLeavesNothing(t *testing.T) {
	b, dir := newDirBackend(t, 0)
	create(t, b, "src", quota.MiB)
	for i := range 200 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "src", fmt.Sprintf("f%03d", i)), []byte("x"), 0o644))
	}
	// A context that is cancelled once the copy has started: the walk
	// checks it between entries, and Err reports cancellation after a few
	// checks.
	ctx := &cancelAfter{Context: t.Context(), n: 50}
	_, err := b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "dst"})
	require.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err), "%v", err)
	assert.NoDirExists(t, filepath.Join(dir, "dst"))
	_, err = b.Get(t.Context(), "dst")
	require.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err))
	require.Equal(t, quota.MiB, b.Allocated())
}

// cancelAfter is a context whose Err starts reporting context.Canceled after
// n calls.
type cancelAfter struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

func TestListPagingAndBadOptions(t *testing.T) {
	ctx := t.Context()
	b := memory.New(nil)
	for _, n := range []string{"c", "a", "b", "e", "d"} {
		create(t, b, n, 1)
	}
	var got []string
	opts := &backend.ListOptions{MaxResults: 2}
	for {
		page, err := b.List(ctx, opts)
		require.NoError(t, err)
		for _, sv := range page.Subvols {
			got = append(got, sv.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		opts = &backend.ListOptions{MaxResults: 2, PageToken: page.NextPageToken}
	}
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, got)

	_, err := b.List(ctx, &backend.ListOptions{MaxResults: -1})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	_, err = b.List(ctx, &backend.ListOptions{PageToken: "../x"})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	// A token of a deleted name still continues after it.
	require.NoError(t, b.Delete(ctx, "b", nil))
	page, err := b.List(ctx, &backend.ListOptions{PageToken: "b"})
	require.NoError(t, err)
	require.Len(t, page.Subvols, 3)
	assert.Equal(t, "c", page.Subvols[0].Name)
}

func TestRawCreateValidates(t *testing.T) {
	// The Pool validates, but a raw Create must not escape Dir either.
	b, dir := newDirBackend(t, 0)
	for _, name := range []string{"../escape", "a/b", "", ".archive"} {
		_, err := b.Create(t.Context(), &backend.CreateRequest{Name: name, SizeBytes: 1})
		require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%q: %v", name, err)
	}
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "z", SizeBytes: 0})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape"))
	require.True(t, os.IsNotExist(err))
	require.Equal(t, 0, b.Len())
}

func TestLabelsAreCopied(t *testing.T) {
	b := memory.New(nil)
	labels := map[string]string{"k": "v"}
	sv, err := b.Create(t.Context(), &backend.CreateRequest{Name: "l", SizeBytes: 1, Labels: labels})
	require.NoError(t, err)
	labels["k"] = "changed"
	sv.Labels["k"] = "changed too"
	got, err := b.Get(t.Context(), "l")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v"}, got.Labels)
}

func TestAs(t *testing.T) {
	b := memory.New(nil)
	p := subvol.NewPool(b, nil)
	var got *memory.Backend
	require.True(t, p.As(&got))
	assert.Same(t, b, got)
	var wrong *os.File
	assert.False(t, p.As(&wrong))
	assert.False(t, b.As((**memory.Backend)(nil)))
}

func TestClosed(t *testing.T) {
	b := memory.New(nil)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close is idempotent")
	require.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(b.Ping(t.Context())))
	_, err := b.Usage(t.Context(), "a")
	require.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err))
}

func TestRegistry(t *testing.T) {
	ctx := t.Context()
	require.Contains(t, backend.Names(), memory.Name)
	dir := t.TempDir()
	b, err := backend.Open(ctx, "memory", map[string]string{
		"servers": "h1, h2", "volume": "gv0", "capacity": "10Mi", "dir": dir,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	sv := create(t, b, "r", 4*quota.MiB)
	assert.Equal(t, []string{"h1", "h2"}, sv.Servers)
	assert.Equal(t, "gv0", sv.Volume)
	assert.DirExists(t, filepath.Join(dir, "r"))
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "r2", SizeBytes: 7 * quota.MiB})
	require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)

	// Through the Pool, as an application would.
	p, err := subvol.Open(ctx, "memory", map[string]string{"capacity": "1Gi"}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	_, err = p.Allocate(ctx, "big", quota.GiB+1, nil)
	require.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "gluster's GB is 1024-based: %v", err)

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, params := range []map[string]string{
		{"nosuch": "x"},
		{"capacity": "ten"},
		{"capacity": "0"},
		{"capacity": "-1Gi"},
		{"servers": "a,,b"},
		{"servers": ""},
		{"volume": ""},
		{"volume": "a/b"},
		{"dir": filepath.Join(dir, "missing")},
		{"dir": file},
	} {
		_, err := backend.Open(ctx, "memory", params)
		require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v: %v", params, err)
		for k := range params {
			assert.Contains(t, err.Error(), k, "the error names the parameter")
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = backend.Open(cctx, "memory", nil)
	require.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err))
}

func TestCloneSizes(t *testing.T) {
	ctx := t.Context()
	b := memory.New(nil)
	create(t, b, "src", 10)
	_, err := b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "small", SizeBytes: 9})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	sv, err := b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "same"})
	require.NoError(t, err)
	assert.Equal(t, int64(10), sv.SizeBytes)
	_, err = b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "src"})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	_, err = b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "p", Parameters: map[string]string{"x": "y"}})
	require.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	// An existing destination is reported before a missing source.
	_, err = b.Clone(ctx, &backend.CloneRequest{Source: "gone", Name: "same"})
	require.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err))
	names := []string{}
	page, err := b.List(ctx, nil)
	require.NoError(t, err)
	for _, sv := range page.Subvols {
		names = append(names, sv.Name)
	}
	assert.True(t, slices.Equal([]string{"same", "src"}, names), "%q", names)
}
