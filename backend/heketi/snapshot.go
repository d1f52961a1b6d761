package heketi

import (
	"context"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

var _ backend.Snapshotter = (*Backend)(nil)

// noSnapshots is why every Snapshotter method answers Unimplemented.
const noSnapshots = "heketi has no snapshot API in its REST interface (gluster volume snapshots need thinly provisioned LVM bricks, which heketi does not expose); use its VolumeClone through Pool.Clone"

// CreateSnapshot answers Unimplemented: see noSnapshots.
func (b *Backend) CreateSnapshot(ctx context.Context, req *backend.SnapshotRequest) (*backend.Snapshot, error) {
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "create snapshot", req.Name, noSnapshots)
}

// GetSnapshot answers Unimplemented: see noSnapshots.
func (b *Backend) GetSnapshot(ctx context.Context, name string) (*backend.Snapshot, error) {
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "get snapshot", name, noSnapshots)
}

// DeleteSnapshot answers Unimplemented: see noSnapshots.
func (b *Backend) DeleteSnapshot(ctx context.Context, name string) error {
	return subvolkit.Errorf(subvolkit.Unimplemented, "delete snapshot", name, noSnapshots)
}

// ListSnapshots answers Unimplemented: see noSnapshots.
func (b *Backend) ListSnapshots(ctx context.Context, opts *backend.ListOptions) (*backend.SnapshotPage, error) {
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "list snapshots", "", noSnapshots)
}

// Restore answers Unimplemented: see noSnapshots.
func (b *Backend) Restore(ctx context.Context, req *backend.RestoreRequest) (*backend.Subvol, error) {
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "restore", req.Name, noSnapshots)
}
