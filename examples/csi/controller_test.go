package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/subvolkit/subvolkit/naming"
)

// state describes everything the driver could have created: volumes,
// snapshots, and the directories at the Gluster volume's root and in
// /.subvolkit/snapshots.
func (e *env) snapshotState(t *testing.T, root string) string {
	t.Helper()
	var parts []string
	vols, err := e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Entries {
		parts = append(parts, "vol "+v.Volume.VolumeId)
	}
	snaps, err := e.ctrl.ListSnapshots(ctxT(t), &csi.ListSnapshotsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps.Entries {
		parts = append(parts, "snap "+s.Snapshot.SnapshotId)
	}
	for _, d := range []string{root, filepath.Join(root, ".subvolkit", "snapshots")} {
		entries, _ := os.ReadDir(d)
		for _, en := range entries {
			parts = append(parts, "dir "+filepath.Join(d, en.Name()))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// TestCSIBadInput: bad input gets a clear gRPC status and nothing is created.
func TestCSIBadInput(t *testing.T) {
	c := startCluster(t)
	pools := "pools:\n  sanity:\n    backend: " + registerCluster(t, c) + "\n    capacity: 1Gi\n" +
		"  raw:\n    backend: " + registerCluster(t, c) + "\n"
	e := newEnv(t, c, envOptions{pools: pools})
	root := c.MountT(t, "")
	v := e.create(t, "bad-input-src", 8<<20)
	before := e.snapshotState(t, root)

	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	cv := func(mod func(r *csi.CreateVolumeRequest)) func() error {
		return func() error {
			r := &csi.CreateVolumeRequest{Name: "bad-input-new", VolumeCapabilities: rwx,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}, Parameters: map[string]string{"pool": "sanity"}}
			mod(r)
			_, err := e.ctrl.CreateVolume(ctxT(t), r)
			return err
		}
	}
	src := func(id string) *csi.VolumeContentSource {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
	}
	outside := filepath.Join(t.TempDir(), "elsewhere")
	stageReq := func(mod func(r *csi.NodeStageVolumeRequest)) func() error {
		return func() error {
			r := &csi.NodeStageVolumeRequest{VolumeId: v.VolumeId, StagingTargetPath: filepath.Join(e.kubelet, "stage", "bad"),
				VolumeCapability: rwx[0], VolumeContext: v.VolumeContext}
			mod(r)
			_, err := e.node.NodeStageVolume(ctxT(t), r)
			return err
		}
	}
	badCtx := map[string]string{}
	for k, val := range v.VolumeContext {
		badCtx[k] = val
	}
	badCtx["subvolkit.io/path"] = "/../etc"
	ctx := ctxT(t)
	cases := []struct {
		name string
		call func() error
		code codes.Code
		says string
	}{
		{"missing pool", cv(func(r *csi.CreateVolumeRequest) { r.Parameters = nil }), codes.InvalidArgument, `"pool" is required`},
		{"unknown pool", cv(func(r *csi.CreateVolumeRequest) { r.Parameters["pool"] = "nope" }), codes.InvalidArgument, "no such pool"},
		{"unknown parameter", cv(func(r *csi.CreateVolumeRequest) { r.Parameters["replica"] = "3" }), codes.InvalidArgument, `unknown parameter "replica"`},
		{"bad onDelete", cv(func(r *csi.CreateVolumeRequest) { r.Parameters["onDelete"] = "shred" }), codes.InvalidArgument, "onDelete"},
		{"capacity 0", cv(func(r *csi.CreateVolumeRequest) { r.CapacityRange = &csi.CapacityRange{} }), codes.InvalidArgument, "capacity range"},
		{"capacity beyond the pool", cv(func(r *csi.CreateVolumeRequest) { r.CapacityRange.RequiredBytes = 2 << 30 }), codes.OutOfRange, "capacity"},
		{"capacity beyond the volume", cv(func(r *csi.CreateVolumeRequest) {
			r.Parameters["pool"] = "raw"
			r.CapacityRange.RequiredBytes = 1 << 50
		}), codes.InvalidArgument, "larger than volume"},
		{"required above limit", cv(func(r *csi.CreateVolumeRequest) { r.CapacityRange.LimitBytes = 1 << 20 }), codes.OutOfRange, "exceed"},
		{"block access", cv(func(r *csi.CreateVolumeRequest) { r.VolumeCapabilities = []*csi.VolumeCapability{block} }), codes.InvalidArgument, "block access"},
		{"malformed source", cv(func(r *csi.CreateVolumeRequest) { r.VolumeContentSource = src("no-slash") }), codes.InvalidArgument, "malformed"},
		{"foreign source", cv(func(r *csi.CreateVolumeRequest) { r.VolumeContentSource = src("raw/bad-input-src") }), codes.InvalidArgument, "one pool"},
		{"missing source", cv(func(r *csi.CreateVolumeRequest) { r.VolumeContentSource = src("sanity/missing") }), codes.NotFound, "missing"},
		{"expand malformed ID", func() error {
			_, err := e.ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "x", CapacityRange: &csi.CapacityRange{RequiredBytes: 1}})
			return err
		}, codes.InvalidArgument, "malformed"},
		{"expand foreign ID", func() error {
			_, err := e.ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "gold/x", CapacityRange: &csi.CapacityRange{RequiredBytes: 1}})
			return err
		}, codes.NotFound, "not configured"},
		{"delete malformed ID", func() error {
			_, err := e.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "a/b/c"})
			return err
		}, codes.InvalidArgument, "malformed"},
		{"validate block", func() error {
			_, err := e.ctrl.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: v.VolumeId, VolumeCapabilities: []*csi.VolumeCapability{block}})
			return err
		}, codes.InvalidArgument, "block access"},
		{"snapshot of a missing volume", func() error {
			_, err := e.ctrl.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "bad-snap", SourceVolumeId: "sanity/missing"})
			return err
		}, codes.NotFound, "missing"},
		{"snapshot of a malformed ID", func() error {
			_, err := e.ctrl.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "bad-snap", SourceVolumeId: "missing"})
			return err
		}, codes.InvalidArgument, "malformed"},
		{"stage outside the kubelet dir", stageReq(func(r *csi.NodeStageVolumeRequest) { r.StagingTargetPath = outside }), codes.InvalidArgument, "outside the kubelet directory"},
		{"stage malformed ID", stageReq(func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "nope" }), codes.InvalidArgument, "malformed"},
		{"stage block", stageReq(func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = block }), codes.InvalidArgument, "block access"},
		{"stage bad context", stageReq(func(r *csi.NodeStageVolumeRequest) { r.VolumeContext = badCtx }), codes.InvalidArgument, "volume context"},
		{"stage foreign context", stageReq(func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "sanity/other" }), codes.InvalidArgument, "names subvolume"},
		{"publish outside the kubelet dir", func() error {
			_, err := e.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: v.VolumeId, TargetPath: outside,
				StagingTargetPath: filepath.Join(e.kubelet, "stage", "x"), VolumeCapability: rwx[0], VolumeContext: v.VolumeContext})
			return err
		}, codes.InvalidArgument, "outside the kubelet directory"},
		{"publish unstaged", func() error {
			_, err := e.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: v.VolumeId, TargetPath: filepath.Join(e.kubelet, "pods", "p", "v"),
				StagingTargetPath: filepath.Join(e.kubelet, "stage", "never"), VolumeCapability: rwx[0], VolumeContext: v.VolumeContext})
			return err
		}, codes.FailedPrecondition, "not staged"},
	}
	for _, tc := range cases {
		err := tc.call()
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.code, tc.says)
		}
	}
	if after := e.snapshotState(t, root); after != before {
		t.Errorf("bad input changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(e.kubelet, "pods", "p", "v")); err == nil {
		t.Errorf("a refused publish left its target directory")
	}
}

