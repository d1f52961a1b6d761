package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
)

// The backend's areas under metaDir. A subvolume is built in staging and
// renamed to the volume's root when it is complete; a deleted one is renamed
// into trash and purged in the background; an archived one is renamed into
// archive. A rename keeps the directory's quota limit (gluster-facts §F), so
// the data is bounded by the limit wherever it is.
const (
	stagingDir = metaDir + "/staging"
	trashDir   = metaDir + "/trash"
	archiveDir = metaDir + "/archive"
)

// nonce returns a unique suffix for an entry of the staging or trash area:
// the time in nanoseconds and 4 random bytes, in hex (no dots).
func nonce() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%x%s", time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// entryName splits a staging or trash entry "<name>.<nonce>" into name.
func entryName(entry string) (string, bool) {
	i := strings.LastIndexByte(entry, '.')
	if i <= 0 || i == len(entry)-1 {
		return "", false
	}
	return entry[:i], true
}

// ensureArea makes one of the backend's areas if it is missing and reports
// whether it did (so that the caller retries).
func (b *Backend) ensureArea(area string) bool {
	if _, err := os.Stat(filepath.Join(b.mnt, area)); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	return os.MkdirAll(filepath.Join(b.mnt, area), 0o700) == nil
}

// readArea lists one of the backend's areas (a path relative to the
// volume's root); a missing area is empty.
func (b *Backend) readArea(area string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(filepath.Join(b.mnt, area))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return ents, nil
}

// kindOr keeps the kind err already has, or gives it kind.
func kindOr(kind subvolkit.Kind, err error) error {
	var se *subvolkit.Error
	if errors.As(err, &se) {
		return err
	}
	return subvolkit.E(kind, "", "", err)
}

// Create implements backend.Backend. The subvolume is built in
// /.subvolkit/staging/<name>.<nonce> — mkdir with its final mode, owner
// marker (written once: the staging area says it is incomplete), owner,
// limit-usage, read back — and then renamed
// to /<name>, which keeps its limit: the volume's root only ever holds
// complete subvolumes. Any failure removes what was made; a crash leaves a
// staging entry that the next Create, Clone or Delete of the name, or
// Reconcile, removes.
func (b *Backend) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	const op = "create"
	if err := b.checkCreate(op, req.Name, req.SizeBytes, req.Parameters); err != nil {
		return nil, err
	}
	m := &marker{State: stateCreating, Name: req.Name, Size: req.SizeBytes, Created: time.Now().UTC(), Labels: req.Labels}
	if err := checkNew(m, req.Owner); err != nil {
		return nil, err
	}
	unlock, err := b.begin(ctx, op, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	sv, err := b.make(ctx, "create", m, req.Owner, nil)
	if err != nil {
		return nil, err
	}
	b.log.DebugContext(ctx, "created", "name", req.Name, "size", req.SizeBytes)
	return sv, nil
}

// checkNew checks what a new subvolume's marker and owner must satisfy.
func checkNew(m *marker, o *backend.Ownership) error {
	if o != nil {
		const maxID = 1<<32 - 2 // (uid_t)-1 means "unchanged"
		if o.UID < -1 || o.UID > maxID || o.GID < -1 || o.GID > maxID {
			return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "owner %d:%d is out of range (-1 or 0..%d)", o.UID, o.GID, maxID)
		}
		if o.Mode&^0o7777 != 0 {
			return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "mode %#o has bits outside 0o7777", o.Mode)
		}
	}
	return checkMarker(m)
}

// clearRoot makes way at the volume's root for a new subvolume called
// name: AlreadyExists if a subvolume of ours (live, retained) or a foreign
// directory holds the name; leftovers of ours at the root (half-made or
// half-deleted by older versions, half-archived) are finished. Staging
// leftovers of the name are clearStaging's (make runs it alongside the
// limit call). The caller holds name's lock.
func (b *Backend) clearRoot(ctx context.Context, name string) error {
	m, _, err := b.inspect(name)
	switch {
	case err == nil && m == nil:
		return nil
	case errors.Is(err, errNoMarker):
		return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "%s exists on volume %s and is not managed by subvolkit", volPath(name), b.opts.Volume)
	case err != nil:
		return err
	}
	switch m.State {
	case stateCreating, stateDeleting, stateWarm:
		b.log.InfoContext(ctx, "removing a half-made or half-deleted subvolume", "name", name, "state", m.State)
		return b.trash(ctx, name, name)
	case stateArchived:
		return b.archive(ctx, name, m)
	case stateRetained:
		return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "a retained subvolume holds the name (delete it with the delete policy to reuse the name)")
	}
	return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "subvolume exists (size %s)", quota.HumanSize(m.Size))
}

