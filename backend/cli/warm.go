package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
)

var _ backend.Warmer = (*Backend)(nil)

// Warm subvolumes — complete ones (limit set and read back, marker "warm")
// without a name — live at the volume's root as
// "<warmPrefix><size>.<nonce>": they are built in the staging area and
// renamed there once complete, and TakeWarm renames one to its name, which
// keeps its limit. A rename within one directory is the cheapest GlusterFS
// has for a directory: the quota translator checks no limit for it, and it
// took 1.8–3.4 ms where one from /.subvolkit/warm took 2.3–4.7 ms. The
// prefix cannot be a subvolume name (those start with a letter or digit),
// so List and every other scan of the root pass them by.
//
// legacyWarmDir is where versions before held them; Reconcile moves what
// is left there to the trash.
const (
	warmPrefix    = metaDir + "-warm."
	legacyWarmDir = metaDir + "/warm"
)

// warmRelist is how long after a listing of the root finds no warm
// subvolume of a size TakeWarm reports none without listing again: the
// root holds every subvolume, so a listing is one ReadDir of thousands of
// entries. Warm and WarmCounts (which the Pool's refiller calls) bring the
// remembered entries up to date meanwhile.
const warmRelist = time.Second

// warmKey is the lock key, and the staging entry's prefix, of a warm
// subvolume of size being built. The underscore keeps it apart from every
// subvolume name.
func warmKey(size int64) string { return "_warm-" + strconv.FormatInt(size, 10) }

