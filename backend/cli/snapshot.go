package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// snapshotsDir holds the snapshots, each a directory with the owner marker
// and a quota limit, outside the pool's namespace (the volume's root).
const snapshotsDir = metaDir + "/snapshots"

var _ backend.Snapshotter = (*Backend)(nil)

// snapRel is the snapshot's path relative to the volume's root, the form
// the quota helpers take.
func snapRel(name string) string { return snapshotsDir + "/" + name }

func (b *Backend) snapDir(name string) string { return filepath.Join(b.mnt, snapRel(name)) }

// snapLock is the cluster-wide lock key of a snapshot; subvolume names never
// contain '/'.
func snapLock(name string) string { return "snapshot/" + name }

func (b *Backend) snapshot(m *marker, st *syscall.Stat_t) *backend.Snapshot {
	return &backend.Snapshot{Name: m.Name, ID: "/" + snapRel(m.Name), Source: m.Source, SizeBytes: m.Size,
		Created: m.Created, Labels: m.Labels}
}

// inspectSnapshot reads a snapshot's directory and marker, as inspect does
// a subvolume's; (nil, nil, nil) if there is none.
func (b *Backend) inspectSnapshot(name string) (*marker, *syscall.Stat_t, error) {
	return b.inspectAt(snapRel(name), true)
}

// CreateSnapshot implements backend.Snapshotter: the source's tree is copied
// (as Clone copies it) into /.subvolkit/snapshots/<name>, which gets the
// source's root owner and mode and a quota limit of the source's size, so
// that `quota list` accounts for it. The marker says "creating" until the
// copy and the limit are done; a snapshot in that state is never reported,
// and a crash leaves one that the next CreateSnapshot or DeleteSnapshot of
// the name removes.
//
// The copy is file by file while the source stays in use: not a
// point-in-time image (see backend.Snapshotter).
func (b *Backend) CreateSnapshot(ctx context.Context, req *backend.SnapshotRequest) (_ *backend.Snapshot, err error) {
	const op = "create snapshot"
	if err := b.checkOpen(ctx, op, req.Name); err != nil {
		return nil, err
	}
	if err := naming.ValidateSubvolName(req.Source); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", fmt.Errorf("source: %w", err))
	}
	name := req.Name
	unlock, err := b.locker.Lock(ctx, snapLock(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	srcM, srcSt, err := b.ready(op, req.Source)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(b.mnt, snapshotsDir), 0o700); err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	dir := b.snapDir(name)
	err = os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		m, _, ierr := b.inspectSnapshot(name)
		switch {
		case errors.Is(ierr, errNoMarker):
			return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "%s exists and is not managed by subvolkit", dir)
		case ierr != nil:
			return nil, ierr
		case m != nil && m.State == stateReady:
			return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "snapshot %q exists (of %q)", name, m.Source)
		}
		// Half-made or half-deleted, and we hold the lock: nobody works on it.
		b.log.InfoContext(ctx, "removing a half-made snapshot", "name", name)
		if derr := b.destroySnapshot(ctx, name); derr != nil {
			return nil, derr
		}
		err = os.Mkdir(dir, 0o700)
	}
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := b.destroySnapshot(cctx, name); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up %s: %w", dir, derr))
		}
	}()
	m := &marker{State: stateCreating, Name: name, Size: srcM.Size, Source: req.Source, Created: time.Now().UTC(), Labels: req.Labels}
	if err := writeMarker(dir, m); err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	if err := b.copyTree(ctx, b.dir(req.Source), dir); err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, "", "", fmt.Errorf("copying %s: %w", volPath(req.Source), err))
	}
	if err := applyOwner(dir, &backend.Ownership{UID: int(srcSt.Uid), GID: int(srcSt.Gid), Mode: srcSt.Mode & 0o7777}, true); err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	if err := b.setLimit(ctx, snapRel(name), m.Size); err != nil {
		return nil, err
	}
	m.State = stateReady
	if err := writeMarker(dir, m); err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	b.log.DebugContext(ctx, "snapshot created", "name", name, "source", req.Source)
	return b.snapshot(m, nil), nil
}

// destroySnapshot marks a snapshot "deleting" and renames it into the
// trash, whose background purger removes the data with the limit still in
// place and drops the limit last (as for a deleted subvolume). The caller
// holds its lock and has checked that it is ours.
func (b *Backend) destroySnapshot(ctx context.Context, name string) error {
	dir := b.snapDir(name)
	if m, err := readMarker(dir); err == nil && m.State != stateDeleting {
		m.State = stateDeleting
		if err := writeMarker(dir, m); err != nil {
			return kindOr(subvolkit.Unavailable, err)
		}
	}
	if err := b.trash(ctx, snapRel(name), "snapshot-"+name); err != nil && subvolkit.KindOf(err) != subvolkit.NotFound {
		return err
	}
	return nil
}

