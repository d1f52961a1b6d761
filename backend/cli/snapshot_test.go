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
	// The test's own mount may show the old directory for its entry
	// timeout (1 s by default): poll, bounded.
	var partialErr, readErr error
	var content []byte
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, partialErr = os.Stat(filepath.Join(dir, "partial"))
		content, readErr = os.ReadFile(filepath.Join(dir, "f"))
		if os.IsNotExist(partialErr) && readErr == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !os.IsNotExist(partialErr) {
		t.Errorf("the half-made copy's files survived: %v", partialErr)
	}
	if readErr != nil || string(content) != "data" {
		t.Errorf("snapshot content: %q, %v", content, readErr)
	}
	if l := e.limits(t)["/.subvolkit/snapshots/snap1"]; l == "" {
		t.Errorf("the snapshot has no quota limit; limits: %v", e.limits(t))
	}
	if err := e.pool.DeleteSnapshot(ctx, "snap1"); err != nil {
		t.Fatal(err)
	}
	var statErr error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, statErr = os.Stat(dir); os.IsNotExist(statErr) || time.Now().After(deadline) {
			break
		}
	}
	if !os.IsNotExist(statErr) {
		t.Errorf("the deleted snapshot's directory stayed: %v", statErr)
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