// TestCSICreateVolumeAfterCrash: a crash between CreateVolume's steps (the
// directory made and marked "creating", no limit yet), then a retried
// CreateVolume, gives one complete volume.
func TestCSICreateVolumeAfterCrash(t *testing.T) {
	c := startCluster(t)
	e := newEnv(t, c, envOptions{})
	root := c.MountT(t, "")
	name, err := naming.ForRequest("pvc-crashed")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{"state": "creating", "name": name, "size": 8 << 20, "created": time.Now()})
	if err := syscall.Setxattr(dir, "trusted.subvolkit.v1", m, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "half"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	vols, err := e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols.Entries) != 0 {
		t.Errorf("ListVolumes shows a half-made volume: %v", vols.Entries)
	}
	v := e.create(t, "pvc-crashed", 8<<20)
	if v.VolumeId != "sanity/"+name || v.CapacityBytes != 8<<20 {
		t.Fatalf("retried CreateVolume: %v", v)
	}
	// This test's own mount made dir and "half" a moment ago: its kernel
	// may answer from its entry cache (1 s) for a moment; poll, bounded.
	var serr error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, serr = os.Stat(filepath.Join(dir, "half")); os.IsNotExist(serr) || time.Now().After(deadline) {
			break
		}
	}
	if !os.IsNotExist(serr) {
		t.Errorf("the half-made volume's content survived: %v", serr)
	}
	limits, err := c.QuotaLimits(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if limits["/"+name] == "" {
		t.Errorf("the volume has no quota limit: %v", limits)
	}
	vols, err = e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{})
	if err != nil || len(vols.Entries) != 1 {
		t.Errorf("ListVolumes after the retry: %v, %v; want one volume", vols, err)
	}
}

