package subvol_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// fakeBackend is a minimal backend that rounds sizes up to a unit, counts
// calls and can be slowed down, to test what the Pool itself does.
type fakeBackend struct {
	mu      sync.Mutex
	unit    int64
	svs     map[string]*backend.Subvol
	creates atomic.Int32
	inside  atomic.Int32 // concurrent calls inside Create for one name
	maxIn   atomic.Int32
	delay   time.Duration
	closed  bool
}

func newFake(unit int64) *fakeBackend {
	return &fakeBackend{unit: unit, svs: map[string]*backend.Subvol{}}
}

func (f *fakeBackend) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	f.creates.Add(1)
	n := f.inside.Add(1)
	defer f.inside.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.svs[req.Name]; ok {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "create", req.Name, "exists")
	}
	size, _ := quota.RoundUp(req.SizeBytes, f.unit)
	sv := &backend.Subvol{Name: req.Name, ID: "id-" + req.Name, SizeBytes: size}
	f.svs[req.Name] = sv
	return sv, nil
}

func (f *fakeBackend) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sv, ok := f.svs[name]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, "get", name, "missing")
	}
	c := *sv
	return &c, nil
}

func (f *fakeBackend) Delete(ctx context.Context, name string, _ *backend.DeleteOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.svs[name]; !ok {
		return subvolkit.Errorf(subvolkit.NotFound, "delete", name, "missing")
	}
	delete(f.svs, name)
	return nil
}

func (f *fakeBackend) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.svs {
		if n > opts.PageToken {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	page := &backend.ListPage{}
	for _, n := range names {
		if len(page.Subvols) == 2 { // tiny pages, to exercise paging
			page.NextPageToken = page.Subvols[1].Name
			break
		}
		page.Subvols = append(page.Subvols, f.svs[n])
	}
	return page, nil
}

func (f *fakeBackend) Close() error { f.closed = true; return nil }

func TestAllocateIdempotency(t *testing.T) {
	ctx := context.Background()
	f := newFake(quota.GiB)
	p := subvol.NewPool(f, nil)

	sv, err := p.Allocate(ctx, "a", 1536*quota.MiB, nil)
	require.NoError(t, err)
	assert.Equal(t, 2*quota.GiB, sv.SizeBytes, "backend rounding is reported")

	again, err := p.Allocate(ctx, "a", 1536*quota.MiB, nil)
	require.NoError(t, err, "same request again returns the existing subvolume")
	assert.Equal(t, sv.ID, again.ID)

	_, err = p.Allocate(ctx, "a", 2*quota.GiB, nil)
	assert.NoError(t, err, "a size the rounded subvolume satisfies")

	_, err = p.Allocate(ctx, "a", 3*quota.GiB, nil)
	assert.True(t, errors.Is(err, subvolkit.ErrAlreadyExists), "bigger: %v", err)
	assert.Contains(t, err.Error(), `"a"`, "error names the subvolume")

	_, err = p.Allocate(ctx, "a", quota.GiB, &subvol.AllocateOptions{LimitBytes: quota.GiB})
	assert.True(t, errors.Is(err, subvolkit.ErrAlreadyExists), "existing 2Gi is above the 1Gi limit: %v", err)

	_, err = p.Allocate(ctx, "b", 2*quota.GiB, &subvol.AllocateOptions{LimitBytes: quota.GiB})
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "limit below size: %v", err)
}

func TestInvalidInputNeverReachesTheBackend(t *testing.T) {
	ctx := context.Background()
	f := newFake(1)
	p := subvol.NewPool(f, &subvol.Options{MaxSizeBytes: quota.TiB})
	for _, c := range []struct {
		name string
		size int64
	}{{"", 1}, {"..", 1}, {"a/b", 1}, {"x\x00", 1}, {".hidden", 1}, {"ok", 0}, {"ok", -5}, {"ok", 2 * quota.TiB}} {
		_, err := p.Allocate(ctx, c.name, c.size, nil)
		assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%q %d: %v", c.name, c.size, err)
	}
	assert.Zero(t, f.creates.Load())
	_, err := p.Clone(ctx, "a", "a", nil)
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%v", err)
	err = p.Delete(ctx, "ok", &subvol.DeleteOptions{Policy: 42})
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%v", err)
}

func TestOptionalCapabilitiesReportUnimplemented(t *testing.T) {
	ctx := context.Background()
	p := subvol.NewPool(newFake(1), nil)
	_, err := p.Allocate(ctx, "a", 10, nil)
	require.NoError(t, err)
	_, err = p.Resize(ctx, "a", 20)
	assert.True(t, errors.Is(err, subvolkit.ErrUnimplemented), "%v", err)
	_, err = p.Usage(ctx, "a")
	assert.True(t, errors.Is(err, subvolkit.ErrUnimplemented), "%v", err)
	_, err = p.Clone(ctx, "a", "b", nil)
	assert.True(t, errors.Is(err, subvolkit.ErrUnimplemented), "%v", err)
	var target *fakeBackend
	assert.False(t, p.As(&target), "the fake does not implement Aser")
}

func TestDeleteMissingSucceeds(t *testing.T) {
	ctx := context.Background()
	p := subvol.NewPool(newFake(1), nil)
	assert.NoError(t, p.Delete(ctx, "never-existed", nil))
	_, err := p.Allocate(ctx, "x", 1, nil)
	require.NoError(t, err)
	assert.NoError(t, p.Delete(ctx, "x", nil))
	assert.NoError(t, p.Delete(ctx, "x", nil))
	_, err = p.Get(ctx, "x")
	assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
}

func TestSameNameIsSerialized(t *testing.T) {
	f := newFake(1)
	f.delay = 5 * time.Millisecond
	p := subvol.NewPool(f, nil)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sv, err := p.Allocate(context.Background(), "same", 100, nil)
			if assert.NoError(t, err) {
				ids[i] = sv.ID
			}
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, "id-same", id)
	}
	assert.Equal(t, int32(1), f.maxIn.Load(), "one Create at a time for one name")
}

func TestDistinctNamesRunConcurrently(t *testing.T) {
	f := newFake(1)
	f.delay = 20 * time.Millisecond
	p := subvol.NewPool(f, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := p.Allocate(context.Background(), fmt.Sprintf("n%d", i), 1, nil)
			assert.NoError(t, err)
		}(i)
	}
	wg.Wait()
	assert.Greater(t, f.maxIn.Load(), int32(1), "different names are not serialized by the Pool")
}

func TestListPagesAndClose(t *testing.T) {
	ctx := context.Background()
	f := newFake(1)
	p := subvol.NewPool(f, nil)
	for _, n := range []string{"e", "a", "d", "b", "c"} {
		_, err := p.Allocate(ctx, n, 1, nil)
		require.NoError(t, err)
	}
	all, err := p.List(ctx)
	require.NoError(t, err)
	var names []string
	for _, sv := range all {
		names = append(names, sv.Name)
	}
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, names)

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
	assert.True(t, f.closed)
	_, err = p.Get(ctx, "a")
	assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition), "%v", err)
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFake(1)
	p := subvol.NewPool(f, nil)
	_, err := p.Allocate(ctx, "a", 1, nil)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err))
	assert.Zero(t, f.creates.Load())
}
