package cli

import (
	"context"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
)

// fOFDSetLK is F_OFD_SETLK: record locks owned by an open file description,
// so two goroutines of one process exclude each other too. Gluster's locks
// translator makes them hold across every client of the volume.
const fOFDSetLK = 37

// maxFreeLockFiles bounds the open descriptions of the lock file a
// nameLocker keeps for reuse.
const maxFreeLockFiles = 16

// nameLocker is a cluster-wide mutex per subvolume name: a one-byte record
// lock, at an offset hashed from the name, on one lock file inside the
// volume. Names whose hashes collide merely serialize.
//
// Each held lock has an open file description of its own (OFD locks belong
// to the description, so two locks held through one would not exclude each
// other). Released descriptions are unlocked (F_UNLCK) and kept in a small
// free list, which saves an open (a look-up and an open on the mount) per
// lock; reset drops them when the mount they were opened on goes away.
//
// The unlock, a round trip to the bricks, runs after the unlock function
// returns, so that no operation waits for it. A Lock or tryLock of this
// process at the same offset first waits for it, as if it had been made
// in place; other processes see the lock held a little longer. reset waits
// for the unlocks on their way.
type nameLocker struct {
	path string

	mu   sync.Mutex
	free []*os.File
	gen  uint64 // bumped by reset: descriptions of an older mount are closed, not kept

	rmu       sync.Mutex
	releasing map[int64]chan struct{} // offsets whose unlock is on its way, closed when done
}

// releaseWait bounds how long reset waits for unlocks on their way (a
// wedged client never answers them; closing the descriptions drops them).
const releaseWait = 10 * time.Second

var _ keyedlock.Locker = (*nameLocker)(nil)

// file returns a description of the lock file that holds no lock.
func (l *nameLocker) file() (*os.File, uint64, error) {
	l.mu.Lock()
	gen := l.gen
	if n := len(l.free); n > 0 {
		f := l.free[n-1]
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return f, gen, nil
	}
	l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	return f, gen, err
}

// release unlocks lk on f and keeps f for reuse, or closes it (which
// releases the lock too) if the unlock fails or enough are kept.
func (l *nameLocker) release(f *os.File, gen uint64, lk syscall.Flock_t) {
	lk.Type = syscall.F_UNLCK
	if err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk); err != nil {
		f.Close()
		return
	}
	l.put(f, gen)
}

// unlocker returns the unlock function of a held lock, which starts the
// unlock and returns; calls after the first do nothing.
func (l *nameLocker) unlocker(f *os.File, gen uint64, lk syscall.Flock_t) func() {
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		ch := make(chan struct{})
		l.rmu.Lock()
		if l.releasing == nil {
			l.releasing = make(map[int64]chan struct{})
		}
		l.releasing[lk.Start] = ch // this process holds the offset: nothing else is on its way there
		l.rmu.Unlock()
		go func() {
			l.release(f, gen, lk)
			l.rmu.Lock()
			delete(l.releasing, lk.Start)
			l.rmu.Unlock()
			close(ch)
		}()
	}
}

// settle waits until no unlock of this process is on its way at lk's
// offset, or ctx is done.
func (l *nameLocker) settle(ctx context.Context, lk syscall.Flock_t) error {
	l.rmu.Lock()
	ch := l.releasing[lk.Start]
	l.rmu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// put keeps f, which holds no lock, for reuse.
func (l *nameLocker) put(f *os.File, gen uint64) {
	l.mu.Lock()
	if gen == l.gen && len(l.free) < maxFreeLockFiles {
		l.free = append(l.free, f)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	f.Close()
}

// reset closes the kept descriptions; those in use are closed when their
// locks are released. It first waits for the unlocks on their way when it
// is called (a WaitGroup would not do: unlocks may start meanwhile, while
// a mount is healed under running operations). Called when the mount is
// replaced and on Close.
func (l *nameLocker) reset() {
	l.rmu.Lock()
	var onTheirWay []chan struct{}
	for _, ch := range l.releasing {
		onTheirWay = append(onTheirWay, ch)
	}
	l.rmu.Unlock()
	t := time.NewTimer(releaseWait)
	defer t.Stop()
wait:
	for _, ch := range onTheirWay {
		select {
		case <-ch:
		case <-t.C:
			break wait
		}
	}
	l.mu.Lock()
	l.gen++
	free := l.free
	l.free = nil
	l.mu.Unlock()
	for _, f := range free {
		f.Close()
	}
}

func lockRange(key string) syscall.Flock_t {
	h := fnv.New64a()
	h.Write([]byte(key))
	return syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(h.Sum64() % (1 << 30)), Len: 1}
}

// Lock takes the lock for name, polling (the kernel's blocking variant cannot
// be interrupted by ctx) until ctx is done.
func (l *nameLocker) Lock(ctx context.Context, name string) (unlock func(), err error) {
	lk := lockRange(name)
	if err := l.settle(ctx, lk); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "lock", "", err)
	}
	f, gen, err := l.file()
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "lock", "", err)
	}
	delay := 2 * time.Millisecond
	for {
		err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk)
		if err == nil {
			return l.unlocker(f, gen, lk), nil
		}
		if err != syscall.EAGAIN && err != syscall.EACCES {
			f.Close()
			return nil, subvolkit.E(subvolkit.Unavailable, "lock", "", &pathErr{"fcntl lock", l.path, err})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			l.put(f, gen)
			return nil, subvolkit.E(subvolkit.Canceled, "lock", "", ctx.Err())
		case <-t.C:
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// tryLock takes the lock for key if it is free and reports whether it did.
func (l *nameLocker) tryLock(key string) (unlock func(), ok bool, err error) {
	lk := lockRange(key)
	_ = l.settle(context.Background(), lk) // one round trip at most
	f, gen, err := l.file()
	if err != nil {
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	switch err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk); err {
	case nil:
		return l.unlocker(f, gen, lk), true, nil
	case syscall.EAGAIN, syscall.EACCES:
		l.put(f, gen)
		return nil, false, nil
	default:
		f.Close()
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"fcntl lock", l.path, err})
	}
}
