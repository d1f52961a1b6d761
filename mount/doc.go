// Package mount publishes subvolumes on a node: it mounts the GlusterFS
// directory that a subvol.Subvol describes on a target directory, the way a
// CSI node plugin's NodePublishVolume or a FlexVolume "mount" call needs it,
// and takes it away again.
//
//	m, err := mount.New(&mount.Options{Mode: mount.ModeShared})
//	err = m.Publish(ctx, sv, "/var/lib/kubelet/pods/…/mount", &mount.PublishOptions{ReadOnly: true})
//	err = m.Unpublish(ctx, "/var/lib/kubelet/pods/…/mount")
//
// # Deep and shared mounts
//
// In ModeDeep every target gets its own FUSE mount of the subvolume's
// directory, "host:/volume/dir" (a subvolume that is a whole volume, as with
// heketi and glusterd2, mounts as "host:/volume"). Each is one glusterfs
// process of about 14 MiB, and costs 75–91 ms to mount (measured; see the
// README's benchmarks).
//
// In ModeShared the node has one FUSE mount per volume, server set and set
// of FUSE options, under <StateDir>/shared/, and each target is a bind mount
// of the subvolume's directory inside it (as gluster-subvol's glfs-subvol
// FlexVolume driver does). A bind costs no process and a few milliseconds.
// The shared mount's reference count is the number of its binds in the
// mount table — bind mounts of a FUSE mount have its device number, and
// their root field names the directory they show — so it cannot drift from
// reality, whatever crashed. The last Unpublish of a volume unmounts it.
// Publish, Unpublish and Heal hold an in-process mutex and an flock(2) on a
// file under <StateDir>/locks, per target and per shared mount (always in
// that order), so concurrent calls from goroutines and from separate
// processes (FlexVolume calls are processes) are safe.
//
// Every mount gets its own glusterfs client log under LogDir, a log level,
// and backup-volfile-servers built from the Subvol's other servers. Extra
// options pass through; sensitive options are never logged and are masked
// in errors, including the output of mount(8) that mount-utils quotes.
//
// # Verification
//
// mount -t glusterfs reports success even when the directory does not exist
// or auth.allow refuses the client: glusterfs daemonizes first and exits
// afterwards. After every mount, Publish checks that the mount point answers
// statfs and that /proc/self/mountinfo shows the expected source and
// directory on it. If not, it unmounts what is left and returns an error that
// quotes the reason from the client log, such as
// `subdirectory for mount "/x" is not found` (kind NotFound) or
// `Authentication failed` (kind PermissionDenied).
//
// # Idempotency
//
// Publishing the same subvolume on the same target again is a no-op; a
// different one on a mounted target is an error of kind AlreadyExists.
// Unpublishing a target that is not mounted, or does not exist, succeeds.
//
// # Stale mounts and healing
//
// When a FUSE client dies, its mount and every bind of it answer "Transport
// endpoint is not connected" or "Software caused connection abort"
// (mount-utils' IsCorruptedMnt, plus ECONNABORTED). Publish detects
// that on its target: a dead deep mount is lazily unmounted and mounted
// again; a dead shared mount is lazily unmounted, mounted again, and each of
// its binds replaced by a fresh one. Heal does the same for every shared
// mount on the node, and is meant to run when a node plugin starts. Only
// processes that open the target afterwards (or containers with
// HostToContainer mount propagation) see the restored mount.
//
// # Fast failover
//
// backup-volfile-servers only fails over quickly when the first server
// refuses the connection; when it does not answer at all a mount takes
// about 48 s. So before mounting, the servers' glusterd port (24007) is
// probed in parallel with a short timeout (ProbeTimeout, 1.5 s by default)
// and a server that answered goes first. If none answers, the servers are
// tried in the given order (the probe may be filtered) and errors say so.
// With a replicated volume, a brick on an unreachable node still costs up
// to 10 s: on start-up the client's replicate translator waits for every
// brick to answer or for a hard-coded 10-second "child-down" timer
// (__afr_launch_notify_timer in afr-common.c), whatever the volfile server.
// Measured on GlusterFS 10.3: 10.0 s when packets to the node are dropped,
// or its link is down while the kernel still has a neighbour entry for it;
// about 3 s when the kernel fails the connection sooner (no ARP answer).
//
// # Stats
//
// Stats reports capacity and inode usage from statfs(2); with Gluster's
// quota-deem-statfs on, the capacity of a subdirectory with a limit is the
// limit.
package mount
