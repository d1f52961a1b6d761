package cli

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
)

// PurgeStatus reports the background purge of deleted subvolumes.
type PurgeStatus struct {
	// Pending is the number of trash entries left after the last pass.
	Pending int
	// Busy is how many of them hold files still being written (modified
	// within Options.PurgeBusyAge) or directories that filled again: they
	// keep their limit and are retried.
	Busy int
	// FilesRemoved and BytesRemoved count what the purges of this Backend
	// removed since Open.
	FilesRemoved, BytesRemoved int64
	// Passes counts purge passes since Open.
	Passes int
	// LastError is the last pass's failure, nil if it succeeded.
	LastError error
}

// purger removes the trash in the background: one goroutine per Backend,
// woken by Delete, retrying entries it could not finish with backoff, and
// stopped by Close.
type purger struct {
	b      *Backend
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	runMu  sync.Mutex // one pass at a time in this process
	mu     sync.Mutex
	st     PurgeStatus
}

func newPurger(b *Backend) *purger {
	ctx, cancel := context.WithCancel(context.Background())
	return &purger{b: b, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// kick wakes the purger; it never blocks.
func (p *purger) kick() {
	if p == nil {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the purger's goroutine: a pass at start (resuming purges an
// earlier process left), on every kick, and while entries remain, after a
// delay doubling from 1 s to 30 s.
func (p *purger) run() {
	defer close(p.done)
	delay := time.Second
	for {
		st, _ := p.pass(p.ctx)
		wait := time.Duration(1<<62 - 1)
		if st.Pending > 0 {
			wait = delay
			if delay < 30*time.Second {
				delay *= 2
			}
		} else {
			delay = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-p.wake:
			t.Stop()
			delay = time.Second
		case <-t.C:
		}
	}
}

// stop ends the goroutine and waits for it.
func (p *purger) stop() {
	p.cancel()
	<-p.done
}

func (p *purger) status() PurgeStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// pass purges every trash entry it can under ctx and returns the status.
func (p *purger) pass(ctx context.Context) (PurgeStatus, error) {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	b := p.b
	entries, err := os.ReadDir(filepath.Join(b.mnt, trashDir))
	var errs []error
	if err != nil && !errors.Is(err, os.ErrNotExist) { // no trash yet: nothing to do
		errs = append(errs, subvolkit.E(subvolkit.Unavailable, "", "", err))
	}
	pending, busy := 0, 0
	var files, bytes int64
	for _, e := range entries {
		if ctx.Err() != nil {
			pending++
			continue
		}
		done, isBusy, nf, nb, err := p.purgeEntry(ctx, e.Name(), b.opts.PurgeBusyAge)
		files += nf
		bytes += nb
		if err != nil {
			errs = append(errs, err)
		}
		if !done {
			pending++
		}
		if isBusy {
			busy++
		}
	}
	p.mu.Lock()
	p.st.Pending, p.st.Busy = pending, busy
	p.st.FilesRemoved += files
	p.st.BytesRemoved += bytes
	p.st.Passes++
	p.st.LastError = errors.Join(errs...)
	st := p.st
	p.mu.Unlock()
	if st.LastError != nil && ctx.Err() == nil {
		b.log.WarnContext(ctx, "purge pass incomplete; it will be retried", "pending", pending, "err", st.LastError)
	}
	return st, st.LastError
}

// purgeEntry removes one trash entry: the data first, with the entry's
// limit still in place (a writer that still has a file open there stays
// bounded), then the limit, then the empty directory (a limit must never
// outlive its path: `quota list` then prints nothing). Files modified within
// the busy age are left for a later pass. Another process purging the same
// entry is skipped (a cluster-wide lock per entry).
func (p *purger) purgeEntry(ctx context.Context, entry string, busyAge time.Duration) (done, busy bool, files, bytes int64, err error) {
	b := p.b
	unlock, ok, err := b.locker.tryLock("trash/" + entry)
	if err != nil {
		return false, false, 0, 0, err
	}
	if !ok {
		return false, false, 0, 0, nil // another process is on it
	}
	defer unlock()
	rel := trashDir + "/" + entry
	dir := filepath.Join(b.mnt, rel)
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return true, false, 0, 0, nil
		}
		return false, false, 0, 0, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"lstat", dir, err})
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, false, 0, 0, subvolkit.E(subvolkit.Unavailable, "", "", err)
		}
		return true, false, 1, st.Size, nil
	}
	busy, files, bytes, err = b.emptyDir(ctx, dir, time.Now(), busyAge)
	b.failpoint("purge:emptied")
	if err != nil || busy {
		return false, busy, files, bytes, err
	}
	if err := b.g.removeLimit(ctx, volPath(rel)); err != nil && subvolkit.KindOf(err) != subvolkit.NotFound {
		return false, false, files, bytes, err
	}
	b.failpoint("purge:unlimited")
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Filled again after the limit went (a writer racing the
		// purge): the next pass removes the rest.
		return false, true, files, bytes, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return true, false, files, bytes, nil
}