// warmEntrySize reads the size of a warm entry "<warmPrefix><size>.<nonce>".
func warmEntrySize(entry string) (int64, bool) {
	rest, ok := strings.CutPrefix(entry, warmPrefix)
	if !ok {
		return 0, false
	}
	s, ok := entryName(rest)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// Warm implements backend.Warmer: one warm subvolume of size is built in
// the staging area (mkdir, marker, limit-usage and read back: the same
// steps and cost as Create) and renamed to the root as a warm entry. Builders of one
// size take one cluster-wide lock, so several processes refilling the same
// class take turns.
func (b *Backend) Warm(ctx context.Context, size int64) error {
	const op = "warm"
	if err := b.checkOpen(ctx, op, ""); err != nil {
		return err
	}
	if err := b.checkCreate(op, "", size, nil); err != nil {
		return err
	}
	key := warmKey(size)
	unlock, err := b.locker.Lock(ctx, key)
	if err != nil {
		return subvolkit.WithOp("", "", err)
	}
	defer unlock()
	m := b.warmMarker(size)
	entry := warmPrefix + strconv.FormatInt(size, 10) + "." + nonce()
	if err := b.build(ctx, op, key, m, nil, nil, filepath.Join(b.mnt, entry), nil); err != nil {
		return err
	}
	b.warmCache.push(size, entry)
	return nil
}

// warmEntries lists the warm entries at the root by size: one ReadDir of
// the root, names only.
func (b *Backend) warmEntries() (map[int64][]string, error) {
	names, err := rootNamesWithPrefix(b.mnt, warmPrefix)
	if err != nil {
		return nil, err
	}
	by := map[int64][]string{}
	for _, n := range names {
		if size, ok := warmEntrySize(n); ok {
			by[size] = append(by[size], n)
		}
	}
	return by, nil
}

// WarmCounts implements backend.Warmer: one ReadDir of the root, whose
// answer also refreshes the entries TakeWarm remembers.
func (b *Backend) WarmCounts(ctx context.Context) (map[int64]int, error) {
	if err := b.checkOpen(ctx, "warm counts", ""); err != nil {
		return nil, err
	}
	by, err := b.warmEntries()
	if err != nil {
		return nil, err
	}
	b.warmCache.set(by)
	counts := make(map[int64]int, len(by))
	for size, es := range by {
		counts[size] = len(es)
	}
	return counts, nil
}

// TakeWarm implements backend.Warmer. A warm subvolume of req.SizeBytes is
// picked, statted and locked with its own cluster-wide lock (of two
// processes, one gets it) while the name's lock is taken; then, under both,
// its marker is read and replaced while the name is checked free at the
// root, it is given its owner and mode where it is, and it is renamed to
// /<name>, which keeps its limit: one rename and no gluster CLI call.
//
// The stat runs beside the locks rather than after them: its round trips
// (the root's attributes, invalidated by the last rename there, and the
// entry's look-up) then overlap the locks' instead of delaying the rest. It
// is no staler than a stat after the locks would be, since the FUSE client
// caches attributes for a second anyway. That cache is also why the marker
// is read before it is replaced (see takeEntry): the entry's path may lead
// to a subvolume another process has just made of it.
//
// Warm entries are complete by construction (Warm renames them in after
// the limit is read back). What a taker that crashed before its rename
// leaves behind is a warm entry with a new marker and maybe a new owner or
// mode: the next take finds it by the marker (or the owner or mode) and
// moves it to the trash; Reconcile and DrainWarm remove it too.
//
// The entries of each size are remembered between calls; Warm adds the
// ones it makes and WarmCounts refreshes them. When none is left in
// memory, the root is listed, at most once per warmRelist.
func (b *Backend) TakeWarm(ctx context.Context, req *backend.CreateRequest) (_ *backend.Subvol, _ bool, err error) {
	const op = "create"
	if err := b.checkCreate(op, req.Name, req.SizeBytes, req.Parameters); err != nil {
		return nil, false, err
	}
	m := &marker{State: stateReady, Name: req.Name, Size: req.SizeBytes, Created: time.Now().UTC(), Labels: req.Labels}
	if err := checkNew(m, req.Owner); err != nil {
		return nil, false, err
	}
	if err := b.checkArgs(ctx, op, req.Name); err != nil {
		return nil, false, err
	}
	entry, ok, err := b.warmCache.pop(req.SizeBytes, b.warmEntries)
	if err != nil || !ok {
		return nil, false, err
	}
	// The entry's lock is tried while the name's is taken: tryLock never
	// waits, so the order of the two does not matter.
	entryLock, entryStat := b.tryLockAsync(entry), lstatAsync(filepath.Join(b.mnt, entry))
	unlock, err := b.begin(ctx, op, req.Name)
	if err != nil {
		if el := entryLock(); el.ok {
			el.unlock()
		}
		b.warmCache.push(req.SizeBytes, entry)
		return nil, false, err
	}
	defer unlock()
	var rootFree func() error // the root check's answer, once started
	defer func() {
		if rootFree != nil {
			_ = rootFree() // it may still be moving a leftover of the name: wait
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			if el := entryLock(); el.ok {
				el.unlock()
			}
			b.warmCache.push(req.SizeBytes, entry)
			return nil, false, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		if rootFree == nil {
			// The name must be free (staging leftovers of it do not
			// matter here: Create, Delete and Reconcile remove them).
			rootFree = async(func() error { return b.clearRoot(ctx, req.Name) })
		}
		sv, took, err := b.takeEntry(ctx, entry, entryLock, entryStat, m, req.Owner, rootFree)
		if took || err != nil {
			return sv, took, err
		}
		if entry, ok, err = b.warmCache.pop(req.SizeBytes, b.warmEntries); err != nil || !ok {
			return nil, false, err
		}
		entryLock, entryStat = b.tryLockAsync(entry), lstatAsync(filepath.Join(b.mnt, entry))
	}
}

// heldLock is tryLock's answer.
type heldLock struct {
	unlock func()
	ok     bool
	err    error
}

// tryLockAsync starts tryLock(key) and returns a function that waits for
// its answer.
func (b *Backend) tryLockAsync(key string) func() heldLock {
	var h heldLock
	wait := async(func() error {
		h.unlock, h.ok, h.err = b.locker.tryLock(key)
		return nil
	})
	return func() heldLock {
		_ = wait()
		return h
	}
}

// lstatAsync starts an lstat of path and returns a function that waits
// for its answer.
func lstatAsync(path string) func() (*syscall.Stat_t, error) {
	st := new(syscall.Stat_t)
	wait := async(func() error { return syscall.Lstat(path, st) })
	return func() (*syscall.Stat_t, error) {
		if err := wait(); err != nil {
			return nil, err
		}
		return st, nil
	}
}

// takeEntry hands out the warm entry as m.Name, if its lock (entryLock's
// answer) is had, it is still stock (its warm marker, and by entryStat's
// answer its owner and mode, are untouched), and rootFree (the name's check
// at the root) answers nil. It reports false when the entry is taken, gone
// or spoilt (then it goes to the trash); when rootFree fails, the entry is
// given its warm marker back and returned to warmCache.
func (b *Backend) takeEntry(ctx context.Context, entry string, entryLock func() heldLock, entryStat func() (*syscall.Stat_t, error), m *marker, owner *backend.Ownership, rootFree func() error) (*backend.Subvol, bool, error) {
	rel := entry
	dir := filepath.Join(b.mnt, rel)
	el := entryLock()
	if el.err != nil || !el.ok {
		return nil, false, el.err
	}
	defer el.unlock()
	// The FUSE client keeps names for a second: when another process took
	// the entry since this one last looked it up, the entry's path still
	// leads to that process's subvolume, and a marker write or chown
	// through it would land there. The marker the entry has now, read
	// through the inode the path leads to, tells: every taker replaces
	// the warm marker, under the entry's lock (held here now), before it
	// changes anything else. The name's check at the root runs meanwhile.
	// The read waits for the stat (the owner and mode a rename keeps, so
	// no stat after it), whose look-up of the entry it then needs not
	// repeat.
	st, serr := entryStat()
	var cur *marker
	var rerr error
	if serr == nil {
		cur, rerr = readMarker(dir)
	}
	switch {
	case errors.Is(rerr, errGone), errors.Is(serr, syscall.ENOENT):
		return nil, false, nil // taken or drained meanwhile
	case serr != nil:
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"lstat", dir, serr})
	case errors.As(rerr, new(*pathErr)):
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", rerr)
	case rerr != nil || cur.State != stateWarm || cur.Size != m.Size || !b.pristine(st):
		// Taken by another process, or left by a taker that crashed
		// before its rename (with a new marker and maybe an owner or
		// mode). The trash's rename names the entry to the bricks, so it
		// moves only the latter and finds the former gone.
		terr := b.trash(ctx, rel, warmKey(m.Size))
		switch {
		case terr == nil:
			b.log.InfoContext(ctx, "removed a spoilt warm subvolume", "entry", entry, "uid", st.Uid, "gid", st.Gid, "mode", fmt.Sprintf("%#o", st.Mode&0o7777))
		case subvolkit.KindOf(terr) != subvolkit.NotFound:
			return nil, false, terr
		}
		return nil, false, nil
	}
	if err := writeMarker(dir, m); err != nil {
		return nil, false, b.discard(ctx, rel, warmKey(m.Size), kindOr(subvolkit.Unavailable, err))
	}
	b.failpoint("take:marked")
	if err := rootFree(); err != nil {
		// The name is taken: the entry stays stock.
		if werr := writeMarker(dir, b.warmMarker(m.Size)); werr != nil {
			return nil, false, b.discard(ctx, rel, warmKey(m.Size), errors.Join(err, werr))
		}
		b.warmCache.push(m.Size, entry)
		return nil, false, err
	}
	if err := b.handOut(ctx, dir, m, owner); errors.Is(err, syscall.ENOENT) {
		// Drained or reconciled into the trash since this process last
		// looked the entry up (its marker is read through a cached name
		// too, but the rename names it to the bricks): the new marker and
		// owner went to the trash, which removes them.
		return nil, false, nil
	} else if err != nil {
		return nil, false, b.discard(ctx, rel, warmKey(m.Size), err)
	}
	if owner != nil {
		if owner.UID >= 0 {
			st.Uid = uint32(owner.UID)
		}
		if owner.GID >= 0 {
			st.Gid = uint32(owner.GID)
		}
		st.Mode = st.Mode&^0o7777 | ownerMode(owner) // handOut's chmod
	}
	return b.subvol(m.Name, m, st), true, nil
}

