package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// health returns the node's health entries for v.
func (e *env) health(t *testing.T, v *csi.Volume) []*csi.VolumeHealth_VolumeHealthEntry {
	t.Helper()
	resp, err := e.node.NodeGetVolumeHealth(ctxT(t), &csi.NodeGetVolumeHealthRequest{VolumeId: v.VolumeId})
	if err != nil {
		t.Fatalf("NodeGetVolumeHealth(%s): %v", v.VolumeId, err)
	}
	return resp.VolumeHealth.GetHealthStatuses()
}

func (e *env) stats(t *testing.T, v *csi.Volume, path string) (*csi.NodeGetVolumeStatsResponse, error) {
	t.Helper()
	return e.node.NodeGetVolumeStats(ctxT(t), &csi.NodeGetVolumeStatsRequest{VolumeId: v.VolumeId, VolumePath: path})
}

func killClient(t *testing.T, state string) {
	t.Helper()
	pid := sharedClientPID(t, state)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := poll(10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }); err != nil {
		t.Fatalf("glusterfs client %d did not exit", pid)
	}
}

// readable checks that every path shows its file.
func readable(t *testing.T, files map[string][]byte, when string) {
	t.Helper()
	for p, want := range files {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %s: %q, %v; want %q", when, p, got, err, want)
		}
	}
}

// TestCSINodeHealsDeadClient: kill the shared FUSE client; NodeGetVolumeHealth
// says INACCESSIBLE and NodeGetVolumeStats fails (abnormal); the next
// NodePublishVolume heals every bind of it. Then kill it again and restart
// the node plugin: it heals on start.
func TestCSINodeHealsDeadClient(t *testing.T) {
	c := startCluster(t)
	e := newEnv(t, c, envOptions{})
	v1 := e.create(t, "heal-1", 16<<20)
	v2 := e.create(t, "heal-2", 16<<20)
	s1, s2 := e.stage(t, v1), e.stage(t, v2)
	a := e.publish(t, v1, s1, "pod-a", false)
	b := e.publish(t, v1, s1, "pod-b", true)
	if n := glusterfsClients(t, e.state); n != 1 {
		t.Fatalf("two volumes staged and one published twice: %d glusterfs clients, want 1", n)
	}
	files := map[string][]byte{filepath.Join(a, "f"): []byte("v1 data"), filepath.Join(s2, "g"): []byte("v2 data")}
	for p, data := range files {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files[filepath.Join(b, "f")] = files[filepath.Join(a, "f")]
	files[filepath.Join(s1, "f")] = files[filepath.Join(a, "f")]
	if h := e.health(t, v1); len(h) != 0 {
		t.Fatalf("health of a live volume: %v", h)
	}
	st, err := e.stats(t, v1, a)
	if err != nil || st.Usage[0].Total != 16<<20 {
		t.Fatalf("NodeGetVolumeStats: %v, %v; want a total of the quota, 16 MiB", st, err)
	}

	killClient(t, e.state)
	h := e.health(t, v1)
	if len(h) != 1 || h[0].Status != csi.VolumeHealthErrorType_INACCESSIBLE || h[0].Reason != "FUSEClientDead" {
		t.Fatalf("health after the client died: %v; want INACCESSIBLE FUSEClientDead", h)
	}
	if _, err := e.stats(t, v1, a); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "abnormal") {
		t.Fatalf("NodeGetVolumeStats after the client died: %v; want UNAVAILABLE, abnormal", err)
	}
	// The next publish (of another volume of the same Gluster volume) heals every bind.
	e.publish(t, v2, s2, "pod-c", false)
	readable(t, files, "after the publish that heals")
	if h := e.health(t, v1); len(h) != 0 {
		t.Errorf("health after healing: %v", h)
	}
	if _, err := e.stats(t, v1, b); err != nil {
		t.Errorf("NodeGetVolumeStats after healing: %v", err)
	}
	if n := glusterfsClients(t, e.state); n != 1 {
		t.Errorf("after healing: %d glusterfs clients, want 1", n)
	}

	// A restart of the node plugin heals on start.
	killClient(t, e.state)
	e.stop()
	pools := mustPools(t, poolsFor(t, c, ""))
	e.start(t, pools, 0)
	readable(t, files, "after a restart of the node plugin")
	if h := e.health(t, v2); len(h) != 0 {
		t.Errorf("health after a restart: %v", h)
	}
}

// TestCSINodeSharedClient: 20 volumes staged and one published twice use one
// glusterfs process; a read-only publish refuses writes (EROFS); a write past
// the size gets EDQUOT; unstage and unpublish are idempotent.
func TestCSINodeSharedClient(t *testing.T) {
	c := startCluster(t)
	e := newEnv(t, c, envOptions{})
	var vols []*csi.Volume
	var stages []string
	for i := range 20 {
		v := e.create(t, "shared-"+string(rune('a'+i)), 4<<20)
		vols = append(vols, v)
		stages = append(stages, e.stage(t, v))
	}
	rw := e.publish(t, vols[0], stages[0], "pod-1", false)
	ro := e.publish(t, vols[0], stages[0], "pod-2", true)
	if n := glusterfsClients(t, e.state); n != 1 {
		t.Errorf("20 volumes staged, one published twice: %d glusterfs processes, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(rw, "ok"), []byte("x"), 0o644); err != nil {
		t.Fatalf("write through the read-write publish: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ro, "no"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write through the read-only publish: %v, want EROFS", err)
	}
	// Past the size: EDQUOT (strict quota lets a write-behind window through).
	f, err := os.Create(filepath.Join(rw, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("q"), 1<<20)
	var werr error
	for i := 0; i < 16 && werr == nil; i++ {
		_, werr = f.Write(chunk)
		if werr == nil {
			werr = f.Sync()
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if !errors.Is(werr, syscall.EDQUOT) {
		t.Errorf("writing 16 MiB into a 4 MiB volume: %v, want EDQUOT", werr)
	}
	// Idempotent unpublish and unstage.
	for range 2 {
		if _, err := e.node.NodeUnpublishVolume(ctxT(t), &csi.NodeUnpublishVolumeRequest{VolumeId: vols[0].VolumeId, TargetPath: ro}); err != nil {
			t.Fatalf("NodeUnpublishVolume: %v", err)
		}
		if _, err := e.node.NodeUnstageVolume(ctxT(t), &csi.NodeUnstageVolumeRequest{VolumeId: vols[1].VolumeId, StagingTargetPath: stages[1]}); err != nil {
			t.Fatalf("NodeUnstageVolume: %v", err)
		}
	}
}
