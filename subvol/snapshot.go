package subvol

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/naming"
)

// Snapshot describes a read-only copy of a subvolume's content, kept by the
// backend outside the pool's namespace (it is not a subvolume: List does not
// show it and it cannot be mounted). Restore makes a new subvolume from it.
//
// A snapshot is a copy, not a point-in-time image: see Pool.CreateSnapshot.
type Snapshot struct {
	// Name is the snapshot's name, unique among the pool's snapshots.
	Name string
	// ID is the backend's own identifier; equal to Name where the backend
	// has no other.
	ID string
	// Source is the name of the subvolume it copies.
	Source string
	// SizeBytes is the space it is accounted for (the source's size when
	// it was taken), and the smallest size a restore can have.
	SizeBytes int64
	// Created is when it was taken.
	Created time.Time
	// Labels are free-form key/value pairs stored with it.
	Labels map[string]string
}

// SnapshotOptions tune CreateSnapshot. A nil *SnapshotOptions means the
// defaults.
type SnapshotOptions struct {
	// Labels are stored with the snapshot where the backend can.
	Labels map[string]string
}

func snapshotFromBackend(s *backend.Snapshot) *Snapshot {
	if s == nil {
		return nil
	}
	return &Snapshot{Name: s.Name, ID: s.ID, Source: s.Source, SizeBytes: s.SizeBytes,
		Created: s.Created, Labels: maps.Clone(s.Labels)}
}

func (p *Pool) snapshotter(op, name string) (backend.Snapshotter, error) {
	s, ok := p.b.(backend.Snapshotter)
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, op, name, "backend %T cannot take snapshots", p.b)
	}
	return s, nil
}

// checkName validates a second name an operation takes (a source or a
// snapshot).
func checkName(op, name, what, other string) error {
	if err := naming.ValidateSubvolName(other); err != nil {
		return subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// CreateSnapshot takes the snapshot name of the subvolume source: a copy of
// its tree, held outside the pool's namespace and accounted against the
// backend's capacity at the source's size.
//
// The copy runs in a background job of the Pool and CreateSnapshot waits for
// it until ctx is done. If ctx is done first the error is of kind
// Unavailable and matches ErrInProgress: the copy goes on, and calling
// CreateSnapshot again with the same arguments waits for it again, or
// returns the snapshot once it is complete. Only one job runs per snapshot
// name; a call with another source while it runs is AlreadyExists. Close
// cancels the jobs; the backend removes what a cancelled or crashed copy
// left when the name is used again, and never reports it meanwhile.
//
// CreateSnapshot is idempotent: an existing snapshot of source is returned;
// one of another subvolume is AlreadyExists. A missing source is NotFound.
//
// Consistency: the copy is made file by file while the source may be in
// use. It is not a point-in-time image: a file changed during the copy is
// copied as it is when the copy reaches it (a file being written at that
// moment may be copied half old, half new), and files created or removed
// during the copy may or may not be in it. Stop the writers (scale the
// workload down, or freeze the application) for a consistent snapshot.
func (p *Pool) CreateSnapshot(ctx context.Context, name, source string, opts *SnapshotOptions) (_ *Snapshot, err error) {
	const op = "create snapshot"
	defer p.observe(op, name, time.Now(), &err)
	if opts == nil {
		opts = &SnapshotOptions{}
	}
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := checkName(op, name, "source", source); err != nil {
		return nil, err
	}
	s, err := p.snapshotter(op, name)
	if err != nil {
		return nil, err
	}
	labels := maps.Clone(opts.Labels)
	res, err := p.bg.run(ctx, op, name, "snapshot/"+name, "snapshot of "+source, func(ctx context.Context) (any, error) {
		jend, err := p.begin(ctx, op, name)
		if err != nil {
			return nil, err
		}
		defer jend()
		unlock, err := keyedlock.Lock2(ctx, &p.locks, source, "snapshot/"+name)
		if err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, op, name, err)
		}
		defer unlock()
		snap, err := s.CreateSnapshot(ctx, &backend.SnapshotRequest{Name: name, Source: source, Labels: labels})
		if err == nil {
			p.log.InfoContext(ctx, "snapshot created", "name", name, "source", source, "size", snap.SizeBytes)
			return snapshotFromBackend(snap), nil
		}
		if subvolkit.KindOf(err) != subvolkit.AlreadyExists {
			return nil, subvolkit.WithOp(op, name, err)
		}
		existing, gerr := s.GetSnapshot(ctx, name)
		if gerr != nil {
			return nil, subvolkit.WithOp(op, name, errors.Join(err, gerr))
		}
		if existing.Source != source {
			return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, name,
				"a snapshot named %q exists of subvolume %q, not %q: %w", name, existing.Source, source, err)
		}
		return snapshotFromBackend(existing), nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*Snapshot), nil
}

