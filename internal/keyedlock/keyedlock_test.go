package keyedlock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/internal/keyedlock"
)

func TestMapExcludesPerKey(t *testing.T) {
	var l keyedlock.Map
	var inside, max atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := l.Lock(t.Context(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > max.Load() {
				max.Store(n)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			u()
		}()
	}
	wg.Wait()
	if max.Load() != 1 {
		t.Errorf("%d goroutines held one key at once", max.Load())
	}
	if l.Len() != 0 {
		t.Errorf("%d keys left in the map", l.Len())
	}
	// Distinct keys do not wait for each other.
	ua, _ := l.Lock(t.Context(), "a")
	ub, err := l.Lock(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	ub()
	ua()
}

func TestMapWaitHonoursTheContext(t *testing.T) {
	var l keyedlock.Map
	u, _ := l.Lock(t.Context(), "k")
	defer u()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Lock(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("gave up after %v, want about 50ms", d)
	}
	if l.Len() != 1 {
		t.Errorf("the waiter stayed in the map: %d keys", l.Len())
	}
}

func TestLock2OrdersKeys(t *testing.T) {
	var l keyedlock.Map
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := "x", "y"
			if i%2 == 0 {
				a, b = b, a
			}
			u, err := keyedlock.Lock2(t.Context(), &l, a, b)
			if err != nil {
				t.Error(err)
				return
			}
			u()
		}()
	}
	wg.Wait() // a deadlock hangs here
	u, err := keyedlock.Lock2(t.Context(), &l, "same", "same")
	if err != nil {
		t.Fatal(err)
	}
	u()
}

func TestFilesAcrossOpenFiles(t *testing.T) {
	dir := t.TempDir()
	l := keyedlock.Stack(&keyedlock.Map{}, keyedlock.Files{Dir: dir})
	other := keyedlock.Files{Dir: dir} // as another process would
	u, err := l.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := other.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second holder got %v, want to wait until the deadline", err)
	}
	u()
	u2, err := other.Lock(t.Context(), "k")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	u2()
}