// clearStaging moves every staging entry of name but own (left by a crash:
// nobody works on them, the caller holds name's lock) to the trash.
func (b *Backend) clearStaging(ctx context.Context, name, own string) error {
	entries, err := b.readArea(stagingDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n, ok := entryName(e.Name()); ok && n == name && e.Name() != own {
			b.log.InfoContext(ctx, "removing a staging leftover", "name", name, "entry", e.Name())
			if err := b.trash(ctx, stagingDir+"/"+e.Name(), name); err != nil {
				return err
			}
		}
	}
	return nil
}

// trash renames rel (a path relative to the volume's root) into the trash
// area as <name>.<nonce> and wakes the purger. The limit goes with it.
func (b *Backend) trash(ctx context.Context, rel, name string) error {
	_, err := b.trashEntry(rel, name)
	if err == nil {
		b.purger.kick()
	}
	return err
}

// trashEntry renames rel into the trash and returns the trash entry's name.
func (b *Backend) trashEntry(rel, name string) (string, error) {
	entry := name + "." + nonce()
	err := renameTo(filepath.Join(b.mnt, rel), filepath.Join(b.mnt, trashDir, entry))
	if errors.Is(err, os.ErrNotExist) && b.ensureArea(trashDir) {
		err = renameTo(filepath.Join(b.mnt, rel), filepath.Join(b.mnt, trashDir, entry))
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", subvolkit.E(subvolkit.NotFound, "", "", err)
		}
		return "", subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return entry, nil
}

// renameTo renames the directory src to dst with a single rename(2).
// os.Rename first lstats dst so as not to replace a directory there: on
// the FUSE mount that is one more round trip to the bricks (~1 ms) in
// every create, take and delete. Every dst given here is a fresh nonce
// name, or a root name its caller found free under the name's lock a
// moment before. (RENAME_NOREPLACE would close even that window, but
// GlusterFS's FUSE client answers it with EINVAL.)
func renameTo(src, dst string) error {
	if err := syscall.Rename(src, dst); err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// async runs f in a goroutine and returns a function that waits for f's
// answer (as often as it is called). The backend overlaps independent
// round trips to the bricks with it.
func async(f func() error) func() error {
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = f()
	}()
	return func() error {
		<-done
		return err
	}
}

// make builds a subvolume in the staging area (fill, if not nil, copies
// content into it) and renames it into place at the volume's root. On
// failure it moves what it made to the trash, even when ctx is cancelled.
// The caller holds m.Name's lock.
func (b *Backend) make(ctx context.Context, op string, m *marker, owner *backend.Ownership,
	fill func(ctx context.Context, dir string) error) (*backend.Subvol, error) {
	name := m.Name
	if err := b.clearRoot(ctx, name); err != nil {
		return nil, err
	}
	// Staging leftovers of the name go to the trash while glusterd sets
	// the new entry's limit.
	tidy := func(ctx context.Context, own string) error { return b.clearStaging(ctx, name, own) }
	if err := b.build(ctx, op, name, m, owner, fill, b.dir(name), tidy); err != nil {
		return nil, err
	}
	// The owner and mode are those build set (no stat of the result).
	st := syscall.Stat_t{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid()), Mode: ownerMode(owner)}
	if owner != nil && owner.UID >= 0 {
		st.Uid = uint32(owner.UID)
	}
	if owner != nil && owner.GID >= 0 {
		st.Gid = uint32(owner.GID)
	}
	return b.subvol(name, m, &st), nil
}