// SnapshotInProgress reports whether a CreateSnapshot of name is running in
// this Pool.
func (p *Pool) SnapshotInProgress(name string) bool { return p.bg.inProgress("snapshot/" + name) }

// GetSnapshot returns the named snapshot, or an error of kind NotFound (also
// while its copy is still running).
func (p *Pool) GetSnapshot(ctx context.Context, name string) (_ *Snapshot, err error) {
	const op = "get snapshot"
	defer p.observe(op, name, time.Now(), &err)
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	s, err := p.snapshotter(op, name)
	if err != nil {
		return nil, err
	}
	snap, err := s.GetSnapshot(ctx, name)
	if err != nil {
		return nil, subvolkit.WithOp(op, name, err)
	}
	return snapshotFromBackend(snap), nil
}

// ListSnapshots returns every complete snapshot, sorted by name.
func (p *Pool) ListSnapshots(ctx context.Context) (_ []*Snapshot, err error) {
	const op = "list snapshots"
	defer p.observe(op, "", time.Now(), &err)
	end, err := p.begin(ctx, "list", "")
	if err != nil {
		return nil, subvolkit.WithOp(op, "", err)
	}
	defer end()
	s, err := p.snapshotter(op, "")
	if err != nil {
		return nil, err
	}
	var all []*Snapshot
	opts := &backend.ListOptions{}
	for {
		page, err := s.ListSnapshots(ctx, opts)
		if err != nil {
			return nil, subvolkit.WithOp(op, "", err)
		}
		for _, sn := range page.Snapshots {
			all = append(all, snapshotFromBackend(sn))
		}
		if page.NextPageToken == "" {
			return all, nil
		}
		if page.NextPageToken == opts.PageToken {
			return nil, subvolkit.Errorf(subvolkit.Internal, op, "", "backend returned the same page token %q twice", opts.PageToken)
		}
		opts = &backend.ListOptions{PageToken: page.NextPageToken}
	}
}

// DeleteSnapshot removes the named snapshot. Deleting a snapshot that does
// not exist succeeds. A snapshot whose copy is running in this Pool is
// FailedPrecondition.
func (p *Pool) DeleteSnapshot(ctx context.Context, name string) (err error) {
	const op = "delete snapshot"
	defer p.observe(op, name, time.Now(), &err)
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return err
	}
	defer end()
	s, err := p.snapshotter(op, name)
	if err != nil {
		return err
	}
	if p.bg.inProgress("snapshot/" + name) {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, op, name, "%w: the snapshot is being taken", ErrInProgress)
	}
	unlock, err := p.lock(ctx, op, "snapshot/"+name)
	if err != nil {
		return err
	}
	defer unlock()
	err = s.DeleteSnapshot(ctx, name)
	if subvolkit.KindOf(err) == subvolkit.NotFound {
		return nil
	}
	if err != nil {
		return subvolkit.WithOp(op, name, err)
	}
	p.log.InfoContext(ctx, "snapshot deleted", "name", name)
	return nil
}