// TestListVolumesPagination is the scenario csi-test v5.6 leaves pending:
// volumes added between pages are found, and a token stays valid when the
// last volume of its page is deleted.
func TestListVolumesPagination(t *testing.T) {
	c := startCluster(t)
	e := newEnv(t, c, envOptions{})
	var ids []string
	for _, n := range []string{"page-a", "page-b", "page-c"} {
		ids = append(ids, e.create(t, n, 4<<20).VolumeId)
	}
	p1, err := e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{MaxEntries: 2})
	if err != nil || len(p1.Entries) != 2 || p1.NextToken == "" {
		t.Fatalf("first page: %v, %v", p1, err)
	}
	if _, err := e.ctrl.DeleteVolume(ctxT(t), &csi.DeleteVolumeRequest{VolumeId: p1.Entries[1].Volume.VolumeId}); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, e.create(t, "page-d", 4<<20).VolumeId)
	p2, err := e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{StartingToken: p1.NextToken})
	if err != nil {
		t.Fatalf("second page after deleting the token's volume: %v", err)
	}
	var got []string
	for _, en := range append(p1.Entries, p2.Entries...) {
		got = append(got, en.Volume.VolumeId)
	}
	for _, want := range []string{ids[0], ids[2], ids[3]} {
		if !slices.Contains(got, want) {
			t.Errorf("volume %s missing from the pages: %v", want, got)
		}
	}
	if _, err := e.ctrl.ListVolumes(ctxT(t), &csi.ListVolumesRequest{StartingToken: "bogus"}); status.Code(err) != codes.Aborted {
		t.Errorf("an invalid token: %v, want ABORTED", err)
	}
}

// TestCSICopyInProgress: a clone, a snapshot and a restore that outlast the
// call answer ABORTED "in progress"; retries wait for the same copy and then
// return the complete volume or snapshot, with its content.
func TestCSICopyInProgress(t *testing.T) {
	c := startCluster(t)
	e := newEnv(t, c, envOptions{copyWait: 200 * time.Millisecond})
	src := e.create(t, "copy-src", 64<<20)
	s := e.stage(t, src)
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(s, "f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	retry := func(what string, call func() error) {
		t.Helper()
		aborted := 0
		err := poll(5*time.Minute, func() bool {
			err := call()
			if status.Code(err) == codes.Aborted && strings.Contains(err.Error(), "in progress") {
				aborted++
				return false
			}
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return true
		})
		if err != nil {
			t.Fatalf("%s: never finished", what)
		}
		t.Logf("%s: done after %d ABORTED answers", what, aborted)
		if aborted == 0 {
			t.Errorf("%s: never answered ABORTED in progress (the copy was too fast to see)", what)
		}
	}
	var clone *csi.Volume
	retry("clone", func() error {
		r, err := e.ctrl.CreateVolume(ctxT(t), &csi.CreateVolumeRequest{Name: "copy-clone", VolumeCapabilities: rwx,
			Parameters:          map[string]string{"pool": "sanity"},
			VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.VolumeId}}}})
		if err == nil {
			clone = r.Volume
		}
		return err
	})
	var snap *csi.Snapshot
	retry("snapshot", func() error {
		r, err := e.ctrl.CreateSnapshot(ctxT(t), &csi.CreateSnapshotRequest{Name: "copy-snap", SourceVolumeId: src.VolumeId})
		if err == nil {
			snap = r.Snapshot
		}
		return err
	})
	if !snap.ReadyToUse || snap.SizeBytes != 64<<20 || snap.SourceVolumeId != src.VolumeId {
		t.Errorf("snapshot: %v", snap)
	}
	var restored *csi.Volume
	retry("restore", func() error {
		r, err := e.ctrl.CreateVolume(ctxT(t), &csi.CreateVolumeRequest{Name: "copy-restored", VolumeCapabilities: rwx,
			Parameters:          map[string]string{"pool": "sanity"},
			VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.SnapshotId}}}})
		if err == nil {
			restored = r.Volume
		}
		return err
	})
	t.Cleanup(func() {
		for _, id := range []string{clone.VolumeId, restored.VolumeId} {
			_, _ = e.ctrl.DeleteVolume(ctxT(t), &csi.DeleteVolumeRequest{VolumeId: id})
		}
		_, _ = e.ctrl.DeleteSnapshot(ctxT(t), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId})
	})
	for _, v := range []*csi.Volume{clone, restored} {
		p := e.stage(t, v)
		entries, err := os.ReadDir(p)
		if err != nil || len(entries) != 100 {
			t.Errorf("%s holds %d entries (%v), want 100", v.VolumeId, len(entries), err)
		}
	}
}
