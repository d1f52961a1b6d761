package mount

import (
	"context"
	"time"

	"github.com/subvolkit/subvolkit"
)

// MountState is the health of one GlusterFS mount on the node.
type MountState string

// The states NodeMounts reports.
const (
	// MountOK answered statfs.
	MountOK MountState = "ok"
	// MountStale is a mount whose FUSE client has died (ENOTCONN,
	// ECONNABORTED, ...): Heal, or the next Publish, repairs the ones this
	// package made.
	MountStale MountState = "stale"
	// MountUnresponsive did not answer statfs in time (its servers are
	// unreachable, or the client hangs).
	MountUnresponsive MountState = "unresponsive"
	// MountError failed statfs for another reason (the mount point is
	// gone, permission denied).
	MountError MountState = "error"
)

// NodeMount is one GlusterFS mount (a FUSE mount or a bind of one) in this
// process's mount namespace.
type NodeMount struct {
	// MountPoint is where it is mounted.
	MountPoint string
	// Source is the mount source, "host:/volume[/dir]".
	Source string
	// Bind is true for a bind mount of a part of a FUSE mount.
	Bind bool
	// State is the result of a statfs of MountPoint.
	State MountState
}

// DefaultNodeMountTimeout bounds the statfs of each mount in NodeMounts.
const DefaultNodeMountTimeout = time.Second

// NodeMounts lists every GlusterFS mount of the node (from
// /proc/self/mountinfo, not only those of a Mounter) and checks each with a
// statfs, all in parallel, each bounded by timeout (0 means
// DefaultNodeMountTimeout) and by ctx. A statfs that does not return in
// time is left to finish in the background and reported as
// MountUnresponsive. It is what a node agent or a metrics exporter needs to
// count stale mounts; it changes nothing.
func NodeMounts(ctx context.Context, timeout time.Duration) ([]NodeMount, error) {
	t, err := readMountInfoFile("/proc/self/mountinfo")
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, "node mounts", "", err)
	}
	return nodeMounts(ctx, t, timeout, statfsPath), nil
}

func nodeMounts(ctx context.Context, t table, timeout time.Duration, check func(string) error) []NodeMount {
	if timeout <= 0 {
		timeout = DefaultNodeMountTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []NodeMount
	var chans []chan error
	for _, e := range t {
		if !e.isGluster() {
			continue
		}
		out = append(out, NodeMount{MountPoint: e.MountPoint, Source: e.Source, Bind: e.Root != "/"})
		ch := make(chan error, 1)
		chans = append(chans, ch)
		go func(mp string) { ch <- check(mp) }(e.MountPoint)
	}
	for i, ch := range chans {
		var err error
		answered := true
		select {
		case err = <-ch:
		case <-ctx.Done():
			// The deadline and an answer may both be ready: prefer the answer.
			select {
			case err = <-ch:
			default:
				answered = false
			}
		}
		switch {
		case !answered:
			out[i].State = MountUnresponsive
		case err == nil:
			out[i].State = MountOK
		case isStale(err):
			out[i].State = MountStale
		default:
			out[i].State = MountError
		}
	}
	return out
}
