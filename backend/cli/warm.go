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

// warmDir holds warm subvolumes: complete ones (limit set and read back,
// marker "warm") without a name, each called "<size>.<nonce>". They are
// built in the staging area and renamed in, so the area holds only complete
// ones; TakeWarm renames one out, which keeps its limit.
const warmDir = metaDir + "/warm"

// warmKey is the lock key, and the staging entry's prefix, of a warm
// subvolume of size being built. The underscore keeps it apart from every
// subvolume name.
func warmKey(size int64) string { return "_warm-" + strconv.FormatInt(size, 10) }

// warmEntrySize reads the size of a warm area entry "<size>.<nonce>".
func warmEntrySize(entry string) (int64, bool) {
	s, ok := entryName(entry)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// Warm implements backend.Warmer: one warm subvolume of size is built in
// the staging area (mkdir, marker, limit-usage and read back: the same
// steps and cost as Create) and renamed into the warm area. Builders of one
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
	if _, err := os.Stat(filepath.Join(b.mnt, warmDir)); errors.Is(err, os.ErrNotExist) {
		b.ensureArea(warmDir)
	}
	m := &marker{State: stateWarm, Size: size, Created: time.Now().UTC()}
	entry := strconv.FormatInt(size, 10) + "." + nonce()
	if err := b.build(ctx, op, key, m, nil, nil, filepath.Join(b.mnt, warmDir, entry), nil); err != nil {
		return err
	}
	b.warmCache.push(size, entry)
	return nil
}

// warmEntries lists the warm area's entries by size.
func (b *Backend) warmEntries() (map[int64][]string, error) {
	ents, err := os.ReadDir(filepath.Join(b.mnt, warmDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	by := map[int64][]string{}
	for _, e := range ents {
		if size, ok := warmEntrySize(e.Name()); ok {
			by[size] = append(by[size], e.Name())
		}
	}
	return by, nil
}

// WarmCounts implements backend.Warmer: one ReadDir of the warm area.
func (b *Backend) WarmCounts(ctx context.Context) (map[int64]int, error) {
	if err := b.checkOpen(ctx, "warm counts", ""); err != nil {
		return nil, err
	}
	by, err := b.warmEntries()
	if err != nil {
		return nil, err
	}
	counts := make(map[int64]int, len(by))
	for size, es := range by {
		counts[size] = len(es)
	}
	return counts, nil
}

// TakeWarm implements backend.Warmer. Under the name's lock, a warm
// subvolume of req.SizeBytes is picked under its own cluster-wide lock (of
// two processes, one gets it), checked (its marker still says "warm"),
// given the new marker, owner and mode where it is, and renamed to /<name>,
// which keeps its limit: one rename and no gluster CLI call. A crash before
// the rename leaves a warm entry whose marker no longer says "warm", which
// the next TakeWarm, DrainWarm or Reconcile moves to the trash.
//
// The check that the name is free at the root runs while the entry is
// locked and read: each is a round trip to the bricks, and none needs
// another's answer.
//
// The entries of each size are remembered between calls (a ReadDir of the
// warm area when none is left in memory); Warm adds the ones it makes.
func (b *Backend) TakeWarm(ctx context.Context, req *backend.CreateRequest) (_ *backend.Subvol, _ bool, err error) {
	const op = "create"
	if err := b.checkCreate(op, req.Name, req.SizeBytes, req.Parameters); err != nil {
		return nil, false, err
	}
	m := &marker{State: stateReady, Name: req.Name, Size: req.SizeBytes, Created: time.Now().UTC(), Labels: req.Labels}
	if err := checkNew(m, req.Owner); err != nil {
		return nil, false, err
	}
	unlock, err := b.begin(ctx, op, req.Name)
	if err != nil {
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
			return nil, false, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		entry, ok, err := b.warmCache.pop(req.SizeBytes, b.warmEntries)
		if err != nil || !ok {
			return nil, false, err
		}
		if rootFree == nil {
			// The name must be free (staging leftovers of it do not
			// matter here: Create, Delete and Reconcile remove them).
			rootFree = async(func() error { return b.clearRoot(ctx, req.Name) })
		}
		sv, took, err := b.takeEntry(ctx, entry, m, req.Owner, rootFree)
		if took || err != nil {
			return sv, took, err
		}
	}
}

// takeEntry hands out the warm entry as m.Name, if nobody else has it and
// rootFree (the name's check at the root) answers nil. It reports false
// when the entry is taken, gone or not a clean warm subvolume (then it goes
// to the trash); when rootFree fails, the entry goes back to warmCache.
func (b *Backend) takeEntry(ctx context.Context, entry string, m *marker, owner *backend.Ownership, rootFree func() error) (*backend.Subvol, bool, error) {
	rel := warmDir + "/" + entry
	dir := filepath.Join(b.mnt, rel)
	unlockE, free, err := b.locker.tryLock(rel)
	if err != nil || !free {
		return nil, false, err
	}
	defer unlockE()
	// The entry's owner and mode (a rename keeps them) are read with its
	// marker, instead of a stat after the rename.
	var st syscall.Stat_t
	statted := async(func() error { return syscall.Lstat(dir, &st) })
	cur, err := readMarker(dir)
	serr := statted()
	switch {
	case errors.Is(err, errGone):
		return nil, false, nil // taken or drained meanwhile
	case err != nil || cur.State != stateWarm || cur.Size != m.Size:
		// Left by a taker that crashed before its rename.
		b.log.InfoContext(ctx, "removing a spoilt warm subvolume", "entry", entry, "err", err)
		if terr := b.trash(ctx, rel, warmKey(m.Size)); terr != nil && subvolkit.KindOf(terr) != subvolkit.NotFound {
			return nil, false, terr
		}
		return nil, false, nil
	case serr != nil:
		return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"lstat", dir, serr})
	}
	if err := rootFree(); err != nil {
		b.warmCache.push(m.Size, entry)
		return nil, false, err
	}
	if err := b.handOut(ctx, dir, m, owner); err != nil {
		return nil, false, b.discard(ctx, rel, warmKey(m.Size), err)
	}
	if owner != nil {
		if owner.UID >= 0 {
			st.Uid = uint32(owner.UID)
		}
		if owner.GID >= 0 {
			st.Gid = uint32(owner.GID)
		}
		st.Mode = ownerMode(owner) // handOut's chmod
	}
	return b.subvol(m.Name, m, &st), true, nil
}

