// Package cli is the gluster command-line backend: a subvolume is a
// top-level directory of one Gluster volume with a directory quota on it.
//
// The backend runs `gluster --mode=script --xml` through a Runner (plug in
// ssh, `kubectl exec` or anything else) and judges every call by the XML's
// opRet and opErrno, never by the exit code, which the CLI gets wrong in
// several cases. The default, ShellRunner, keeps up to two gluster shells
// (`gluster --xml` reading commands from a pipe) open and sends them the
// calls that set, remove and read limits and read the volume's info, so
// that those calls do not start a process each; ExecRunner starts one per
// call. ShellRunner.Command runs the shells anywhere ExecRunner would run
// the CLI (ssh, nsenter), where the saving is larger still. It does its directory work through its
// own FUSE mount of the volume, verified against the mount table.
//
// # Preparing a volume, then opening it
//
// Prepare readies a volume once: it enables quota and, with StrictQuota,
// sets the strict quota timeouts. Those are cluster-wide volume settings, so
// Open never changes them (as sql.Open has no side effects): Open only
// checks the volume (started, quota on; otherwise FailedPrecondition saying
// to call Prepare) and mounts it for its own directory work.
//
//	if err := cli.Prepare(ctx, nil, "gv0", &cli.PrepareOptions{StrictQuota: true}); err != nil { … }
//	b, err := cli.Open(ctx, &cli.Options{Volume: "gv0", Servers: []string{"gfs1", "gfs2"}})
//
// # Parameters
//
// Open takes Options; OptionsFromParams and backend.Open("cli", params) take
// strings (the retry keys are spelled the same in every backend):
//
//	volume            the Gluster volume (required; started, prepared)
//	servers           comma-separated volfile servers, preferred first (required)
//	mountdir          where the backend mounts the volume (default /run/subvolkit/cli/…)
//	glusterpath       the gluster binary (default: gluster in PATH)
//	glusterargs       extra CLI arguments, such as --glusterd-sock=/path
//	retrymaxattempts  retries of a busy volume lock (default 20)
//	retrymindelay     first retry delay (default 50ms), doubled up to
//	retrymaxdelay     (default 2s)
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
// files in /.subvolkit (locks, staging, trash, archive, warm, the index of
// retained subvolumes); subvolume names never start with a dot.
//
// Every subvolume carries an owner marker, the trusted.subvolkit.v1 extended
// attribute (writable only with CAP_SYS_ADMIN, so workloads cannot forge or
// strip it), recording its state, size, source and labels.
//
// # Crash safety
//
// Create and Clone build the subvolume in /.subvolkit/staging/<name>.<nonce>:
//
//	mkdir (with its final mode) → marker, owner ‖ limit-usage → read back the limit → (copy) → rename to /<name>
//
// The marker and owner are written while the gluster CLI sets the limit
// (‖: neither needs the other), and staging leftovers of the name go to
// the trash meanwhile. The marker is written once: while the directory is
// in the staging area, the area says it is incomplete. A rename keeps the directory's quota
// limit, so the volume's root only ever holds complete subvolumes (and
// retained ones, whose names stay taken). A failure removes what was made, also when the
// context is cancelled; a crash leaves a staging entry that the next Create,
// Clone or Delete of the name, or Reconcile, removes. Resize writes the new
// size into the marker as pending before it changes the limit, and makes it
// final after: Get reports the size the quota has, and the next Resize or
// Reconcile completes a crashed one (a Resize to the recorded size still sets
// the limit when the quota disagrees).
//
// Delete (policy delete) renames /<name> into /.subvolkit/trash and returns
// (tens of milliseconds, whatever the tree's size). The limit goes with it:
// a writer that still has a file open there stays bounded. A background
// purger removes the data with the limit in place, then the limit, then the
// empty directory (a limit left on a removed path makes `quota list` print
// nothing at all). Files modified within Options.PurgeBusyAge (5 s) are
// left, still bounded, and retried with backoff, as are directories that
// fill again; Gluster cannot tell a client which files another client holds
// open, so a writer idle longer than that whose file is then removed writes
// into an unlinked, unlimited file. The purge resumes, in the background,
// after a restart; Purge runs a pass under a context and PurgeStatus reports
// progress; Close stops it. Archive marks, renames into /.subvolkit/archive,
// then removes the limit; each step is finished by the next call or by
// Reconcile. Retain adds the name to /.subvolkit/retained (an empty file per
// name) before the marker says "retained"; deleting the retained subvolume
// removes the entry after. A stale entry (a crash in between) costs List one
// marker read and is removed by Reconcile with Repair, which also indexes
// retained subvolumes the index lacks.
//
// Warm subvolumes (backend.Warmer; subvol.Pool.SetWarm keeps them stocked)
// are built like Create's, as /.subvolkit/staging/_warm-<size>.<nonce>, and
// renamed to /.subvolkit-warm.<size>.<nonce> at the volume's root once
// complete, marker "warm" and limit set. No subvolume name starts with a
// dot, so List passes them by; and a rename within one directory skips the
// quota translator's limit check, which makes the take's rename the
// cheapest there is. TakeWarm hands one out without a CLI call: under the
// name's lock and the entry's own, it writes the new marker while it stats
// the entry, sets the owner and mode in place and renames it to /<name>. A
// crash before that rename leaves an entry whose marker no longer says
// "warm" and maybe a new owner or mode: the next take overwrites such a
// marker, or moves the entry to the trash if its owner or mode changed;
// DrainWarm and Reconcile move it to the trash. Reconcile also moves to the
// trash what is left in /.subvolkit/warm, where versions before kept them.
//
// Reconcile (dry run unless Repair) finds staging leftovers, half-made,
// half-deleted and half-archived subvolumes, interrupted resizes, limits
// that disagree with the marker, limits on paths that are not subvolumes,
// empty unmarked directories (removed) and foreign ones (reported only),
// warm subvolumes whose marker or limit is wrong, the trash, and archives
// past a retention age. A name locked by a running
// operation is skipped. Delete refuses a directory without the marker.
//
// Child processes (the gluster CLI) run in their own process group, are
// killed with it when the context is done, and die with the caller
// (Pdeathsig).
//
// # Concurrency
//
// Quota calls take glusterd's cluster-wide volume lock: run in parallel,
// about half fail with "Another transaction is in progress" (opErrno 30802).
// The backend serializes them per volume and retries that error with capped,
// jittered backoff under the caller's context. It retries the same way
// glusterd's answer that its own quota aux mount is not connected ("Failed
// to find the directory /var/run/gluster/VOL_quota_limit/…: Transport
// endpoint is not connected"): glusterd mounts that client for each
// limit-usage or remove and fails there before it changes anything.
// Per-name locks are OFD record locks on /.subvolkit/locks, which Gluster's
// locks translator enforces across every client: several processes or hosts
// may share a volume. A lock's unlock goes to the bricks after the call has
// returned; this process's next lock of the name waits for it, other
// processes see the name free a round trip later.
//
// # Quota strictness
//
// With Gluster's default timeouts (hard 5 s, soft 60 s) the bricks check
// usage against stale figures and a writer can overshoot a limit by tens of
// MiB. PrepareOptions.StrictQuota sets both to 0; the overshoot is then about one
// write-behind window (a few hundred KiB to ~2 MiB measured) at the cost of
// more quota traffic on the bricks.
//
// # Its mounts
//
// The backend mounts the volume for directory work, and a second time with
// glusterd's quota client pid (read only: limits and usage come from the
// quota extended attributes in well under a millisecond, instead of a
// ~50 ms `quota list`; see Options.NoQuotaAuxMount). Calls learn the main
// mount's health from their own first call on it (the name lock, or the
// look-up of a read): if that fails with ENOTCONN or ECONNABORTED (its FUSE
// client has died), the mount is lazily unmounted and mounted again and the
// call goes on (a read is retried once); Purge, Reconcile, List with All and
// the snapshot calls check it with a statfs first. A dead aux (or list)
// mount is mounted again (or the CLI used), so a long-running process survives a
// killed client. The per-name lock keeps up to 16 open descriptions of the
// lock file for reuse (one per held lock: OFD locks belong to the
// description), dropped when the mount is replaced.
//
// # Wedged clients
//
// A client can also wedge: alive, but answering nothing, or nothing more to
// one request (GlusterFS 10.3's client was seen to abort on a write that
// failed with ENOSPC and hang in its own crash handler; sometimes its other
// threads went on answering). The calls waiting on it would wait in the
// kernel forever, where no context reaches. While a copy runs (Clone,
// snapshots), the backend statfs'es its mount every Options.WedgeTimeout/4
// and follows the copy's progress (each entry, each chunk of at most
// 64 MiB); a statfs unanswered, or a copy that did not move, for
// WedgeTimeout (default 2 min, longer than Gluster's 42 s ping timeout)
// means the client is wedged, and the backend aborts the mount's FUSE
// connection through /sys/fs/fuse/connections (mounting
// fusectl there if needed). The copy's calls then fail with ECONNABORTED,
// the call fails as Unavailable, what it made is cleaned up through the
// mount made again, and an error is logged. The wedged process is left
// alone (the backend does not know its PID); its log is Options.MountDir's
// volume.log.
//
// # Listing
//
// The volume's root holds only complete subvolumes, so List reads names
// with one ReadDir of the root. Details (size, owner, labels, creation
// time, source) come from the owner markers and, with
// backend.ListOptions.WithUsage, limits and usage from the quota extended
// attributes on the aux mount: read for the whole page by a few goroutines,
// with no per-entry lock, statfs or CLI call; without an aux mount usage
// comes from one `quota list` for the whole page. A List with usage reads
// the root, the markers, the owners and the usage through a third mount,
// the list mount (MountDir/list, made on the first List with usage, with
// the quota client pid): its client is started with md-cache options (see
// the source's auxCacheOptions) that make one ReadDir bring every entry's
// marker and quota size with the entry (a List of the whole root reads it
// in batches, each batch's entries as it arrives). Only List reads through
// it, and only the root's entries, so each ReadDir renews what it caches:
// a List's usage is as fresh as its ReadDir. Usage, and the limits read
// back after Create, Clone and Resize, go through the quota aux mount,
// which caches no size: they are as fresh as Gluster's accounting. An entry whose
// usage cannot be read has a nil Usage. The page token is the last name of
// the previous page: creates and deletes between pages never make a page
// skip or repeat a name that exists throughout. ListOptions.NamesOnly is
// that ReadDir (and one of /.subvolkit/retained, to leave retained
// subvolumes out) with no per-entry call, so it may also include what a
// full List leaves out: a directory someone made at the root by hand (no
// owner marker), and the leftovers of an older version or of a crashed
// archive at the root; Get, a full List, and List with ListOptions.All
// (which keeps reporting everything, staging leftovers without a marker
// too) tell them apart.
//
// # Capabilities
//
// Create, Get, Delete (delete, retain, archive), List, Resize (grow and
// shrink, not below the space in use), Clone (a copy of the tree keeping
// ownership, modes, times, symlinks and extended attributes; hard links are
// copied as separate files), Usage (from the quota extended attributes, or `quota list <path>`), Ping,
// Reconcile; List with ListOptions.All shows retained, archived and broken
// subvolumes too.
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
// is FailedPrecondition; a CLI that cannot run, glusterd unreachable
// ("Connection failed"), or a volume lock that stays busy, is Unavailable;
// an owner UID or GID beyond 32 bits, or labels too large for the marker's
// extended attribute, are InvalidArgument; messages the backend does not
// know are Unknown.
package cli
