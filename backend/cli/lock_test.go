package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnlockInBackground: an unlock returns before the lock is released,
// but this process's next Lock or tryLock of the name sees it released,
// and reset waits for the unlocks on their way, also while others start.
// (The record locks are on a local file here; on the volume they are the
// same calls, answered by the bricks.)
func TestUnlockInBackground(t *testing.T) {
	ctx := context.Background()
	l := &nameLocker{path: filepath.Join(t.TempDir(), "locks")}
	for i := range 200 {
		unlock, err := l.Lock(ctx, "a")
		require.NoError(t, err)
		unlock()
		again, ok, err := l.tryLock("a")
		require.NoError(t, err)
		require.True(t, ok, "round %d: the name is still locked right after its unlock returned", i)
		again()
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				unlock, err := l.Lock(ctx, fmt.Sprintf("g%d-%d", g, i%7))
				if !assert.NoError(t, err) {
					return
				}
				unlock()
			}
		})
	}
	for range 20 {
		l.reset() // as a heal does, under running operations
	}
	wg.Wait()
	l.reset()
	l.rmu.Lock()
	left := len(l.releasing)
	l.rmu.Unlock()
	assert.Zero(t, left, "reset returned with unlocks on their way")
	l.mu.Lock()
	assert.Empty(t, l.free, "reset keeps no descriptions")
	l.mu.Unlock()
}