// handOut finishes the warm subvolume at dir: marker, owner, rename to the
// root.
func (b *Backend) handOut(ctx context.Context, dir string, m *marker, owner *backend.Ownership) error {
	if err := writeMarker(dir, m); err != nil {
		return kindOr(subvolkit.Unavailable, err)
	}
	b.failpoint("take:marked")
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
	mu sync.Mutex
	by map[int64][]string
}

// pop returns a remembered entry of size, listing the area with list when
// none is left.
func (c *warmCache) pop(size int64, list func() (map[int64][]string, error)) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.by[size]) == 0 {
		by, err := list()
		if err != nil {
			return "", false, err
		}
		c.by = by
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
			rel := warmDir + "/" + e
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

// warm checks the warm area for Reconcile: every entry's limit must be its
// size; an entry that is not a warm subvolume of ours, or whose limit
// disagrees, goes to the trash. Their limits are claimed, so that the limits
// step does not call them orphans.
func (r *reconciler) warm(ctx context.Context) error {
	b := r.b
	ents, err := os.ReadDir(filepath.Join(b.mnt, warmDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		r.rep.Scanned++
		rel := warmDir + "/" + e.Name()
		unlockE, free, err := b.locker.tryLock(rel)
		if err != nil {
			return err
		}
		if !free {
			r.claims[volPath(rel)] = true // being handed out
			continue
		}
		r.checkWarm(ctx, rel, e.Name())
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

// isWarmPath reports whether a quota path is in the warm area.
func isWarmPath(p string) bool { return strings.HasPrefix(p, "/"+warmDir+"/") }
