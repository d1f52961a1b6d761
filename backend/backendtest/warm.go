package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/subvol"
)

// testWarm checks backend.Warmer (capability Warm), raw and through the
// Pool: Warm and WarmCounts, TakeWarm with owner and labels, an existing
// name (AlreadyExists, no warm subvolume used), a size with none left
// (false, nothing made), bad input, DrainWarm, and Pool.SetWarm, WaitWarm
// and an Allocate served warm.
func testWarm(t *testing.T, f *fixture) {
	w, ok := f.b.(backend.Warmer)
	f.implements(t, Warm, ok, "backend.Warmer")
	if !f.has(Warm) {
		t.Fatalf("%T implements backend.Warmer, but the harness does not declare Warm", f.b)
	}
	// A size of this run only: warm subvolumes are counted volume-wide.
	var r [2]byte
	_, _ = rand.Read(r[:])
	size := f.base + f.unit*int64(1+binary.BigEndian.Uint16(r[:])%8)
	count := func() int {
		t.Helper()
		counts, err := w.WarmCounts(f.ctx)
		mustNoError(t, err, "WarmCounts")
		return counts[size]
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := w.DrainWarm(ctx, size, 0); err != nil && !f.closed {
			t.Errorf("cleanup: DrainWarm: %v", err)
		}
	})

	checkEqual(t, 0, count(), "warm subvolumes of a new size")
	for i := range 2 {
		mustNoError(t, w.Warm(f.ctx, size), "Warm #%d", i+1)
	}
	checkEqual(t, 2, count(), "after two Warm calls")
	before := f.snapshot(t)
	checkEqual(t, before, f.snapshot(t), "warm subvolumes are not listed")

	name := f.name(t)
	f.track(t, name)
	req := &backend.CreateRequest{Name: name, SizeBytes: size}
	if f.has(Labels) {
		req.Labels = map[string]string{"app": "warm"}
	}
	if f.has(Owner) {
		req.Owner = &backend.Ownership{UID: 1234, GID: 5678, Mode: 0o2770}
	}
	sv, took, err := w.TakeWarm(f.ctx, req)
	mustNoError(t, err, "TakeWarm(%q)", name)
	mustTrue(t, took, "TakeWarm(%q) found none of two", name)
	checkSubvol(t, sv, name, size)
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err, "Get(%q) after TakeWarm", name)
	checkSubvol(t, got, name, size)
	if f.has(Labels) {
		checkEqual(t, req.Labels, got.Labels, "labels of a warm subvolume")
	}
	if f.has(Owner) {
		checkEqual(t, []any{1234, 5678, uint32(0o2770)}, []any{got.UID, got.GID, got.Mode}, "owner of a warm subvolume")
	}
	checkEqual(t, 1, count(), "after one TakeWarm")

	t.Run("ExistingName", func(t *testing.T) {
		_, took, err := w.TakeWarm(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: size})
		wantKind(t, err, "TakeWarm of an existing name", subvolkit.AlreadyExists)
		checkFalse(t, took, "TakeWarm of an existing name took one")
		checkEqual(t, 1, count(), "warm subvolumes after a refused TakeWarm")
	})
	t.Run("NoneLeft", func(t *testing.T) {
		other := f.name(t)
		f.track(t, other)
		_, took, err := w.TakeWarm(f.ctx, &backend.CreateRequest{Name: other, SizeBytes: size + f.unit})
		mustNoError(t, err, "TakeWarm of a size with none warm")
		checkFalse(t, took, "TakeWarm of a size with none warm took one")
		_, err = f.b.Get(f.ctx, other)
		wantKind(t, err, "Get after a TakeWarm that found none", subvolkit.NotFound)
	})
	t.Run("BadInput", func(t *testing.T) {
		wantKind(t, w.Warm(f.ctx, 0), "Warm(0)", subvolkit.InvalidArgument)
		_, took, err := w.TakeWarm(f.ctx, &backend.CreateRequest{Name: "-not-valid", SizeBytes: size})
		wantKind(t, err, "TakeWarm of an invalid name", subvolkit.InvalidArgument)
		checkFalse(t, took, "TakeWarm of an invalid name")
		_, err = w.DrainWarm(f.ctx, -1, 0)
		wantKind(t, err, "DrainWarm(-1)", subvolkit.InvalidArgument)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		other := f.name(t)
		_, took, err = w.TakeWarm(ctx, &backend.CreateRequest{Name: other, SizeBytes: size})
		wantKind(t, err, "TakeWarm with a cancelled context", subvolkit.Canceled)
		checkFalse(t, took, "TakeWarm with a cancelled context")
		checkEqual(t, 1, count(), "warm subvolumes after refused calls")
	})
	t.Run("Drain", func(t *testing.T) {
		mustNoError(t, w.Warm(f.ctx, size))
		n, err := w.DrainWarm(f.ctx, size, 1)
		mustNoError(t, err, "DrainWarm(keep 1)")
		checkEqual(t, 1, n, "drained, keeping 1 of 2")
		checkEqual(t, 1, count(), "after DrainWarm(keep 1)")
	})
	t.Run("Pool", func(t *testing.T) {
		mustNoError(t, f.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 2}}))
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
		defer cancel()
		mustNoError(t, f.pool.WaitWarm(ctx), "WaitWarm")
		checkEqual(t, 2, count(), "stock after WaitWarm")
		other := f.name(t)
		f.track(t, other)
		sv, err := f.pool.Allocate(f.ctx, other, size, nil)
		mustNoError(t, err, "Allocate of a warm size")
		checkSubvol(t, sv, other, size)
		st := f.pool.WarmStatus()
		if checkEqual(t, 1, len(st), "WarmStatus classes") {
			checkEqual(t, uint64(1), st[0].Taken, "WarmStatus.Taken")
		}
		// Allocating it again is idempotent and takes no warm one.
		_, err = f.pool.Allocate(f.ctx, other, size, nil)
		mustNoError(t, err, "Allocate again")
		mustNoError(t, f.pool.WaitWarm(ctx), "WaitWarm after a take")
		checkEqual(t, 2, count(), "stock refilled after a take")
		mustNoError(t, f.pool.SetWarm(nil))
		wantKind(t, f.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: -1}}), "SetWarm with a negative count", subvolkit.InvalidArgument)
		wantKind(t, f.pool.SetWarm([]subvol.WarmClass{{SizeBytes: size, Count: 1}, {SizeBytes: size, Count: 2}}), "SetWarm with a size twice", subvolkit.InvalidArgument)
		n, err := f.pool.DrainWarm(f.ctx)
		mustNoError(t, err, "Pool.DrainWarm")
		checkEqual(t, 2, n, "Pool.DrainWarm removes what no class keeps")
		checkEqual(t, 0, count(), "after Pool.DrainWarm")
	})
}