// Restore creates the subvolume dst with the content of the snapshot snap.
// opts.SizeBytes 0 means the snapshot's size; a smaller size is
// InvalidArgument. The new subvolume's SourceSnapshot is snap.
//
// Like CreateSnapshot, the copy runs in a background job: when ctx is done
// first the error matches ErrInProgress and a retry waits again or returns
// the result. Restore is idempotent: an existing dst restored from snap with
// a compatible size is returned; any other existing dst is AlreadyExists.
func (p *Pool) Restore(ctx context.Context, snap, dst string, opts *CloneOptions) (_ *Subvol, err error) {
	const op = "restore"
	defer p.observe(op, dst, time.Now(), &err)
	if opts == nil {
		opts = &CloneOptions{}
	}
	end, err := p.begin(ctx, op, dst)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := checkName(op, dst, "snapshot", snap); err != nil {
		return nil, err
	}
	if err := p.checkCopySize(op, dst, opts.SizeBytes); err != nil {
		return nil, err
	}
	s, err := p.snapshotter(op, dst)
	if err != nil {
		return nil, err
	}
	req := &backend.RestoreRequest{Snapshot: snap, Name: dst, SizeBytes: opts.SizeBytes,
		Owner: opts.Owner.toBackend(), Labels: maps.Clone(opts.Labels), Parameters: maps.Clone(opts.Parameters)}
	args := fmt.Sprintf("restore of snapshot %s (size %d)", snap, opts.SizeBytes)
	res, err := p.bg.run(ctx, op, dst, "subvol/"+dst, args, func(ctx context.Context) (any, error) {
		jend, err := p.begin(ctx, op, dst)
		if err != nil {
			return nil, err
		}
		defer jend()
		unlock, err := keyedlock.Lock2(ctx, &p.locks, "snapshot/"+snap, dst)
		if err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, op, dst, err)
		}
		defer unlock()
		sv, err := s.Restore(ctx, req)
		if err == nil {
			p.log.InfoContext(ctx, "snapshot restored", "snapshot", snap, "name", dst, "size", sv.SizeBytes)
			return fromBackend(sv), nil
		}
		return p.existingCopy(ctx, op, dst, err, opts.SizeBytes, "restore", snap,
			func(sv *backend.Subvol) string { return sv.SourceSnapshot },
			func() (int64, error) {
				sn, err := s.GetSnapshot(ctx, snap)
				if err != nil {
					return 0, err
				}
				return sn.SizeBytes, nil
			})
	})
	if err != nil {
		return nil, err
	}
	return res.(*Subvol), nil
}

// CloneInBackground is Clone with the copy in a background job of the Pool,
// as CreateSnapshot and Restore do: when ctx is done before the copy has
// finished, the error is of kind Unavailable and matches ErrInProgress, the
// copy goes on, and a retry with the same arguments waits for it again or
// returns the clone. Use it where callers give up after a timeout and retry
// (CSI sidecars); Clone stops the copy when ctx is done.
func (p *Pool) CloneInBackground(ctx context.Context, src, dst string, opts *CloneOptions) (*Subvol, error) {
	const op = "clone"
	if opts == nil {
		opts = &CloneOptions{}
	}
	end, err := p.begin(ctx, op, dst)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := checkName(op, dst, "source", src); err != nil {
		return nil, err
	}
	o := *opts
	o.Labels, o.Parameters = maps.Clone(opts.Labels), maps.Clone(opts.Parameters)
	args := fmt.Sprintf("clone of %s (size %d)", src, opts.SizeBytes)
	res, err := p.bg.run(ctx, op, dst, "subvol/"+dst, args, func(ctx context.Context) (any, error) {
		return p.Clone(ctx, src, dst, &o)
	})
	if err != nil {
		return nil, err
	}
	return res.(*Subvol), nil
}

// CopyInProgress reports whether a Restore or CloneInBackground into the
// subvolume name is running in this Pool.
func (p *Pool) CopyInProgress(name string) bool { return p.bg.inProgress("subvol/" + name) }

func (p *Pool) checkCopySize(op, name string, size int64) error {
	if size < 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, name, "size %d is negative", size)
	}
	if size > 0 {
		return p.checkSize(op, name, size)
	}
	return nil
}