// purgeWorkers is how many files (and, separately, directories) a purge
// works on at once: an unlink through FUSE is a round trip to the bricks,
// so they are overlapped.
const purgeWorkers = 8

// emptyDir removes dir's content depth first, leaving dir itself, with up
// to purgeWorkers files removed at once. Files modified after now-age, and
// directories that are not empty after their content went, make it report
// busy.
func (b *Backend) emptyDir(ctx context.Context, dir string, now time.Time, age time.Duration) (busy bool, files, bytes int64, err error) {
	em := &emptier{now: now, age: age, sem: make(chan struct{}, purgeWorkers), dirs: make(chan struct{}, purgeWorkers)}
	busy, err = em.empty(ctx, dir)
	return busy, em.files.Load(), em.bytes.Load(), err
}

type emptier struct {
	now          time.Time
	age          time.Duration
	sem          chan struct{} // file removals in flight
	dirs         chan struct{} // directories emptied by their own goroutine
	files, bytes atomic.Int64
}

func (em *emptier) empty(ctx context.Context, dir string) (busy bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards busy and firstErr
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			fail(subvolkit.E(subvolkit.Canceled, "", "", err))
			break
		}
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			sub := func() {
				bz, err := em.empty(ctx, p)
				if err == nil && !bz {
					if rerr := syscall.Rmdir(p); rerr != nil {
						switch {
						case errors.Is(rerr, syscall.ENOENT):
						case errors.Is(rerr, syscall.ENOTEMPTY):
							bz = true
						default:
							err = subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"rmdir", p, rerr})
						}
					}
				}
				if err != nil {
					fail(err)
				}
				if bz {
					mu.Lock()
					busy = true
					mu.Unlock()
				}
			}
			// Unlinks in one directory are serialized by the kernel (the
			// parent's lock): directories are emptied side by side when a
			// worker is free, else here.
			select {
			case em.dirs <- struct{}{}:
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-em.dirs }()
					sub()
				}()
			default:
				sub()
			}
			continue
		}
		em.sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-em.sem }()
			bz, err := em.unlink(e, p)
			if err != nil {
				fail(err)
			}
			if bz {
				mu.Lock()
				busy = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return busy, firstErr
}

// unlink removes one non-directory entry, unless it is a regular file
// modified within the busy age (still being written: it stays, bounded by
// the limit).
func (em *emptier) unlink(e fs.DirEntry, p string) (busy bool, err error) {
	var size int64
	if e.Type()&fs.ModeType == 0 { // regular file
		info, err := e.Info()
		if err != nil {
			return false, nil // gone meanwhile
		}
		if em.age > 0 && em.now.Sub(info.ModTime()) < em.age {
			return true, nil
		}
		size = info.Size()
	}
	if err := syscall.Unlink(p); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return false, nil
		}
		return false, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"unlink", p, err})
	}
	em.files.Add(1)
	em.bytes.Add(size)
	return false, nil
}

// Purge runs one purge pass of the trash now, under ctx, and reports the
// result: Pending 0 means every deleted subvolume is gone, limits
// included. The background purger does the same on its own; Purge is for
// callers (and tests) that want to wait for it.
func (b *Backend) Purge(ctx context.Context) (PurgeStatus, error) {
	if err := b.checkOpen(ctx, "purge", ""); err != nil {
		return PurgeStatus{}, err
	}
	return b.purger.pass(ctx)
}

// PurgeStatus reports the background purge's progress.
func (b *Backend) PurgeStatus() PurgeStatus { return b.purger.status() }
