package glusterd2

import (
	"context"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

var _ backend.Snapshotter = (*Backend)(nil)

// noSnapshots is why every Snapshotter method answers Unimplemented.
const noSnapshots = "glusterd2 v4.1.1 has no working snapshot endpoint for smart volumes (its snapshot plugin needs thinly provisioned LVM bricks)"

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