// GetSnapshot implements backend.Snapshotter.
func (b *Backend) GetSnapshot(ctx context.Context, name string) (*backend.Snapshot, error) {
	const op = "get snapshot"
	if err := b.checkOpen(ctx, op, name); err != nil {
		return nil, err
	}
	m, st, err := b.inspectSnapshot(name)
	switch {
	case errors.Is(err, errNoMarker):
		return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "%s is not a subvolkit snapshot", b.snapDir(name))
	case err != nil:
		return nil, err
	case m == nil || m.State != stateReady:
		return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "no snapshot %q on volume %s", name, b.opts.Volume)
	}
	return b.snapshot(m, st), nil
}

// DeleteSnapshot implements backend.Snapshotter. It refuses
// (FailedPrecondition) a directory without the owner marker.
func (b *Backend) DeleteSnapshot(ctx context.Context, name string) error {
	const op = "delete snapshot"
	if err := b.checkOpen(ctx, op, name); err != nil {
		return err
	}
	unlock, err := b.locker.Lock(ctx, snapLock(name))
	if err != nil {
		return err
	}
	defer unlock()
	m, _, err := b.inspectSnapshot(name)
	switch {
	case errors.Is(err, errNoMarker):
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "%s has no subvolkit owner marker; refusing to remove it", b.snapDir(name))
	case err != nil:
		return err
	case m == nil:
		return subvolkit.Errorf(subvolkit.NotFound, "", "", "no snapshot %q on volume %s", name, b.opts.Volume)
	}
	if err := b.destroySnapshot(ctx, name); err != nil {
		return err
	}
	return nil
}

// ListSnapshots implements backend.Snapshotter: the complete snapshots, read
// from their markers (no CLI call).
func (b *Backend) ListSnapshots(ctx context.Context, opts *backend.ListOptions) (*backend.SnapshotPage, error) {
	const op = "list snapshots"
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if err := b.checkOpen(ctx, op, ""); err != nil {
		return nil, err
	}
	entries, err := b.readArea(snapshotsDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && naming.ValidateSubvolName(e.Name()) == nil && e.Name() > opts.PageToken {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	page := &backend.SnapshotPage{}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		m, st, err := b.inspectSnapshot(n)
		if err != nil || m == nil || m.State != stateReady {
			continue
		}
		if opts.MaxResults > 0 && len(page.Snapshots) == opts.MaxResults {
			page.NextPageToken = page.Snapshots[len(page.Snapshots)-1].Name
			break
		}
		page.Snapshots = append(page.Snapshots, b.snapshot(m, st))
	}
	return page, nil
}

// Restore implements backend.Snapshotter: a new subvolume filled with a
// copy of the snapshot's tree, as Clone does.
func (b *Backend) Restore(ctx context.Context, req *backend.RestoreRequest) (*backend.Subvol, error) {
	const op = "restore"
	if err := naming.ValidateSubvolName(req.Snapshot); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", fmt.Errorf("snapshot: %w", err))
	}
	unlockDst, err := b.begin(ctx, op, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlockDst()
	sm, sst, err := b.inspectSnapshot(req.Snapshot)
	switch {
	case err != nil && !errors.Is(err, errNoMarker):
		return nil, err
	case err != nil || sm == nil || sm.State != stateReady:
		return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "no snapshot %q on volume %s", req.Snapshot, b.opts.Volume)
	}
	size := req.SizeBytes
	if size == 0 {
		size = sm.Size
	}
	if size < sm.Size {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %s is smaller than the snapshot %q (%s)",
			quota.HumanSize(size), req.Snapshot, quota.HumanSize(sm.Size))
	}
	if err := b.checkCreate(op, req.Name, size, req.Parameters); err != nil {
		return nil, err
	}
	owner := req.Owner
	if owner == nil {
		owner = &backend.Ownership{UID: int(sst.Uid), GID: int(sst.Gid), Mode: sst.Mode & 0o7777}
	}
	m := &marker{State: stateCreating, Name: req.Name, Size: size, Snapshot: req.Snapshot, Created: time.Now().UTC(), Labels: req.Labels}
	if err := checkNew(m, owner); err != nil {
		return nil, err
	}
	src := b.snapDir(req.Snapshot)
	return b.make(ctx, op, m, owner, func(ctx context.Context, dir string) error {
		return b.copyTree(ctx, src, dir)
	})
}