// warmMarker is the marker of a warm subvolume of size.
func (b *Backend) warmMarker(size int64) *marker {
	return &marker{State: stateWarm, Size: size, Created: time.Now().UTC()}
}

// pristine reports whether a warm entry has the owner and mode Warm gave
// it: this process's user and group (warm subvolumes are made and taken
// by processes of one user), mode 0755.
func (b *Backend) pristine(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFDIR && st.Mode&0o7777 == ownerMode(nil) &&
		int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()
}

// handOut finishes the warm subvolume at dir, whose marker is written:
// owner, rename to the root.
func (b *Backend) handOut(ctx context.Context, dir string, m *marker, owner *backend.Ownership) error {
	if owner != nil {
		if err := applyOwner(dir, owner, true); err != nil {
			return kindOr(subvolkit.InvalidArgument, err)
		}
	}
	b.failpoint("take:owner")
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	if err := renameTo(dir, b.dir(m.Name)); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "%s appeared concurrently", volPath(m.Name))
		}
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.failpoint("take:rename")
	return nil
}

// warmCache remembers warm entries by size between TakeWarm calls, so that
// a take needs no ReadDir while the stock lasts. Entries may have been
// taken by other processes meanwhile: takeEntry finds out.
type warmCache struct {
	mu     sync.Mutex
	by     map[int64][]string
	listed time.Time // of the last listing
}

// pop returns a remembered entry of size, listing the root with list when
// none is left and the last listing is older than warmRelist.
func (c *warmCache) pop(size int64, list func() (map[int64][]string, error)) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.by[size]) == 0 {
		if time.Since(c.listed) < warmRelist {
			return "", false, nil
		}
		by, err := list()
		if err != nil {
			return "", false, err
		}
		c.by, c.listed = by, time.Now()
		// Start at a random entry, so that takers in several
		// processes rarely pick the same one.
		if es := c.by[size]; len(es) > 1 {
			k := rand.IntN(len(es))
			c.by[size] = append(es[k:], es[:k]...)
		}
	}
	es := c.by[size]
	if len(es) == 0 {
		return "", false, nil
	}
	c.by[size] = es[1:]
	return es[0], true, nil
}

