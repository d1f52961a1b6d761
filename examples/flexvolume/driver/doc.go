// Package driver is a Kubernetes FlexVolume driver for GlusterFS
// subvolumes, a drop-in replacement for gluster-subvol's glfs-subvol
// script (driver "rht/glfs-subvol"), built on subvolkit's mount package.
//
// kubelet runs the driver once per operation and reads one JSON object from
// its combined output:
//
//	glfs-subvol init
//	glfs-subvol mount <mount dir> <json options>
//	glfs-subvol unmount <mount dir>
//
// The options are those of the PersistentVolume's flexVolume section,
//
//	cluster: 192.168.173.15:192.168.173.16:192.168.173.17   # first primary, the rest backups
//	volume:  testvol                                         # the big Gluster volume
//	dir:     00/01                                           # directory inside it
//
// plus the kubernetes.io/* keys kubelet adds (kubernetes.io/readwrite "ro"
// publishes the directory read-only). Every node has one FUSE mount per
// volume and server set, under the state directory, and each pod's mount
// dir is a bind mount of its directory inside it; see package
// github.com/subvolkit/subvolkit/mount for the locking (flock, so that
// concurrent driver processes are safe), the reference counting (from the
// mount table, so it survives crashes) and the recovery of a shared mount
// whose FUSE client died.
//
// Replies follow kubelet's FlexVolume driver-call contract: "Success" and
// "Not supported" exit 0, "Failure" exits 1, and nothing but the JSON reply
// is ever written to stdout or stderr (kubelet parses their combined
// output).
//
// # Configuration
//
// kubelet starts the driver with its own environment; to change a setting,
// install a two-line wrapper script that exports it and execs the binary.
//
//	SUBVOLKIT_FLEX_DRIVER            driver name, vendor/name (default rht/glfs-subvol)
//	SUBVOLKIT_FLEX_LOG               log file, or "off" (default /var/log/glusterfs/glfs-subvol.log)
//	SUBVOLKIT_FLEX_STATE             shared mounts and lock files (default /var/lib/kubelet/plugins/<vendor>~<name>)
//	SUBVOLKIT_FLEX_GLUSTER_LOG_DIR   glusterfs client logs (default /var/log/glusterfs/subvolkit)
//	SUBVOLKIT_FLEX_GLUSTER_LOG_LEVEL glusterfs client log level (default INFO)
//	SUBVOLKIT_FLEX_TIMEOUT           bound on one call, a Go duration (default 2m)
//	SUBVOLKIT_FLEX_PROBE_TIMEOUT     TCP probe of each server before a mount (default 1.5s; "off" disables)
//	SUBVOLKIT_FLEX_FSGROUP           "true" lets kubelet apply fsGroup ownership (default false, as glfs-subvol)
//
// # Log
//
// The log has glfs-subvol's format: every line of one invocation carries
// the same timestamp (Unix seconds with nanoseconds), so overlapping calls
// can be told apart; ">" lines are the arguments (secrets masked), "<" the
// exit code and the reply, "!" the external commands run (mount(8) and
// umount(8), as mount-utils runs them, and lazy unmounts, which are a
// system call), and other lines are diagnostics:
//
//	[1505999412.727592392] > mount /var/lib/kubelet/pods/…/volumes/rht~glfs-subvol/pv1 {"cluster":"…","dir":"00/05",…}
//	[1505999412.727592392] ! mount -t glusterfs -o log-file=…,log-level=INFO,backup-volfile-servers=h2:h3 h1:/testvol /var/lib/kubelet/plugins/rht~glfs-subvol/shared/testvol-…
//	[1505999412.727592392] ! mount -o bind /var/lib/kubelet/plugins/rht~glfs-subvol/shared/testvol-…/00/05 /var/lib/kubelet/pods/…/pv1
//	[1505999412.727592392] < 0 {"status":"Success","message":"volserver=h1 backup=h2:h3 volume=testvol …"}
//
// Lines are appended with one write each, so concurrent invocations never
// interleave within a line.
package driver
