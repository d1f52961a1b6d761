package cli

import (
	"context"
	"hash/fnv"
	"os"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
)

// fOFDSetLK is F_OFD_SETLK: record locks owned by an open file description,
// so two goroutines of one process exclude each other too. Gluster's locks
// translator makes them hold across every client of the volume.
const fOFDSetLK = 37

// nameLocker is a cluster-wide mutex per subvolume name: a one-byte record
// lock, at an offset hashed from the name, on one lock file inside the
// volume. Names whose hashes collide merely serialize.
type nameLocker struct {
	path string
}

var _ keyedlock.Locker = (*nameLocker)(nil)

// Lock takes the lock for name, polling (the kernel's blocking variant cannot
// be interrupted by ctx) until ctx is done.
func (l *nameLocker) Lock(ctx context.Context, name string) (unlock func(), err error) {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "lock", "", err)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(h.Sum64() % (1 << 30)), Len: 1}
	delay := 2 * time.Millisecond
	for {
		err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk)
		if err == nil {
			return func() { f.Close() }, nil // closing the description releases the lock
		}
		if err != syscall.EAGAIN && err != syscall.EACCES {
			f.Close()
			return nil, subvolkit.E(subvolkit.Unavailable, "lock", "", &pathErr{"fcntl lock", l.path, err})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
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
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(h.Sum64() % (1 << 30)), Len: 1}
	switch err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk); err {
	case nil:
		return func() { f.Close() }, true, nil
	case syscall.EAGAIN, syscall.EACCES:
		f.Close()
		return nil, false, nil
	default:
		f.Close()
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"fcntl lock", l.path, err})
	}
}