// set replaces the remembered entries with a listing's.
func (c *warmCache) set(by map[int64][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by, c.listed = by, time.Now()
}

// push remembers entry.
func (c *warmCache) push(size int64, entry string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[int64][]string{}
	}
	c.by[size] = append(c.by[size], entry)
}

// DrainWarm implements backend.Warmer: surplus warm subvolumes are renamed
// into the trash, whose purger removes their limits.
func (b *Backend) DrainWarm(ctx context.Context, size int64, keep int) (int, error) {
	if err := b.checkOpen(ctx, "drain warm", ""); err != nil {
		return 0, err
	}
	if size < 0 || keep < 0 {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %d and keep %d must not be negative", size, keep)
	}
	by, err := b.warmEntries()
	if err != nil {
		return 0, err
	}
	removed := 0
	for sz, es := range by {
		if size != 0 && sz != size {
			continue
		}
		for _, e := range es[min(keep, len(es)):] {
			if err := ctx.Err(); err != nil {
				return removed, subvolkit.E(subvolkit.Canceled, "", "", err)
			}
			rel := e
			unlockE, free, err := b.locker.tryLock(rel)
			if err != nil {
				return removed, err
			}
			if !free {
				continue // being taken
			}
			err = b.trash(ctx, rel, warmKey(sz))
			unlockE()
			if subvolkit.KindOf(err) == subvolkit.NotFound {
				continue // taken meanwhile
			}
			if err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// warm checks the warm entries for Reconcile: every entry's limit must be
// its size; an entry that is not a warm subvolume of ours, or whose limit
// disagrees, goes to the trash, and so does everything left in
// legacyWarmDir. Their limits are claimed, so that the limits step does not
// call them orphans.
func (r *reconciler) warm(ctx context.Context) error {
	b := r.b
	// Names with the prefix but no valid size too: checkWarm removes them.
	ents, err := rootNamesWithPrefix(b.mnt, warmPrefix)
	if err != nil {
		return err
	}
	if err := r.legacyWarm(ctx); err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		r.rep.Scanned++
		rel := e
		unlockE, free, err := b.locker.tryLock(rel)
		if err != nil {
			return err
		}
		if !free {
			r.claims[volPath(rel)] = true // being handed out
			continue
		}
		r.checkWarm(ctx, rel, e)
		unlockE()
	}
	return nil
}

// checkWarm checks one warm entry; the caller holds its lock.
func (r *reconciler) checkWarm(ctx context.Context, rel, entry string) {
	b := r.b
	size, ok := warmEntrySize(entry)
	detail := ""
	if m, merr := readMarker(filepath.Join(b.mnt, rel)); !ok || merr != nil || m.State != stateWarm || m.Size != size {
		if errors.Is(merr, errGone) {
			return // taken meanwhile
		}
		detail = "not a complete warm subvolume"
	} else if l, lerr := b.readLimit(ctx, rel); lerr != nil || l.Hard != size {
		if subvolkit.KindOf(lerr) == subvolkit.NotFound {
			return // taken meanwhile
		}
		detail = fmt.Sprintf("limit %s, want %s", quota.HumanSize(l.Hard), quota.HumanSize(size))
		if lerr != nil {
			detail = "limit unreadable: " + lerr.Error()
		}
	}
	if detail == "" {
		r.claims[volPath(rel)] = true
		return
	}
	key := "warm"
	if ok {
		key = warmKey(size)
	}
	r.found(backend.ProblemHalfMade, key, volPath(rel), detail, func() error {
		return b.trash(ctx, rel, key)
	})
}

// legacyWarm moves every entry of legacyWarmDir (complete warm subvolumes
// of an older version, or its leftovers) to the trash, whose purger
// removes their limits.
func (r *reconciler) legacyWarm(ctx context.Context) error {
	b := r.b
	ents, err := b.readArea(legacyWarmDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		r.rep.Scanned++
		rel := legacyWarmDir + "/" + e.Name()
		r.found(backend.ProblemHalfMade, "warm", volPath(rel), "a warm subvolume where an older version kept them", func() error {
			return b.trash(ctx, rel, "warm")
		})
	}
	return nil
}

// rootNamesWithPrefix reads the names at the root of mnt that start with
// prefix.
func rootNamesWithPrefix(mnt, prefix string) ([]string, error) {
	f, err := os.Open(mnt)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	defer f.Close()
	all, err := f.Readdirnames(-1)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	var names []string
	for _, n := range all {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	return names, nil
}

// isWarmPath reports whether a quota path is a warm entry's, or in
// legacyWarmDir.
func isWarmPath(p string) bool {
	return strings.HasPrefix(p, "/"+warmPrefix) || strings.HasPrefix(p, "/"+legacyWarmDir+"/")
}
