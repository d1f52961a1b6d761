package heketi

import (
	"context"
	"sync"
)

// nameLocks serializes operations on one name within a Backend: heketi does
// not keep names unique across clusters nor check clone names, so the
// look-up before a create must not race another create of the same name.
// Waiting honours the context.
type nameLocks struct {
	mu sync.Mutex
	m  map[string]*nameLock
}

type nameLock struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holders and waiters
}

// lock locks name, or returns ctx's error if ctx ends first.
func (l *nameLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*nameLock{}
	}
	e := l.m[name]
	if e == nil {
		e = &nameLock{ch: make(chan struct{}, 1)}
		l.m[name] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, name)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// lock2 locks two distinct names in a fixed order, so that two calls
// locking the same pair cannot deadlock.
func (l *nameLocks) lock2(ctx context.Context, a, b string) (unlock func(), err error) {
	if a > b {
		a, b = b, a
	}
	ua, err := l.lock(ctx, a)
	if err != nil {
		return nil, err
	}
	if a == b {
		return ua, nil
	}
	ub, err := l.lock(ctx, b)
	if err != nil {
		ua()
		return nil, err
	}
	return func() { ub(); ua() }, nil
}
