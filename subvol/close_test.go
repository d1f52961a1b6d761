package subvol_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Close waits for an in-flight Allocate, which completes successfully, then
// refuses new operations and closes the backend.
func TestCloseWaitsForInFlightAllocate(t *testing.T) {
	g := newGated()
	p := subvol.NewPool(g, nil)
	allocated := make(chan error, 1)
	go func() {
		sv, err := p.Allocate(t.Context(), "pv", quota.GiB, nil)
		if err == nil && sv.Name != "pv" {
			err = errors.New("wrong subvolume")
		}
		allocated <- err
	}()
	<-g.entered // the Allocate is inside the backend

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	// New operations are refused as soon as Close is called; poll until
	// Close has started (bounded).
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := p.Get(t.Context(), "pv")
		if errors.Is(err, subvolkit.ErrFailedPrecondition) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get during Close: %v, want FailedPrecondition", err)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an Allocate was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := g.Get(t.Context(), "nothing"); subvolkit.KindOf(err) != subvolkit.NotFound {
		t.Fatalf("the backend was closed under an in-flight operation: %v", err)
	}

	close(g.gate)
	if err := <-allocated; err != nil {
		t.Fatalf("the in-flight Allocate failed: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := g.Get(t.Context(), "pv"); subvolkit.KindOf(err) != subvolkit.FailedPrecondition {
		t.Errorf("after Close the backend is still open: %v", err)
	}
	if _, err := p.Allocate(t.Context(), "pv2", quota.GiB, nil); !errors.Is(err, subvolkit.ErrFailedPrecondition) {
		t.Errorf("Allocate after Close: %v, want FailedPrecondition", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Shutdown bounds the wait by its context; the backend is closed when the
// last in-flight operation returns.
func TestShutdownBoundedByContext(t *testing.T) {
	g := newGated()
	p := subvol.NewPool(g, nil)
	allocated := make(chan error, 1)
	go func() {
		_, err := p.Allocate(t.Context(), "pv", quota.GiB, nil)
		allocated <- err
	}()
	<-g.entered
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || subvolkit.KindOf(err) != subvolkit.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Shutdown waited %v past its 50ms deadline", d)
	}
	close(g.gate)
	if err := <-allocated; err != nil {
		t.Fatalf("the in-flight Allocate failed: %v", err)
	}
	if err := p.Close(); err != nil { // returns at once: nothing in flight
		t.Fatalf("Close: %v", err)
	}
	if _, err := g.Get(t.Context(), "pv"); subvolkit.KindOf(err) != subvolkit.FailedPrecondition {
		t.Errorf("the backend is still open: %v", err)
	}
}
