package heketi

import "github.com/subvolkit/subvolkit/backend"

var _ backend.Snapshotter = (*Backend)(nil)

// noSnapshots answers every backend.Snapshotter call with Unimplemented and
// this reason; Backend embeds it.
type noSnapshots = backend.NoSnapshots

// noSnapshotsReason is why.
const noSnapshotsReason noSnapshots = "heketi has no snapshot API in its REST interface (gluster volume snapshots need thinly provisioned LVM bricks, which heketi does not expose); use its VolumeClone through Pool.Clone"