// build makes a directory in the staging area as <key>.<nonce> — mkdir
// with its final mode, marker m with the state "ready" (a warm one: m.State
// as given, see warm.go; written once, as the staging area says the entry
// is incomplete), owner, limit m.Size, fill — and renames the directory to
// dst, which keeps its limit. The
// caller holds key's lock (the staging entry's name before the nonce), so
// that Reconcile leaves the entry alone while it is built. On failure the
// entry goes to the trash and is purged at once, even when ctx is
// cancelled.
//
// The marker, the owner and tidy (if not nil; it is given the entry's own
// name) run while the gluster CLI sets the limit, which takes tens of
// milliseconds: none of them needs the limit, and the staging area's
// entries are found by name, marker or not, when a crash leaves one.
func (b *Backend) build(ctx context.Context, op, key string, m *marker, owner *backend.Ownership,
	fill func(ctx context.Context, dir string) error, dst string,
	tidy func(ctx context.Context, own string) error) (err error) {
	final := stateReady
	if m.State == stateWarm {
		final = stateWarm
	}
	entry := key + "." + nonce()
	rel := stagingDir + "/" + entry
	dir := filepath.Join(b.mnt, rel)
	// Made with its final mode where the umask keeps it (no chmod then):
	// the staging area (0700) keeps everybody out until the rename.
	mode, chmod := ownerMode(owner), true
	mkMode := os.FileMode(0o700)
	if b.umask >= 0 && mode&^0o777 == 0 && mode&uint32(b.umask) == 0 {
		mkMode, chmod = os.FileMode(mode), false
	}
	err = os.Mkdir(dir, mkMode)
	if errors.Is(err, os.ErrNotExist) && b.ensureArea(stagingDir) {
		err = os.Mkdir(dir, mkMode)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return subvolkit.E(subvolkit.QuotaExceeded, "", "", err)
		}
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.failpoint(op + ":mkdir")
	defer func() {
		if err != nil {
			err = b.discard(ctx, rel, key, err)
		}
	}()
	m.State = final
	side := async(func() error {
		if err := writeMarker(dir, m); err != nil {
			return kindOr(fillKind(err), err)
		}
		b.failpoint(op + ":marker")
		if err := applyOwner(dir, owner, chmod); err != nil {
			return kindOr(subvolkit.InvalidArgument, err)
		}
		b.failpoint(op + ":owner")
		if tidy != nil {
			return tidy(ctx, entry)
		}
		return nil
	})
	err = b.g.limitUsage(ctx, volPath(rel), m.Size)
	if serr := side(); serr != nil {
		return serr
	}
	if err != nil {
		return err
	}
	b.failpoint(op + ":limit")
	if fill != nil {
		if err := fill(ctx, dir); err != nil {
			return kindOr(fillKind(err), err)
		}
		b.failpoint(op + ":copy")
	}
	// Read back after the fill: the read looks the entry up through the
	// aux mount, whose client then caches its quota size for a second
	// (auxCacheOptions), also once it is renamed. Read before a copy, a
	// clone's usage would show the empty directory for that second.
	if err := b.checkLimit(ctx, rel, m.Size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	if err := renameTo(dir, dst); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "%s appeared concurrently", volPath(m.Name))
		}
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.failpoint(op + ":rename")
	return nil
}

// discard moves rel, a staging entry nobody was handed (so nobody writes
// there), to the trash and purges it at once, even when ctx is cancelled,
// and returns err with any cleanup failure joined.
func (b *Backend) discard(ctx context.Context, rel, key string, err error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	entry, derr := b.trashEntry(rel, key)
	if deadMountErr(derr) && b.ensureMounted(cctx) == nil {
		// The fill failed because the mount died (or was aborted as
		// wedged, see watchMount): clean up through the mount made again.
		entry, derr = b.trashEntry(rel, key)
	}
	if derr == nil {
		var done bool
		done, _, _, _, derr = b.purger.purgeEntry(cctx, entry, 0)
		if !done && derr == nil {
			b.purger.kick()
		}
	}
	if derr != nil && subvolkit.KindOf(derr) != subvolkit.NotFound {
		b.purger.kick()
		return errors.Join(err, fmt.Errorf("cleaning up %s: %w", volPath(rel), derr))
	}
	return err
}

// fillKind classifies a failed copy: a full volume or subvolume is
// QuotaExceeded, anything else Unavailable.
func fillKind(err error) subvolkit.Kind {
	if errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.ENOSPC) {
		return subvolkit.QuotaExceeded
	}
	return subvolkit.Unavailable
}

