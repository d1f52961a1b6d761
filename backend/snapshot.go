package backend

import (
	"context"
	"time"

	"github.com/subvolkit/subvolkit"
)

// Snapshot describes a read-only copy of a subvolume's content, held by the
// backend outside the pool's namespace: it is not a subvolume, is never
// listed by List and cannot be mounted through the SDK.
type Snapshot struct {
	// Name is the snapshot's name, unique among the backend's snapshots
	// (snapshots and subvolumes have separate namespaces). It follows the
	// rules of subvolume names.
	Name string
	// ID is the backend's own identifier; equal to Name where the backend
	// has no other.
	ID string
	// Source is the name of the subvolume the snapshot copies.
	Source string
	// SizeBytes is the space the snapshot is accounted for: the source's
	// size when the snapshot was taken. A restore needs at least this much.
	SizeBytes int64
	// Created is when the snapshot was taken (when its copy began).
	Created time.Time
	// Labels are free-form key/value pairs stored with the snapshot.
	Labels map[string]string
}

// SnapshotRequest asks for a new snapshot.
type SnapshotRequest struct {
	// Name is the snapshot's name; the Pool has validated it.
	Name string
	// Source is the subvolume to copy.
	Source string
	// Labels are stored with the snapshot where the backend can.
	Labels map[string]string
}

// SnapshotPage is one page of ListSnapshots results, sorted by Name.
type SnapshotPage struct {
	Snapshots []*Snapshot
	// NextPageToken is "" on the last page.
	NextPageToken string
}

// RestoreRequest asks for a new subvolume with the content of a snapshot.
type RestoreRequest struct {
	// Snapshot is the snapshot to copy from.
	Snapshot string
	// Name is the new subvolume's name.
	Name string
	// SizeBytes is the new subvolume's size; 0 means the snapshot's size.
	// A size smaller than the snapshot's is InvalidArgument.
	SizeBytes int64
	// Owner, Labels and Parameters are as in CreateRequest. A nil Owner
	// gives the new subvolume's root the owner and mode the source's root
	// had when the snapshot was taken.
	Owner      *Ownership
	Labels     map[string]string
	Parameters map[string]string
}

// Snapshotter is implemented by backends that can take snapshots of
// subvolumes and restore them into new subvolumes.
//
// A snapshot is a copy. A backend that copies a tree file by file while the
// source is in use does not give a point-in-time image: each file is copied
// as it is when the copy reaches it, so files written during the copy may be
// old, new or (for a file being written at that moment) a mix. Backends
// document what they give.
//
// A snapshot whose copy has not finished must never be reported: Get and
// List answer as if it did not exist, and a crash mid-copy leaves something
// that the next CreateSnapshot or DeleteSnapshot of the name removes.
type Snapshotter interface {
	// CreateSnapshot copies req.Source into the snapshot req.Name and
	// returns it when the copy is complete. A missing source is
	// NotFound; an existing snapshot named req.Name (complete or not) is
	// AlreadyExists and nothing changes. If the space the snapshot needs
	// is not free, QuotaExceeded.
	CreateSnapshot(ctx context.Context, req *SnapshotRequest) (*Snapshot, error)

	// GetSnapshot returns the named complete snapshot, or NotFound.
	GetSnapshot(ctx context.Context, name string) (*Snapshot, error)

	// DeleteSnapshot removes the named snapshot (or what a failed or
	// interrupted CreateSnapshot left of it). A missing snapshot is
	// NotFound (the Pool turns that into success).
	DeleteSnapshot(ctx context.Context, name string) error

	// ListSnapshots returns complete snapshots sorted by name, a page at
	// a time.
	ListSnapshots(ctx context.Context, opts *ListOptions) (*SnapshotPage, error)

	// Restore creates req.Name with the content of req.Snapshot, as
	// Cloner.Clone does from a subvolume. A missing snapshot is NotFound;
	// an existing req.Name is AlreadyExists. The new subvolume's
	// SourceSnapshot is req.Snapshot.
	Restore(ctx context.Context, req *RestoreRequest) (*Subvol, error)
}

// NoSnapshots implements Snapshotter for a backend that cannot take
// snapshots: every method answers Unimplemented, with the string as the
// reason (a CSI driver passes it on). A backend embeds it under an
// unexported alias, so that its reason reaches callers instead of a
// generic "cannot snapshot":
//
//	type noSnapshots = backend.NoSnapshots
//	type Backend struct {
//		noSnapshots
//		...
//	}
//
// and sets it to the reason when it makes the Backend.
type NoSnapshots string

func (n NoSnapshots) err() error {
	return subvolkit.Errorf(subvolkit.Unimplemented, "", "", "%s", string(n))
}

// CreateSnapshot answers Unimplemented.
func (n NoSnapshots) CreateSnapshot(context.Context, *SnapshotRequest) (*Snapshot, error) {
	return nil, n.err()
}

// GetSnapshot answers Unimplemented.
func (n NoSnapshots) GetSnapshot(context.Context, string) (*Snapshot, error) { return nil, n.err() }

// DeleteSnapshot answers Unimplemented.
func (n NoSnapshots) DeleteSnapshot(context.Context, string) error { return n.err() }

// ListSnapshots answers Unimplemented.
func (n NoSnapshots) ListSnapshots(context.Context, *ListOptions) (*SnapshotPage, error) {
	return nil, n.err()
}

// Restore answers Unimplemented.
func (n NoSnapshots) Restore(context.Context, *RestoreRequest) (*Subvol, error) { return nil, n.err() }
