package memory

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/fsutil"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// snapshotsDir holds the snapshots' copies inside Options.Dir.
const snapshotsDir = ".snapshots"

var _ backend.Snapshotter = (*Backend)(nil)

// snapshot is a snapshot and the owner and mode of its source's root.
type snapshot struct {
	backend.Snapshot
	uid, gid int
	mode     uint32
}

func (b *Backend) snapPath(name string) string { return filepath.Join(b.dir, snapshotsDir, name) }

// CreateSnapshot copies a subvolume into a snapshot; see
// backend.Snapshotter. The snapshot takes the source's size from the
// capacity. With Dir its tree is copied under Dir/.snapshots while the
// backend's lock is held, so the copy is consistent with every other call
// to this backend (but not with writers that use the directory directly).
func (b *Backend) CreateSnapshot(ctx context.Context, req *backend.SnapshotRequest) (*backend.Snapshot, error) {
	const op = "create snapshot"
	if req == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "nil request")
	}
	name := req.Name
	if err := naming.ValidateSubvolName(name); err != nil {
		return nil, subvolkit.WithOp(op, name, err)
	}
	if err := naming.ValidateSubvolName(req.Source); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("source: %w", err))
	}
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	if b.snapshots == nil {
		b.snapshots = map[string]*snapshot{}
	}
	if _, ok := b.snapshots[name]; ok {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, name, "snapshot %q already exists", name)
	}
	src, ok := b.subvols[req.Source]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, op, name, "source subvolume %q does not exist", req.Source)
	}
	if err := b.checkFree(op, name, src.SizeBytes); err != nil {
		return nil, err
	}
	s := &snapshot{
		Snapshot: backend.Snapshot{Name: name, ID: newID(), Source: req.Source, SizeBytes: src.SizeBytes,
			Created: time.Now().UTC(), Labels: maps.Clone(req.Labels)},
		uid: src.UID, gid: src.GID, mode: src.Mode,
	}
	if b.dir != "" {
		dst := b.snapPath(name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, fsErr(op, name, err)
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return nil, fsErr(op, name, err)
		}
		if err := fsutil.CopyTree(ctx, b.path(req.Source), dst, nil); err != nil {
			if rerr := os.RemoveAll(dst); rerr != nil {
				err = fmt.Errorf("%w (and removing the partial copy: %v)", err, rerr)
			}
			if ctx.Err() != nil {
				return nil, subvolkit.E(subvolkit.Canceled, op, name, err)
			}
			return nil, fsErr(op, name, fmt.Errorf("copy %s: %w", b.path(req.Source), err))
		}
		// Read-only: the copy is never written again.
		if err := os.Chmod(dst, 0o500); err != nil {
			return nil, fsErr(op, name, err)
		}
	}
	b.snapshots[name] = s
	b.reserved += s.SizeBytes
	return copySnapshot(s), nil
}

func copySnapshot(s *snapshot) *backend.Snapshot {
	c := s.Snapshot
	c.Labels = maps.Clone(s.Labels)
	return &c
}

// GetSnapshot returns a snapshot; see backend.Snapshotter.
func (b *Backend) GetSnapshot(ctx context.Context, name string) (*backend.Snapshot, error) {
	const op = "get snapshot"
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	s, ok := b.snapshots[name]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, op, name, "snapshot %q does not exist", name)
	}
	return copySnapshot(s), nil
}

// DeleteSnapshot removes a snapshot and frees its size; see
// backend.Snapshotter.
func (b *Backend) DeleteSnapshot(ctx context.Context, name string) error {
	const op = "delete snapshot"
	if err := b.lock(ctx, op, name); err != nil {
		return err
	}
	defer b.unlock()
	s, ok := b.snapshots[name]
	if !ok {
		return subvolkit.Errorf(subvolkit.NotFound, op, name, "snapshot %q does not exist", name)
	}
	if b.dir != "" {
		p := b.snapPath(name)
		_ = os.Chmod(p, 0o700)
		if err := os.RemoveAll(p); err != nil {
			return fsErr(op, name, err)
		}
	}
	delete(b.snapshots, name)
	b.reserved -= s.SizeBytes
	return nil
}

// ListSnapshots returns a page of snapshots sorted by name; see
// backend.Snapshotter. The page token is the last name of the previous page.
func (b *Backend) ListSnapshots(ctx context.Context, opts *backend.ListOptions) (*backend.SnapshotPage, error) {
	const op = "list snapshots"
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "MaxResults %d is negative", opts.MaxResults)
	}
	max := opts.MaxResults
	if max == 0 {
		max = DefaultPageSize
	}
	if err := b.lock(ctx, op, ""); err != nil {
		return nil, err
	}
	defer b.unlock()
	names := slices.Sorted(maps.Keys(b.snapshots))
	start := sort.SearchStrings(names, opts.PageToken)
	if start < len(names) && names[start] == opts.PageToken {
		start++
	}
	page := &backend.SnapshotPage{}
	for _, n := range names[start:] {
		if len(page.Snapshots) == max {
			page.NextPageToken = page.Snapshots[len(page.Snapshots)-1].Name
			break
		}
		page.Snapshots = append(page.Snapshots, copySnapshot(b.snapshots[n]))
	}
	return page, nil
}

// Restore creates a subvolume from a snapshot; see backend.Snapshotter.
func (b *Backend) Restore(ctx context.Context, req *backend.RestoreRequest) (*backend.Subvol, error) {
	const op = "restore"
	if req == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "nil request")
	}
	name := req.Name
	if req.SizeBytes < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, name, "size %d is negative", req.SizeBytes)
	}
	if err := naming.ValidateSubvolName(req.Snapshot); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("snapshot: %w", err))
	}
	if err := checkRequest(op, name, 1, req.Owner, req.Parameters); err != nil {
		return nil, err
	}
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	if _, ok := b.subvols[name]; ok {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, name, "subvolume %q already exists", name)
	}
	s, ok := b.snapshots[req.Snapshot]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, op, name, "snapshot %q does not exist", req.Snapshot)
	}
	size := req.SizeBytes
	if size == 0 {
		size = s.SizeBytes
	}
	if size < s.SizeBytes {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, name,
			"size %s is smaller than the snapshot %q (%s)", quota.HumanSize(size), req.Snapshot, quota.HumanSize(s.SizeBytes))
	}
	if err := b.checkFree(op, name, size); err != nil {
		return nil, err
	}
	owner := req.Owner
	if owner == nil {
		owner = &backend.Ownership{UID: s.uid, GID: s.gid, Mode: s.mode}
	}
	sv := b.newSubvol(name, size, owner, req.Labels)
	sv.SourceSnapshot = req.Snapshot
	if b.dir != "" {
		srcDir := b.snapPath(req.Snapshot)
		fill := func(dst string) error {
			if err := fsutil.CopyTree(ctx, srcDir, dst, nil); err != nil {
				return fmt.Errorf("copy %s: %w", srcDir, err)
			}
			return nil
		}
		if err := b.mkdir(ctx, op, name, sv, fill); err != nil {
			return nil, err
		}
	}
	b.subvols[name] = sv
	b.reserved += sv.SizeBytes
	return copySubvol(sv), nil
}