// Clone implements backend.Cloner: like Create, with a copy of the source's
// tree (ownership, modes, times, symlinks and xattrs kept) made in the
// staging area under the new limit before the rename. The source's own
// owner and mode are kept unless req.Owner says otherwise.
func (b *Backend) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	const op = "clone"
	if err := b.checkArgs(ctx, op, req.Source); err != nil {
		return nil, err
	}
	unlockDst, err := b.begin(ctx, op, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlockDst()
	srcM, srcSt, err := b.ready(op, req.Source)
	if err != nil {
		return nil, err
	}
	size := req.SizeBytes
	if size == 0 {
		size = srcM.Size
	}
	if size < srcM.Size {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %s is smaller than the source %q (%s)",
			quota.HumanSize(size), req.Source, quota.HumanSize(srcM.Size))
	}
	if err := b.checkCreate(op, req.Name, size, req.Parameters); err != nil {
		return nil, err
	}
	owner := req.Owner
	if owner == nil {
		owner = &backend.Ownership{UID: int(srcSt.Uid), GID: int(srcSt.Gid), Mode: srcSt.Mode & 0o7777}
	}
	m := &marker{State: stateCreating, Name: req.Name, Size: size, Source: req.Source, Created: time.Now().UTC(), Labels: req.Labels}
	if err := checkNew(m, owner); err != nil {
		return nil, err
	}
	src := b.dir(req.Source)
	return b.make(ctx, op, m, owner, func(ctx context.Context, dir string) error {
		return b.copyTree(ctx, src, dir)
	})
}

// Delete implements backend.Backend. It refuses (FailedPrecondition) to
// touch a directory without the owner marker. DeletePolicyDelete renames
// the subvolume into the trash (its limit goes with it) and returns; the
// background purger removes the data with the limit still in place and
// drops the limit last.
func (b *Backend) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	const op = "delete"
	if opts == nil {
		opts = &backend.DeleteOptions{}
	}
	unlock, err := b.begin(ctx, op, name)
	if err != nil {
		return err
	}
	defer unlock()
	// Staging leftovers of the name go too: a Delete after a crashed
	// Create leaves nothing.
	if err := b.clearStaging(ctx, name, ""); err != nil {
		return err
	}
	m, _, err := b.inspect(name)
	switch {
	case errors.Is(err, errNoMarker):
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
			"%s on volume %s has no subvolkit owner marker; refusing to remove it", volPath(name), b.opts.Volume)
	case err != nil:
		return err
	case m == nil:
		return subvolkit.Errorf(subvolkit.NotFound, "", "", "no such subvolume on volume %s", b.opts.Volume)
	}
	policy := opts.Policy
	wasRetained := m.State == stateRetained
	switch m.State {
	case stateCreating, stateDeleting:
		policy = backend.DeletePolicyDelete // never handed out, or already on its way
	case stateArchived:
		policy = backend.DeletePolicyArchive // a crashed archive: finish it
	}
	switch policy {
	case backend.DeletePolicyRetain:
		if m.State == stateRetained {
			return subvolkit.Errorf(subvolkit.NotFound, "", "", "the subvolume was already retained")
		}
		// Indexed first: a names-only List must never show a retained
		// subvolume; a stale entry only costs it a marker read.
		if err := b.indexRetained(name); err != nil {
			return err
		}
		m.State = stateRetained
		if err := writeMarker(b.dir(name), m); err != nil {
			return kindOr(subvolkit.Unavailable, err)
		}
		return nil
	case backend.DeletePolicyArchive:
		if err := b.archive(ctx, name, m); err != nil {
			return err
		}
		if wasRetained {
			b.unindexRetained(ctx, name)
		}
		return nil
	}
	b.failpoint("delete:start")
	if err := b.trash(ctx, name, name); err != nil {
		return err
	}
	b.failpoint("delete:renamed")
	if wasRetained {
		b.unindexRetained(ctx, name)
	}
	return nil
}

// indexRetained adds name to the index of retained subvolumes.
func (b *Backend) indexRetained(name string) error {
	path := filepath.Join(b.mnt, retainedDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) && b.ensureArea(retainedDir) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	}
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	if err := f.Close(); err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return nil
}

