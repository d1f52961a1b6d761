package backendtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/subvol"
)

// testSnapshots checks backend.Snapshotter (capability Snapshot) through the
// Pool and raw: take, get, list, restore (content and idempotency), delete,
// and bad input. A backend that implements the interface without the
// capability must answer Unimplemented on every method, with a reason.
func testSnapshots(t *testing.T, f *fixture) {
	s, ok := f.b.(backend.Snapshotter)
	f.implements(t, Snapshot, ok, "backend.Snapshotter")
	srcName := f.name(t)
	f.track(t, srcName)
	src, err := f.pool.Allocate(f.ctx, srcName, f.base, nil)
	if err != nil {
		t.Fatalf("Allocate(%q): %v", srcName, err)
	}
	snapName := f.name(t)
	f.trackSnapshot(t, snapName)
	snap, err := f.pool.CreateSnapshot(f.ctx, snapName, srcName, nil)
	if subvolkit.KindOf(err) == subvolkit.Unimplemented && !f.has(Snapshot) {
		checkUnimplemented(t, f, s, err, snapName, srcName)
		return
	}
	f.optional(t, Snapshot, err)
	files := map[string][]byte{"top.txt": []byte("before the snapshot"), "sub/dir/data.bin": pattern(srcName, 32<<10)}
	if err != nil {
		t.Fatalf("CreateSnapshot(%q, %q): %v", snapName, srcName, err)
	}
	// The first snapshot was of an empty subvolume; take one with content.
	if f.hasContent() {
		for p, data := range files {
			if err := f.opts.WriteFile(f.ctx, src, p, data); err != nil {
				t.Fatalf("WriteFile(%q): %v", p, err)
			}
		}
		snapName = f.name(t)
		f.trackSnapshot(t, snapName)
		if snap, err = f.pool.CreateSnapshot(f.ctx, snapName, srcName, nil); err != nil {
			t.Fatalf("CreateSnapshot(%q, %q) with content: %v", snapName, srcName, err)
		}
	}
	checkSnapshot(t, snap, snapName, srcName, src.SizeBytes)

	t.Run("GetList", func(t *testing.T) {
		got, err := f.pool.GetSnapshot(f.ctx, snapName)
		if err != nil {
			t.Fatalf("GetSnapshot(%q): %v", snapName, err)
		}
		sameSnapshot(t, snap, got, "GetSnapshot")
		all, err := f.pool.ListSnapshots(f.ctx)
		if err != nil {
			t.Fatalf("ListSnapshots: %v", err)
		}
		i := slices.IndexFunc(all, func(x *subvol.Snapshot) bool { return x.Name == snapName })
		if i < 0 {
			t.Fatalf("ListSnapshots does not list %q", snapName)
		}
		sameSnapshot(t, snap, all[i], "ListSnapshots")
		if !slices.IsSortedFunc(all, func(a, b *subvol.Snapshot) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("ListSnapshots is not sorted by name")
		}
		subvols, err := f.pool.List(f.ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, sv := range subvols {
			if sv.Name == snapName {
				t.Errorf("List shows the snapshot %q as a subvolume", snapName)
			}
		}
		_, err = f.pool.Get(f.ctx, snapName)
		wantKind(t, err, "Get of a snapshot's name", subvolkit.NotFound)
	})

	t.Run("Idempotent", func(t *testing.T) {
		again, err := f.pool.CreateSnapshot(f.ctx, snapName, srcName, nil)
		if err != nil {
			t.Fatalf("a retried CreateSnapshot must return the snapshot: %v", err)
		}
		sameSnapshot(t, snap, again, "retried CreateSnapshot")
		_, err = s.CreateSnapshot(f.ctx, &backend.SnapshotRequest{Name: snapName, Source: srcName})
		wantKind(t, err, "raw CreateSnapshot of an existing name", subvolkit.AlreadyExists)
		otherName := f.name(t)
		f.track(t, otherName)
		if _, err := f.pool.Allocate(f.ctx, otherName, f.base, nil); err != nil {
			t.Fatalf("Allocate(%q): %v", otherName, err)
		}
		_, err = f.pool.CreateSnapshot(f.ctx, snapName, otherName, nil)
		wantKind(t, err, "CreateSnapshot of an existing name from another source", subvolkit.AlreadyExists)
	})

	t.Run("Restore", func(t *testing.T) {
		if f.hasContent() {
			// Changing the source after the snapshot changes nothing in it.
			if err := f.opts.WriteFile(f.ctx, src, "top.txt", []byte("after the snapshot")); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
		}
		dstName := f.name(t)
		f.track(t, dstName)
		dst, err := f.pool.Restore(f.ctx, snapName, dstName, nil)
		if err != nil {
			t.Fatalf("Restore(%q, %q): %v", snapName, dstName, err)
		}
		if dst.Name != dstName || dst.SizeBytes != snap.SizeBytes || dst.SourceSnapshot != snapName || dst.Source != "" {
			t.Errorf("Restore returned %+v; want name %q, size %d, SourceSnapshot %q, no Source",
				dst, dstName, snap.SizeBytes, snapName)
		}
		got, err := f.pool.Get(f.ctx, dstName)
		if err != nil {
			t.Fatalf("Get of a restored subvolume: %v", err)
		}
		if got.SourceSnapshot != snapName || got.SizeBytes != dst.SizeBytes || got.Path != dst.Path {
			t.Errorf("Get of a restored subvolume: %+v, want %+v", got, dst)
		}
		if f.hasContent() {
			for p, data := range files {
				read, err := f.opts.ReadFile(f.ctx, dst, p)
				if err != nil {
					t.Fatalf("ReadFile(restored, %q): %v", p, err)
				}
				if !bytes.Equal(read, data) {
					t.Errorf("content of %q in the restored subvolume: %d bytes %.20q, want %d bytes %.20q",
						p, len(read), read, len(data), data)
				}
			}
		}
		again, err := f.pool.Restore(f.ctx, snapName, dstName, nil)
		if err != nil {
			t.Fatalf("a retried Restore must return the subvolume: %v", err)
		}
		if again.Path != dst.Path || again.SizeBytes != dst.SizeBytes {
			t.Errorf("retried Restore: %+v, want %+v", again, dst)
		}
		_, err = s.Restore(f.ctx, &backend.RestoreRequest{Snapshot: snapName, Name: dstName})
		wantKind(t, err, "raw Restore onto an existing subvolume", subvolkit.AlreadyExists)
		_, err = f.pool.Restore(f.ctx, snapName, srcName, nil)
		wantKind(t, err, "Restore onto a subvolume that is not from the snapshot", subvolkit.AlreadyExists)

		big := f.name(t)
		f.track(t, big)
		bigSv, err := f.pool.Restore(f.ctx, snapName, big, &subvol.CloneOptions{SizeBytes: 2 * snap.SizeBytes})
		if err != nil {
			t.Fatalf("Restore with twice the snapshot's size: %v", err)
		}
		if bigSv.SizeBytes != 2*snap.SizeBytes {
			t.Errorf("Restore with twice the size: size %d, want %d", bigSv.SizeBytes, 2*snap.SizeBytes)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		before := f.snapshot(t)
		missing, orphan := f.name(t), f.name(t)
		f.track(t, orphan)
		f.trackSnapshot(t, orphan)
		_, err := f.pool.CreateSnapshot(f.ctx, orphan, missing, nil)
		wantKind(t, err, "CreateSnapshot of a missing subvolume", subvolkit.NotFound)
		_, err = f.pool.GetSnapshot(f.ctx, orphan)
		wantKind(t, err, "GetSnapshot after a refused CreateSnapshot", subvolkit.NotFound)
		_, err = f.pool.Restore(f.ctx, missing, orphan, nil)
		wantKind(t, err, "Restore of a missing snapshot", subvolkit.NotFound)
		_, err = s.Restore(f.ctx, &backend.RestoreRequest{Snapshot: snapName, Name: orphan, SizeBytes: snap.SizeBytes - 1})
		wantKind(t, err, "raw Restore smaller than the snapshot", subvolkit.InvalidArgument)
		_, err = f.pool.CreateSnapshot(f.ctx, "../x", srcName, nil)
		wantKind(t, err, "CreateSnapshot with an invalid name", subvolkit.InvalidArgument)
		_, err = f.pool.CreateSnapshot(f.ctx, orphan, "bad/name", nil)
		wantKind(t, err, "CreateSnapshot with an invalid source", subvolkit.InvalidArgument)
		f.requireUnchanged(t, before, "refused snapshot calls")
		f.requireGone(t, orphan)
		_, err = s.GetSnapshot(f.ctx, missing)
		wantKind(t, err, "raw GetSnapshot of a missing snapshot", subvolkit.NotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		name := f.name(t)
		f.trackSnapshot(t, name)
		if _, err := f.pool.CreateSnapshot(f.ctx, name, srcName, nil); err != nil {
			t.Fatalf("CreateSnapshot: %v", err)
		}
		restored := f.name(t)
		f.track(t, restored)
		if _, err := f.pool.Restore(f.ctx, name, restored, nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if err := f.pool.DeleteSnapshot(f.ctx, name); err != nil {
			t.Fatalf("DeleteSnapshot: %v", err)
		}
		_, err := f.pool.GetSnapshot(f.ctx, name)
		wantKind(t, err, "GetSnapshot after DeleteSnapshot", subvolkit.NotFound)
		if err := f.pool.DeleteSnapshot(f.ctx, name); err != nil {
			t.Errorf("DeleteSnapshot of a deleted snapshot must succeed: %v", err)
		}
		wantKind(t, s.DeleteSnapshot(f.ctx, name), "raw DeleteSnapshot of a missing snapshot", subvolkit.NotFound)
		if _, err := f.pool.Get(f.ctx, restored); err != nil {
			t.Errorf("a subvolume restored from a deleted snapshot must stay: %v", err)
		}
		// The source can go while its snapshots stay.
		other := f.name(t)
		f.track(t, other)
		if _, err := f.pool.Allocate(f.ctx, other, f.base, nil); err != nil {
			t.Fatalf("Allocate: %v", err)
		}
		keep := f.name(t)
		f.trackSnapshot(t, keep)
		if _, err := f.pool.CreateSnapshot(f.ctx, keep, other, nil); err != nil {
			t.Fatalf("CreateSnapshot: %v", err)
		}
		if err := f.pool.Delete(f.ctx, other, nil); err != nil {
			t.Fatalf("Delete of a snapshot's source: %v", err)
		}
		if _, err := f.pool.GetSnapshot(f.ctx, keep); err != nil {
			t.Errorf("a snapshot must outlive its source: %v", err)
		}
	})
}

// checkUnimplemented checks that a backend that cannot take snapshots says
// so, with a reason, on every Snapshotter method.
func checkUnimplemented(t *testing.T, f *fixture, s backend.Snapshotter, err error, snap, src string) {
	t.Helper()
	if !strings.Contains(err.Error(), ":") || len(err.Error()) < 40 {
		t.Errorf("an Unimplemented snapshot must say why: %v", err)
	}
	_, err = s.GetSnapshot(f.ctx, snap)
	wantKind(t, err, "GetSnapshot", subvolkit.Unimplemented)
	_, err = s.ListSnapshots(f.ctx, nil)
	wantKind(t, err, "ListSnapshots", subvolkit.Unimplemented)
	wantKind(t, s.DeleteSnapshot(f.ctx, snap), "DeleteSnapshot", subvolkit.Unimplemented)
	_, err = s.Restore(f.ctx, &backend.RestoreRequest{Snapshot: snap, Name: src + "-r"})
	wantKind(t, err, "Restore", subvolkit.Unimplemented)
}

// trackSnapshot deletes the snapshot name when the subtest ends.
func (f *fixture) trackSnapshot(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		if f.closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := f.pool.DeleteSnapshot(ctx, name)
		if err != nil && subvolkit.KindOf(err) != subvolkit.Unimplemented {
			t.Errorf("cleanup: deleting snapshot %q: %v", name, err)
		}
	})
}

// checkSnapshot checks what every Snapshot must say.
func checkSnapshot(t *testing.T, s *subvol.Snapshot, name, source string, size int64) {
	t.Helper()
	if s == nil {
		t.Fatalf("nil Snapshot for %q", name)
	}
	if s.Name != name || s.Source != source || s.SizeBytes != size || s.ID == "" || s.Created.IsZero() {
		t.Errorf("snapshot %+v: want name %q, source %q, size %d, an ID and a creation time", s, name, source, size)
	}
}

// sameSnapshot checks that got describes the same snapshot as want.
func sameSnapshot(t *testing.T, want, got *subvol.Snapshot, what string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil Snapshot", what)
	}
	if got.Name != want.Name || got.ID != want.ID || got.Source != want.Source || got.SizeBytes != want.SizeBytes ||
		!got.Created.Equal(want.Created) {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
}

// wantKind fails t unless err has kind k.
func wantKind(t *testing.T, err error, what string, k subvolkit.Kind) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want kind %q", what, k)
		return
	}
	if got := subvolkit.KindOf(err); got != k || !errors.Is(err, k.Sentinel()) {
		t.Errorf("%s: error of kind %q, want %q: %v", what, got, k, err)
	}
}
