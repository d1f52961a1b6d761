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
	dst := filepath.Join(b.mnt, warmDir, strconv.FormatInt(size, 10)+"."+nonce())
	return b.build(ctx, op, key, m, nil, nil, dst)
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
// subvolume of req.SizeBytes is claimed by renaming it into the staging
// area as <name>.<nonce> (of two processes claiming one, the rename lets
// one win), gets its marker, owner and mode there, and is renamed to
// /<name>. No gluster CLI call is made: the limit was set when it was
// built, and renames keep it. A crash after the claim leaves a staging
// entry that the next Create, Clone or Delete of the name, or Reconcile,
// removes.
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
	by, err := b.warmEntries()
	if err != nil {
		return nil, false, err
	}
	cands := by[req.SizeBytes]
	if len(cands) == 0 {
		return nil, false, nil
	}
	if err := b.clearName(ctx, req.Name); err != nil {
		return nil, false, err
	}
	// Start at a random entry, so that takers in several processes
	// rarely race for the same one.
	off := rand.IntN(len(cands))
	for i := range cands {
		if err := ctx.Err(); err != nil {
			return nil, false, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		entry := cands[(off+i)%len(cands)]
		rel := stagingDir + "/" + req.Name + "." + nonce()
		dir := filepath.Join(b.mnt, rel)
		err := os.Rename(filepath.Join(b.mnt, warmDir, entry), dir)
		if errors.Is(err, os.ErrNotExist) && b.ensureArea(stagingDir) {
			err = os.Rename(filepath.Join(b.mnt, warmDir, entry), dir)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // another process took it
		}
		if err != nil {
			return nil, false, subvolkit.E(subvolkit.Unavailable, "", "", err)
		}
		b.failpoint("take:claimed")
		sv, err := b.handOut(ctx, rel, m, req.Owner)
		if err != nil {
			return nil, false, b.discard(ctx, rel, req.Name, err)
		}
		return sv, true, nil
	}
	return nil, false, nil
}

// handOut finishes a claimed warm subvolume at rel: marker, owner, rename
// to the root.
func (b *Backend) handOut(ctx context.Context, rel string, m *marker, owner *backend.Ownership) (*backend.Subvol, error) {
	dir := filepath.Join(b.mnt, rel)
	if err := writeMarker(dir, m); err != nil {
		return nil, kindOr(subvolkit.Unavailable, err)
	}
	if owner != nil {
		if err := applyOwner(dir, owner); err != nil {
			return nil, kindOr(subvolkit.InvalidArgument, err)
		}
	}
	b.failpoint("take:ready")
	if err := ctx.Err(); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	dst := b.dir(m.Name)
	if err := os.Rename(dir, dst); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "%s appeared concurrently", volPath(m.Name))
		}
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.failpoint("take:rename")
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return b.subvol(m.Name, m, &st), nil
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
			err := b.trash(ctx, warmDir+"/"+e, warmKey(sz))
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
		size, ok := warmEntrySize(e.Name())
		detail := ""
		if m, merr := readMarker(filepath.Join(b.mnt, rel)); !ok || merr != nil || m.State != stateWarm || m.Size != size {
			if errors.Is(merr, errGone) {
				continue // taken meanwhile
			}
			detail = "not a complete warm subvolume"
		} else if l, lerr := b.readLimit(ctx, rel); lerr != nil || l.Hard != size {
			if subvolkit.KindOf(lerr) == subvolkit.NotFound {
				continue // taken meanwhile
			}
			detail = fmt.Sprintf("limit %s, want %s", quota.HumanSize(l.Hard), quota.HumanSize(size))
			if lerr != nil {
				detail = "limit unreadable: " + lerr.Error()
			}
		}
		if detail == "" {
			r.claims[volPath(rel)] = true
			continue
		}
		key := "warm"
		if ok {
			key = warmKey(size)
		}
		r.found(backend.ProblemHalfMade, key, volPath(rel), detail, func() error {
			return b.trash(ctx, rel, key)
		})
	}
	return nil
}

// isWarmPath reports whether a quota path is in the warm area.
func isWarmPath(p string) bool { return strings.HasPrefix(p, "/"+warmDir+"/") }
