package keyedlock_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/internal/keyedlock"
)

func TestStackedFilesAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	newLocker := func() keyedlock.Locker { return keyedlock.Stack(&keyedlock.Map{}, keyedlock.Files{Dir: dir}) }
	a, b := newLocker(), newLocker() // two "processes"
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "x")
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "x.lock"))

	// b waits for a's flock; a second goroutine of a waits on the mutex.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = b.Lock(short, "x")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	_, err = a.Lock(short2, "x")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	u2, err := b.Lock(ctx, "y")
	require.NoError(t, err, "other names are free")
	u2()

	got := make(chan func(), 1)
	go func() {
		u, err := b.Lock(ctx, "x")
		assert.NoError(t, err)
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("b got the lock while a holds it")
	case <-time.After(30 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("b never got the lock")
	}
	ents, _ := os.ReadDir(dir)
	assert.Empty(t, ents, "lock files are removed")

	// Mutual exclusion under contention, across both lockers.
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			l := a
			if i%2 == 0 {
				l = b
			}
			u, err := l.Lock(ctx, "z")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			inside++
			assert.Equal(t, 1, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			u()
		})
	}
	wg.Wait()
}
