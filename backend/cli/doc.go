// Package cli is the gluster command-line backend: a subvolume is a
// top-level directory of one Gluster volume with a directory quota on it.
//
// The backend runs `gluster --mode=script --xml` through a Runner (the local
// binary by default; plug in ssh, `kubectl exec` or anything else) and judges
// every call by the XML's opRet and opErrno, never by the exit code, which
// the CLI gets wrong in several cases. It does its directory work through its
// own FUSE mount of the volume, verified against the mount table.
//
// # Parameters
//
// Open takes Options; backend.Open("cli", params) takes strings:
//
//	volume       the Gluster volume (required; started, quota enabled)
//	servers      comma-separated volfile servers, preferred first (required)
//	mountdir     where the backend mounts the volume (default /run/subvolkit/cli/…)
//	strictquota  "true": features.hard-timeout and soft-timeout 0 (see below)
//	enablequota  "true": run `volume quota VOL enable` if quota is off
//	glusterpath  the gluster binary (default: gluster in PATH)
//	glusterargs  extra CLI arguments, such as --glusterd-sock=/path
//
// Mutating quota calls must reach a glusterd of the trusted pool through its
// local socket: glusterd refuses them from --remote-host.
//
// # What a subvolume is
//
// A directory /<name> at the volume's root. Subvol.Path is "/<name>" and a
// client deep-mounts server:/<volume>/<name> (GlusterFS ≥ 3.12). With
// features.quota-deem-statfs on (the default once quota is enabled) df in
// such a mount reports the limit as the size. The backend keeps its own
// files in /.subvolkit (locks, trash, archive); subvolume names never start
// with a dot.
//
// Every subvolume carries an owner marker, the trusted.subvolkit.v1 extended
// attribute (writable only with CAP_SYS_ADMIN, so workloads cannot forge or
// strip it), recording its state, size, source and labels. Create is
//
//	mkdir → marker "creating" → owner and mode → limit-usage → read back → marker "ready"
//
// and is undone on any failure, also when the context is cancelled. A crash
// leaves a "creating" directory that is never listed and that the next
// Create or Delete of the name removes. Delete refuses a directory without
// the marker and removes the quota limit before the data: a limit left on a
// removed path makes `quota list` print nothing at all.
//
// # Concurrency
//
// Quota calls take glusterd's cluster-wide volume lock: run in parallel,
// about half fail with "Another transaction is in progress" (opErrno 30802).
// The backend serializes them per volume and retries that error with capped,
// jittered backoff under the caller's context. Per-name locks are OFD record
// locks on /.subvolkit/locks, which Gluster's locks translator enforces
// across every client: several processes or hosts may share a volume.
//
// # Quota strictness
//
// With Gluster's default timeouts (hard 5 s, soft 60 s) the bricks check
// usage against stale figures and a writer can overshoot a limit by tens of
// MiB. StrictQuota sets both to 0; the overshoot is then about one
// write-behind window (a few hundred KiB to ~2 MiB measured) at the cost of
// more quota traffic on the bricks.
//
// # Its mounts
//
// The backend mounts the volume for directory work, and a second time with
// glusterd's quota client pid (read only: limits and usage come from the
// quota extended attributes in well under a millisecond, instead of a
// ~50 ms `quota list`; see Options.NoQuotaAuxMount). Each call first checks
// the main mount with a statfs; if its FUSE client has died it is lazily
// unmounted and mounted again, and a dead aux mount is mounted again (or the
// CLI used), so a long-running process survives a killed client.
//
// # Capabilities
//
// Create, Get, Delete (delete, retain, archive), List, Resize (grow and
// shrink, not below the space in use), Clone (a copy of the tree keeping
// ownership, modes, times, symlinks and extended attributes; hard links are
// copied as separate files), Usage (from `quota list <path>`), Ping.
//
// # As
//
// Backend.As accepts **cli.Backend and *cli.Runner. Errors from a failed
// CLI call wrap a *CLIError (errors.As) with the arguments, opRet, opErrno
// and message.
//
// # Errors
//
// A missing subvolume is NotFound; an existing name, or a directory without
// the owner marker, is AlreadyExists on Create; Delete of such a directory
// is FailedPrecondition. A volume that is missing, stopped or without quota
// is FailedPrecondition; a CLI that cannot run, or a volume lock that stays
// busy, is Unavailable; messages the backend does not know are Unknown.
package cli
