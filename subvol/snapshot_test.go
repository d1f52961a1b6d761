package subvol_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/subvol"
)

// slowSnapshots holds every CreateSnapshot and Restore until release is
// closed, as a long copy would.
type slowSnapshots struct {
	*memory.Backend
	release chan struct{}
	calls   chan string
}

func (s *slowSnapshots) wait(ctx context.Context, what string) error {
	s.calls <- what
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return subvolkit.E(subvolkit.Canceled, what, "", ctx.Err())
	}
}

func (s *slowSnapshots) CreateSnapshot(ctx context.Context, req *backend.SnapshotRequest) (*backend.Snapshot, error) {
	if err := s.wait(ctx, "snapshot"); err != nil {
		return nil, err
	}
	return s.Backend.CreateSnapshot(ctx, req)
}

func (s *slowSnapshots) Restore(ctx context.Context, req *backend.RestoreRequest) (*backend.Subvol, error) {
	if err := s.wait(ctx, "restore"); err != nil {
		return nil, err
	}
	return s.Backend.Restore(ctx, req)
}

func TestSnapshotInProgress(t *testing.T) {
	ctx := t.Context()
	b := &slowSnapshots{Backend: memory.New(nil), release: make(chan struct{}), calls: make(chan string, 10)}
	p := subvol.NewPool(b, nil)
	defer p.Close()
	if _, err := p.Allocate(ctx, "src", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond) // ends while the copy waits: the copy never ends by itself
		t.Cleanup(cancel)
		return c
	}
	_, err := p.CreateSnapshot(short(), "snap", "src", nil)
	if !errors.Is(err, subvol.ErrInProgress) || subvolkit.KindOf(err) != subvolkit.Unavailable {
		t.Fatalf("CreateSnapshot of a long copy: %v, want ErrInProgress of kind Unavailable", err)
	}
	if !p.SnapshotInProgress("snap") {
		t.Errorf("SnapshotInProgress is false while the copy runs")
	}
	// A retry joins the job; it does not start a second copy.
	_, err = p.CreateSnapshot(short(), "snap", "src", nil)
	if !errors.Is(err, subvol.ErrInProgress) {
		t.Fatalf("retried CreateSnapshot: %v, want ErrInProgress", err)
	}
	_, err = p.CreateSnapshot(ctx, "snap", "other", nil)
	if subvolkit.KindOf(err) != subvolkit.AlreadyExists {
		t.Errorf("CreateSnapshot of another source while the copy runs: %v, want AlreadyExists", err)
	}
	if _, err := p.GetSnapshot(ctx, "snap"); subvolkit.KindOf(err) != subvolkit.NotFound {
		t.Errorf("GetSnapshot while the copy runs: %v, want NotFound", err)
	}
	if err := p.DeleteSnapshot(ctx, "snap"); !errors.Is(err, subvol.ErrInProgress) {
		t.Errorf("DeleteSnapshot while the copy runs: %v, want ErrInProgress", err)
	}
	// While the copy ran, every retry joined it.
	if n := len(b.calls); n != 1 {
		t.Errorf("the backend was asked %d times while the copy ran, want once", n)
	}
	<-b.calls
	close(b.release)
	// Joins the job, or (once it has finished) finds the snapshot made.
	snap, err := p.CreateSnapshot(ctx, "snap", "src", nil)
	if err != nil || snap.Source != "src" {
		t.Fatalf("CreateSnapshot after the copy: %+v, %v", snap, err)
	}
	sv, err := p.Restore(ctx, "snap", "dst", nil)
	if err != nil || sv.SourceSnapshot != "snap" {
		t.Fatalf("Restore: %+v, %v", sv, err)
	}
}

