package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
)

// TestSnapshotCrashLeftover: a snapshot whose copy a crash interrupted (its
// marker still says "creating") is never reported, and the next
// CreateSnapshot of the name removes it and takes the snapshot afresh.
func TestSnapshotCrashLeftover(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.pool.Allocate(ctx, "snapsrc", 8<<20, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "snapsrc", "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a crash mid-copy leaves: a directory with a "creating" marker and
	// part of the tree.
	dir := filepath.Join(e.root, ".subvolkit", "snapshots", "snap1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{"state": "creating", "name": "snap1", "size": 8 << 20, "source": "snapsrc", "created": time.Now()})
	if err := syscall.Setxattr(dir, "trusted.subvolkit.v1", m, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "partial"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.GetSnapshot(ctx, "snap1"); subvolkit.KindOf(err) != subvolkit.NotFound {
		t.Errorf("GetSnapshot of a half-made snapshot: %v, want NotFound", err)
	}
	all, err := e.pool.ListSnapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == "snap1" {
			t.Errorf("ListSnapshots lists a half-made snapshot")
		}
	}
	s, err := e.pool.CreateSnapshot(ctx, "snap1", "snapsrc", nil)
	if err != nil {
		t.Fatalf("CreateSnapshot over a half-made one: %v", err)
	}
	if s.Source != "snapsrc" || s.SizeBytes != 8<<20 {
		t.Errorf("snapshot %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "partial")); !os.IsNotExist(err) {
		t.Errorf("the half-made copy's files survived: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "data" {
		t.Errorf("snapshot content: %q, %v", b, err)
	}
	if l := e.limits(t)["/.subvolkit/snapshots/snap1"]; l == "" {
		t.Errorf("the snapshot has no quota limit; limits: %v", e.limits(t))
	}
	if err := e.pool.DeleteSnapshot(ctx, "snap1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the deleted snapshot's directory stayed: %v", err)
	}
	// The purger removes the data, then the limit, in the background.
	deadline := time.Now().Add(time.Minute)
	for {
		l, ok := e.limits(t)["/.subvolkit/snapshots/snap1"]
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted snapshot's limit stayed: %q", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
