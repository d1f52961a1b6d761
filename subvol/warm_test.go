package subvol_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

func TestParseWarmClasses(t *testing.T) {
	got, err := subvol.ParseWarmClasses(" 1Gi:20, 512Mi:0 ")
	require.NoError(t, err)
	assert.Equal(t, []subvol.WarmClass{{SizeBytes: quota.GiB, Count: 20}, {SizeBytes: 512 * quota.MiB, Count: 0}}, got)
	assert.Equal(t, "1Gi:20", got[0].String())
	got, err = subvol.ParseWarmClasses("")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"1Gi", "1Gi:", ":3", "1Gi:-1", "0:3", "-1Gi:3", "1Gi:x", "1Gi:20,", "1Qi:2", "1Gi:100001"} {
		_, err := subvol.ParseWarmClasses(bad)
		assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%q: %v", bad, err)
	}
}

func FuzzParseWarmClasses(f *testing.F) {
	for _, s := range []string{"1Gi:20", "1Gi:20,10Gi:5", "", "1G:1", "5:5", "1Ei:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := subvol.ParseWarmClasses(s)
		if err != nil {
			if !errors.Is(err, subvolkit.ErrInvalidArgument) {
				t.Fatalf("%q: error of another kind: %v", s, err)
			}
			return
		}
		var parts []string
		for _, c := range cs {
			if c.SizeBytes <= 0 || c.Count < 0 || c.Count > subvol.MaxWarmCount {
				t.Fatalf("%q: bad class %+v", s, c)
			}
			parts = append(parts, c.String())
		}
		// What String writes reads back the same.
		again, err := subvol.ParseWarmClasses(strings.Join(parts, ","))
		if err != nil || len(again) != len(cs) {
			t.Fatalf("%q: round trip %v: %v", s, again, err)
		}
		for i := range cs {
			if again[i] != cs[i] {
				t.Fatalf("%q: round trip %+v != %+v", s, again[i], cs[i])
			}
		}
	})
}

// TestWarmPool checks the Pool's side of warm subvolumes on the memory
// backend: bad input, Allocate served warm and refilled, a miss when the
// stock is empty, Close stopping the refiller, and a backend without them.
func TestWarmPool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := memory.New(&memory.Options{MaxSizeBytes: 100 * quota.GiB})
	p := subvol.NewPool(b, &subvol.Options{MaxSizeBytes: 10 * quota.GiB})

	for _, bad := range [][]subvol.WarmClass{
		{{SizeBytes: 0, Count: 1}},
		{{SizeBytes: 20 * quota.GiB, Count: 1}}, // above the Pool's maximum
		{{SizeBytes: quota.GiB, Count: subvol.MaxWarmCount + 1}},
		{{SizeBytes: quota.GiB, Count: 1}, {SizeBytes: quota.GiB, Count: 2}},
	} {
		err := p.SetWarm(bad)
		assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%v: %v", bad, err)
	}
	assert.Empty(t, p.WarmStatus(), "a refused SetWarm changes nothing")

	require.NoError(t, p.SetWarm([]subvol.WarmClass{{SizeBytes: quota.GiB, Count: 3}}))
	require.NoError(t, p.WaitWarm(ctx))
	counts, err := b.WarmCounts(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[int64]int{quota.GiB: 3}, counts)
	assert.Equal(t, 3*quota.GiB, b.Allocated(), "warm stock counts against the capacity")

	for i := range 5 {
		_, err := p.Allocate(ctx, fmt.Sprintf("w%d", i), quota.GiB, nil)
		require.NoError(t, err)
	}
	_, err = p.Allocate(ctx, "other-size", 2*quota.GiB, nil)
	require.NoError(t, err)
	require.NoError(t, p.WaitWarm(ctx))
	st := p.WarmStatus()
	require.Len(t, st, 1)
	assert.Equal(t, 3, st[0].Ready)
	assert.Equal(t, uint64(5), st[0].Taken+st[0].Missed, "every Allocate of the size went warm or missed")
	assert.GreaterOrEqual(t, st[0].Taken, uint64(3))
	assert.Equal(t, 5, b.Len()-1, "five subvolumes of the class and one other")

	// Close stops the refiller and closes the backend after it.
	require.NoError(t, p.Close())
	err = p.SetWarm([]subvol.WarmClass{{SizeBytes: quota.GiB, Count: 1}})
	assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition), "%v", err)
}

// gatedWarm is the memory backend whose Warm waits for release, and
// reports its start and its end.
type gatedWarm struct {
	*memory.Backend
	started, done, release chan struct{}
}

func (g *gatedWarm) Warm(ctx context.Context, size int64) error {
	g.started <- struct{}{}
	defer func() { g.done <- struct{}{} }()
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Backend.Warm(ctx, size)
}

// TestDrainWaitsForRefill: a warm subvolume the refiller is making when the
// class is removed and the stock drained must not land after the drain.
func TestDrainWaitsForRefill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := &gatedWarm{Backend: memory.New(nil), started: make(chan struct{}, 8), done: make(chan struct{}, 8), release: make(chan struct{})}
	p := subvol.NewPool(g, nil)
	defer p.Close()
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
	require.NoError(t, p.SetWarm([]subvol.WarmClass{{SizeBytes: quota.GiB, Count: 1}}))
	wait(g.started, "the refiller never started a warm subvolume")
	require.NoError(t, p.SetWarm(nil))
	type result struct {
		n   int
		err error
	}
	drained := make(chan result, 1)
	go func() {
		n, err := p.DrainWarm(ctx)
		drained <- result{n, err}
	}()
	close(g.release)
	var r result
	select {
	case r = <-drained:
	case <-ctx.Done():
		t.Fatal("DrainWarm did not return")
	}
	wait(g.done, "the refiller's Warm did not end")
	require.NoError(t, r.err)
	counts, err := g.WarmCounts(ctx)
	require.NoError(t, err)
	assert.Zero(t, counts[quota.GiB], "a warm subvolume landed after the drain")
	assert.Equal(t, 1, r.n, "the drain removed the one being made")
	select {
	case <-g.started:
		t.Fatal("the refiller made another after the class was removed")
	default:
	}
}

func TestWarmUnimplemented(t *testing.T) {
	p := subvol.NewPool(newFake(1), nil)
	defer p.Close()
	err := p.SetWarm([]subvol.WarmClass{{SizeBytes: quota.GiB, Count: 1}})
	assert.True(t, errors.Is(err, subvolkit.ErrUnimplemented), "%v", err)
	_, err = p.DrainWarm(context.Background())
	assert.True(t, errors.Is(err, subvolkit.ErrUnimplemented), "%v", err)
}

// ExamplePool_SetWarm keeps ten 1 GiB subvolumes ready, so that a burst of
// claims of that size is served by renames.
func ExamplePool_SetWarm() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()
	classes, err := subvol.ParseWarmClasses("1Gi:10") // e.g. from a --warm flag
	if err != nil {
		panic(err)
	}
	if err := pool.SetWarm(classes); err != nil {
		panic(err)
	}
	if err := pool.WaitWarm(ctx); err != nil { // optional: wait for the stock
		panic(err)
	}
	sv, err := pool.Allocate(ctx, "pvc-0b7e", quota.GiB, nil)
	if err != nil {
		panic(err)
	}
	st := pool.WarmStatus()[0]
	fmt.Println(sv.Name, quota.FormatQuantity(sv.SizeBytes), "taken warm:", st.Taken)
	// Output: pvc-0b7e 1Gi taken warm: 1
}