func TestCloseStopsCopies(t *testing.T) {
	ctx := t.Context()
	b := &slowSnapshots{Backend: memory.New(nil), release: make(chan struct{}), calls: make(chan string, 10)}
	p := subvol.NewPool(b, nil)
	if _, err := p.Allocate(ctx, "src", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := p.CreateSnapshot(c, "snap", "src", nil); !errors.Is(err, subvol.ErrInProgress) {
		t.Fatalf("CreateSnapshot: %v, want ErrInProgress", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateSnapshot(ctx, "snap", "src", nil); subvolkit.KindOf(err) != subvolkit.FailedPrecondition {
		t.Errorf("CreateSnapshot after Close: %v, want FailedPrecondition", err)
	}
}

func TestVolumeContextRoundTrip(t *testing.T) {
	sv := &subvol.Subvol{Name: "pvc-1", ID: "/pvc-1", SizeBytes: 1 << 30, Servers: []string{"a", "b"}, Volume: "gv0",
		Path: "/pvc-1", MountOptions: map[string]string{"backup-volfile-servers": "b", "acl": ""},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	c := sv.VolumeContext()
	c["csi.storage.k8s.io/pod.name"] = "ignored"
	got, err := subvol.FromVolumeContext(c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != sv.Name || got.ID != sv.ID || got.SizeBytes != sv.SizeBytes || got.Volume != sv.Volume ||
		got.Path != sv.Path || len(got.Servers) != 2 || got.Servers[1] != "b" || !got.Created.Equal(sv.Created) ||
		got.MountOptions["backup-volfile-servers"] != "b" || len(got.MountOptions) != 2 {
		t.Errorf("round trip: %+v, want %+v", got, sv)
	}
	for _, bad := range []map[string]string{
		{},
		{subvol.CtxName: "x"},
		{subvol.CtxName: "x", subvol.CtxVolume: "v"},
		{subvol.CtxName: "x", subvol.CtxVolume: "v", subvol.CtxServers: "s", subvol.CtxPath: "/../etc"},
		{subvol.CtxName: "../x", subvol.CtxVolume: "v", subvol.CtxServers: "s"},
		{subvol.CtxName: "x", subvol.CtxVolume: "v", subvol.CtxServers: "s", subvol.CtxSize: "-1"},
	} {
		if _, err := subvol.FromVolumeContext(bad); subvolkit.KindOf(err) != subvolkit.InvalidArgument {
			t.Errorf("FromVolumeContext(%v): %v, want InvalidArgument", bad, err)
		}
	}
}

func TestVolumeID(t *testing.T) {
	id, err := subvol.VolumeID("gold", "pvc-1")
	if err != nil || id != "gold/pvc-1" {
		t.Fatalf("VolumeID: %q, %v", id, err)
	}
	pool, name, err := subvol.ParseVolumeID(id)
	if err != nil || pool != "gold" || name != "pvc-1" {
		t.Fatalf("ParseVolumeID: %q %q %v", pool, name, err)
	}
	long := make([]byte, 100)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", "gold", "/x", "gold/", "gold/x/y", "gold/..", string(long) + "/" + string(long)} {
		if _, _, err := subvol.ParseVolumeID(bad); subvolkit.KindOf(err) != subvolkit.InvalidArgument {
			t.Errorf("ParseVolumeID(%q): %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := subvol.VolumeID(string(long), string(long)); subvolkit.KindOf(err) != subvolkit.InvalidArgument {
		t.Errorf("VolumeID of 201 bytes: %v, want InvalidArgument", err)
	}
}

// failingSnapshots fails every CreateSnapshot once released.
type failingSnapshots struct {
	slowSnapshots
}

func (s *failingSnapshots) CreateSnapshot(ctx context.Context, req *backend.SnapshotRequest) (*backend.Snapshot, error) {
	if err := s.wait(ctx, "snapshot"); err != nil {
		return nil, err
	}
	return nil, subvolkit.Errorf(subvolkit.QuotaExceeded, "create snapshot", req.Name, "no room")
}

// TestFailedCopyReportedOnce: a copy that fails while nobody waits reports
// its error to the next call, which does not start another copy; the call
// after that starts afresh.
func TestFailedCopyReportedOnce(t *testing.T) {
	ctx := t.Context()
	b := &failingSnapshots{slowSnapshots{Backend: memory.New(nil), release: make(chan struct{}), calls: make(chan string, 10)}}
	p := subvol.NewPool(b, nil)
	defer p.Close()
	if _, err := p.Allocate(ctx, "src", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := p.CreateSnapshot(c, "snap", "src", nil); !errors.Is(err, subvol.ErrInProgress) {
		t.Fatalf("CreateSnapshot: %v, want ErrInProgress", err)
	}
	close(b.release)
	<-b.calls
	for p.SnapshotInProgress("snap") {
		time.Sleep(time.Millisecond)
	}
	if _, err := p.CreateSnapshot(ctx, "snap", "src", nil); subvolkit.KindOf(err) != subvolkit.QuotaExceeded {
		t.Fatalf("the call after a failed copy: %v, want its QuotaExceeded", err)
	}
	if len(b.calls) != 0 {
		t.Fatalf("the failure was reported by a new copy, not the failed one")
	}
	if _, err := p.CreateSnapshot(ctx, "snap", "src", nil); subvolkit.KindOf(err) != subvolkit.QuotaExceeded || len(b.calls) != 1 {
		t.Fatalf("the next call must start a new copy: %v, %d calls", err, len(b.calls))
	}
}
