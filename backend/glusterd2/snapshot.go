package glusterd2

import "github.com/subvolkit/subvolkit/backend"

var _ backend.Snapshotter = (*Backend)(nil)

// noSnapshots answers every backend.Snapshotter call with Unimplemented and
// this reason; Backend embeds it.
type noSnapshots = backend.NoSnapshots

// noSnapshotsReason is why.
const noSnapshotsReason noSnapshots = "glusterd2 v4.1.1 has no working snapshot endpoint for smart volumes (its snapshot plugin needs thinly provisioned LVM bricks)"
