// Package keyedlock provides mutual exclusion per key (a subvolume name, a
// mount target) whose wait honours a context: the one lock implementation
// the Pool, the backends and package mount use.
//
// Map is the in-process lock. Files adds a lock that holds across processes
// of one machine (flock on a file per key). Stack takes one Locker after
// another, so an in-process lock can guard a cross-process one; Lock2 takes
// two keys in a fixed order. Backends with their own cross-process lock (the
// cli backend's record locks in the Gluster volume) implement Locker.
package keyedlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Locker locks a key. Lock waits until the key is free or ctx is done; on
// success it returns the function that unlocks, on failure ctx's error (or
// the error that made locking impossible) and holds nothing.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Map is an in-process Locker: one mutex per key, created on demand and
// freed when nobody holds or waits for it. The zero Map is ready to use; a
// Map must not be copied after first use. It is safe for concurrent use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holders and waiters
}

// Lock locks key; see Locker.
func (l *Map) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*entry)
	}
	e := l.m[key]
	if e == nil {
		e = &entry{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	// select picks at random when both are ready: a done context wins.
	if err := ctx.Err(); err != nil {
		<-e.ch
		release()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { <-e.ch; release() }) }, nil
}

// Len returns the number of keys held or waited for (for tests and metrics).
func (l *Map) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Lock2 locks keys a and b of l in a fixed order, so that two calls locking
// the same pair cannot deadlock. a == b locks once.
func Lock2(ctx context.Context, l Locker, a, b string) (unlock func(), err error) {
	if a > b {
		a, b = b, a
	}
	ua, err := l.Lock(ctx, a)
	if err != nil {
		return nil, err
	}
	if a == b {
		return ua, nil
	}
	ub, err := l.Lock(ctx, b)
	if err != nil {
		ua()
		return nil, err
	}
	return func() { ub(); ua() }, nil
}

// Stack returns a Locker that locks key in each of ls in turn (and unlocks
// in reverse order): typically a Map first, so that goroutines of one
// process queue in memory, then a cross-process lock.
func Stack(ls ...Locker) Locker { return stack(ls) }

type stack []Locker

func (s stack) Lock(ctx context.Context, key string) (unlock func(), err error) {
	unlocks := make([]func(), 0, len(s))
	undo := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, l := range s {
		u, err := l.Lock(ctx, key)
		if err != nil {
			undo()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return undo, nil
}

// Files is a Locker across the processes of one machine: an exclusive
// flock on Dir/<key>.lock, polled so that ctx is honoured. Lock files are
// removed on unlock, so they do not pile up; Lock checks that the file it
// locked is still the one at the path. Goroutines of one process holding
// different open files exclude each other too, but queue fairly only
// behind a Map (see Stack). Keys must be valid file names.
type Files struct {
	Dir string
}

// Lock locks key; see Locker.
func (l Files) Lock(ctx context.Context, key string) (unlock func(), err error) {
	name := filepath.Join(l.Dir, key+".lock")
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	delay := time.Millisecond
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if sameFile(f, name) {
				return func() {
					// Unlink before close: a process waiting on this inode
					// then sees that the path no longer names it and
					// starts over.
					_ = os.Remove(name)
					_ = f.Close()
				}, nil
			}
			_ = f.Close()
			continue // the holder removed it; lock the new one
		}
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("flock %s: %w", name, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// sameFile reports whether the open file f is still the file at name.
func sameFile(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}
