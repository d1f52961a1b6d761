package mount

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/subvolkit/subvolkit"
)

// VolumeStats is the capacity and inode usage of a mounted subvolume, as CSI
// NodeGetVolumeStats and the kubelet report it.
type VolumeStats struct {
	CapacityBytes  int64 // total size; the quota limit when quota-deem-statfs is on
	UsedBytes      int64 // CapacityBytes minus free space
	AvailableBytes int64 // space an unprivileged writer may still use
	Inodes         int64 // total inodes
	InodesUsed     int64
	InodesFree     int64
}

// Stats reports the usage of the filesystem mounted at target, from
// statfs(2). On a GlusterFS subdirectory with a quota limit and
// features.quota-deem-statfs on (the default once quota is enabled) the
// capacity is the limit; without a limit it is the whole volume.
//
// A missing target is NotFound; a mount whose FUSE client has died is
// Unavailable. statfs on a hung FUSE mount can block: Stats returns when ctx
// ends, leaving the call to finish in the background.
func Stats(ctx context.Context, target string) (*VolumeStats, error) {
	const op = "stats"
	if target == "" {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "empty target")
	}
	type res struct {
		st  syscall.Statfs_t
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var r res
		r.err = syscall.Statfs(target, &r.st)
		ch <- r
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, subvolkit.E(subvolkit.Unknown, op, target, ctx.Err())
	}
	if r.err != nil {
		err := &os.PathError{Op: "statfs", Path: target, Err: r.err}
		switch {
		case errors.Is(r.err, syscall.ENOENT):
			return nil, subvolkit.E(subvolkit.NotFound, op, target, err)
		case isStale(err):
			return nil, subvolkit.E(subvolkit.Unavailable, op, target, err)
		}
		return nil, subvolkit.E(subvolkit.Unknown, op, target, err)
	}
	return statsFrom(&r.st), nil
}

func statsFrom(st *syscall.Statfs_t) *VolumeStats {
	bs := st.Frsize
	if bs == 0 {
		bs = st.Bsize
	}
	return &VolumeStats{
		CapacityBytes:  int64(st.Blocks) * bs,
		UsedBytes:      int64(st.Blocks-st.Bfree) * bs,
		AvailableBytes: int64(st.Bavail) * bs,
		Inodes:         int64(st.Files),
		InodesUsed:     int64(st.Files - st.Ffree),
		InodesFree:     int64(st.Ffree),
	}
}
