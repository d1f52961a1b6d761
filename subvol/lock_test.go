package subvol_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// gatedMemory is the memory backend whose Create waits for gate to close
// (and reports that it started on entered).
type gatedMemory struct {
	*memory.Backend
	entered chan struct{}
	gate    chan struct{}
}

func newGated() *gatedMemory {
	return &gatedMemory{Backend: memory.New(nil), entered: make(chan struct{}, 16), gate: make(chan struct{})}
}

func (g *gatedMemory) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
	}
	return g.Backend.Create(ctx, req)
}

// The wait for another operation's per-name lock ends with the caller's
// context: a 50 ms deadline returns after about 50 ms.
func TestLockWaitHonoursTheContext(t *testing.T) {
	g := newGated()
	p := subvol.NewPool(g, nil)
	first := make(chan error, 1)
	go func() {
		_, err := p.Allocate(t.Context(), "pv", quota.GiB, nil)
		first <- err
	}()
	<-g.entered // the first Allocate holds "pv"

	for op, run := range poolOps(p) {
		if op == "list" || op == "get" || op == "usage" {
			continue // these take no per-name lock
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		start := time.Now()
		var err error
		if op == "clone" {
			_, err = p.Clone(ctx, "pv", "pv2", nil) // waits on the source
		} else {
			err = run(ctx, "pv")
		}
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: got %v, want a DeadlineExceeded", op, err)
		}
		// DeadlineExceeded already says the deadline passed, by the
		// runtime's timer; the lower bound only catches a wait that gives
		// up at once. It is loose: on a loaded VM, a CI run saw the 50 ms
		// timer fire 44 ms after a time.Now taken just before.
		if took < 25*time.Millisecond || took > 300*time.Millisecond {
			t.Errorf("%s gave up after %v, want about 50ms", op, took)
		}
		if n := strings.Count(err.Error(), "subvolkit:"); n != 1 {
			t.Errorf("%s: %q says \"subvolkit:\" %d times", op, err, n)
		}
	}
	close(g.gate)
	if err := <-first; err != nil {
		t.Fatalf("the first Allocate: %v", err)
	}
}
