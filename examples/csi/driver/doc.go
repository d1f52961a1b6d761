// Package driver is the CSI driver of the subvolkit-csi example: a thin
// mapping of the CSI gRPC protocol (spec v1.13) onto subvol.Pool (controller)
// and package mount (node).
//
// A volume is a subvolume of one of the pools named in the pools file; its
// ID is "<pool>/<subvolume name>" (subvol.VolumeID), so every controller
// call works with the ID alone. A snapshot ID is "<pool>/<snapshot name>".
// The node needs nothing but the volume context that CreateVolume returned
// (subvol.FromVolumeContext): NodeStageVolume mounts the Gluster volume once
// per node and server set (mount.ModeShared) and binds the subvolume's
// directory on the staging path; NodePublishVolume binds the same directory
// on the target, read-only where asked.
//
// Error kinds map to gRPC codes in one place (status.go). A copy that is
// still running (clone, snapshot, restore) answers ABORTED "in progress"
// until it has finished; the copy itself runs in the Pool (see
// subvol.ErrInProgress).
package driver