// unindexRetained removes name from the index of retained subvolumes. A
// failure leaves a stale entry, which is harmless (List checks the marker
// of indexed names; Reconcile removes it).
func (b *Backend) unindexRetained(ctx context.Context, name string) {
	if err := os.Remove(filepath.Join(b.mnt, retainedDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.WarnContext(ctx, "could not remove a retained-index entry", "name", name, "err", err)
	}
}

// archive marks name archived, renames it into the archive area and then
// removes its limit there. A crash after the mark leaves an "archived"
// directory at the root that the next call on the name or Reconcile moves
// on; a crash after the rename leaves a limit in the archive that
// Reconcile removes.
func (b *Backend) archive(ctx context.Context, name string, m *marker) error {
	if m.State != stateArchived {
		m.State = stateArchived
		if err := writeMarker(b.dir(name), m); err != nil {
			return kindOr(subvolkit.Unavailable, err)
		}
	}
	b.failpoint("archive:marked")
	rel := archiveDir + "/" + fmt.Sprintf("%s-%s", name, time.Now().UTC().Format(archiveTime))
	err := os.Rename(b.dir(name), filepath.Join(b.mnt, rel))
	if errors.Is(err, os.ErrNotExist) && b.ensureArea(archiveDir) {
		err = os.Rename(b.dir(name), filepath.Join(b.mnt, rel))
	}
	if errors.Is(err, os.ErrNotExist) {
		// The archive area exists, so the source is gone: another client
		// moved it on after this client's (cached) look-up found it.
		return subvolkit.Errorf(subvolkit.NotFound, "", "", "the subvolume was moved away meanwhile: %w", err)
	}
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.failpoint("archive:renamed")
	if err := b.g.removeLimit(ctx, volPath(rel)); err != nil && subvolkit.KindOf(err) != subvolkit.NotFound {
		// The subvolume is archived; Reconcile removes the limit later.
		b.log.WarnContext(ctx, "archived, but its limit is still set", "path", volPath(rel), "err", err)
	}
	return nil
}

// archiveTime is the time stamp in an archive entry's name.
const archiveTime = "20060102T150405.000000000Z"

// archivedAt reads the time an archive entry "<name>-<time>" was made.
func archivedAt(entry string) (name string, at time.Time, ok bool) {
	i := strings.LastIndexByte(entry, '-')
	if i <= 0 {
		return "", time.Time{}, false
	}
	t, err := time.Parse(archiveTime, entry[i+1:])
	if err != nil {
		return "", time.Time{}, false
	}
	return entry[:i], t, true
}

// Resize implements backend.Resizer: it records the new size in the marker
// as pending, sets the limit and reads it back, then makes the size final.
// A crash in between leaves a pending size that Get reports as the limit
// shows it, and the next Resize or Reconcile completes. Shrinking below the
// space in use is FailedPrecondition. A Resize to the marker's size still
// sets the limit if the quota disagrees.
func (b *Backend) Resize(ctx context.Context, name string, size int64) (*backend.Subvol, error) {
	const op = "resize"
	if err := b.checkCreate(op, name, size, nil); err != nil {
		return nil, err
	}
	unlock, err := b.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, st, err := b.ready(op, name)
	if err != nil {
		return nil, err
	}
	cur, err := b.readLimit(ctx, name)
	if err != nil {
		return nil, err
	}
	if size == m.Size && m.Pending == 0 && cur.Hard == size {
		return b.subvol(name, m, st), nil
	}
	if size < m.Size && cur.Used > size {
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "cannot shrink to %s: %s in use",
			quota.HumanSize(size), quota.HumanSize(cur.Used))
	}
	m.Pending = size
	if err := writeMarker(b.dir(name), m); err != nil {
		return nil, kindOr(subvolkit.Unavailable, err)
	}
	b.failpoint("resize:intent")
	if cur.Hard != size {
		if err := b.setLimit(ctx, name, size); err != nil {
			return nil, err
		}
	}
	b.failpoint("resize:limit")
	m.Size, m.Pending = size, 0
	if err := writeMarker(b.dir(name), m); err != nil {
		return nil, kindOr(subvolkit.Unavailable, err)
	}
	b.failpoint("resize:done")
	return b.subvol(name, m, st), nil
}

// settled returns m with a pending resize resolved for reading: the size is
// the limit the quota has, when it is the old or the pending size.
func (b *Backend) settled(ctx context.Context, name string, m *marker) *marker {
	if m.Pending == 0 {
		return m
	}
	l, err := b.readLimit(ctx, name)
	if err == nil && (l.Hard == m.Pending || l.Hard == m.Size) {
		c := *m
		c.Size, c.Pending = l.Hard, 0
		return &c
	}
	return m
}
