package mount

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

// locker hands out named locks that hold across goroutines (an in-process
// mutex per name) and across processes (flock on <dir>/<name>.lock), since
// FlexVolume calls are separate processes. Lock files are removed on unlock,
// so they do not pile up; the inode check in lockFile keeps that safe.
type locker struct {
	dir string

	mu   sync.Mutex
	held map[string]*namedMutex
}

type namedMutex struct {
	ch   chan struct{} // a token is in ch while the lock is held
	refs int           // goroutines holding or waiting
}

func newLocker(dir string) *locker {
	return &locker{dir: dir, held: map[string]*namedMutex{}}
}

// lock takes the named lock, waiting until it is free or ctx is done. The
// returned function releases it.
func (l *locker) lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	nm := l.held[name]
	if nm == nil {
		nm = &namedMutex{ch: make(chan struct{}, 1)}
		l.held[name] = nm
	}
	nm.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		nm.refs--
		if nm.refs == 0 {
			delete(l.held, name)
		}
		l.mu.Unlock()
	}
	select {
	case nm.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	f, err := lockFile(ctx, filepath.Join(l.dir, name+".lock"))
	if err != nil {
		<-nm.ch
		release()
		return nil, err
	}
	return func() {
		// Unlink before close: a process waiting on this inode then sees
		// that the path no longer names it and starts over.
		_ = os.Remove(f.Name())
		_ = f.Close()
		<-nm.ch
		release()
	}, nil
}

// lockFile opens (creating) name and takes an exclusive flock on it, polling
// so that ctx is honoured. It retries when the file it locked was removed or
// replaced meanwhile.
func lockFile(ctx context.Context, name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
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
				return f, nil
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
