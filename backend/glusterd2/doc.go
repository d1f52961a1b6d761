// Package glusterd2 is a subvolume backend for glusterd2 v4.1.1, the REST
// management daemon of Gluster 4: each subvolume is a whole Gluster volume,
// a glusterd2 "smart volume" that glusterd2 sizes and places itself.
//
// It speaks glusterd2's REST API with the upstream request and response
// types (github.com/gluster/glusterd2/pkg/api, plugins/smartvol/api) and the
// same JWT as the upstream pkg/restclient, through a client of its own:
// restclient takes no context, loses HTTP status codes and has a fixed 30 s
// timeout. Open it with Open, or by name through backend.Open (importing the
// package registers it as "glusterd2").
//
// # Parameters
//
// The registry parameters, each a string, map to Options:
//
//	url         glusterd2's endpoint, "http(s)://host:port" (required)
//	user        JWT issuer; glusterd2 v4.1.1 accepts only "glustercli" (default)
//	secret      the shared secret, the content of glusterd2's <workdir>/auth;
//	            empty for a glusterd2 with REST authentication off
//	tlscafile   PEM file of CAs to trust for https
//	tlsinsecure "true" to skip TLS verification
//	retrymaxattempts, retrymindelay, retrymaxdelay   retry bounds ("4", "500ms", "8s")
//	replica     replica count of new volumes: 0/1 (none, the default), 2, 3
//	disperse    disperse (erasure-coded) brick count, at least 3
//	redundancy  disperse redundancy; 0 lets glusterd2 choose
//
// Any other parameter, or a malformed one, is an error of kind
// InvalidArgument. CreateRequest.Parameters may set replica, disperse and
// redundancy for one subvolume (setting one kind drops the other from the
// defaults). Retries, timeouts, TLS clients and logging are set through
// Options.
//
// # What a subvolume is
//
// Create calls POST /v1/smartvol with the volume name (see below) and the
// size, records the size, name, creation time and labels in the volume's
// glusterd2 metadata (POST /v1/volumes/{volname}/edit; keys MetaSize,
// MetaName, MetaCreated and MetaLabels) and starts the volume. If a step after the volume was made
// fails, Create stops and deletes it again before returning; if the create
// itself got no answer, Create removes a never-started volume of that name
// that lacks the metadata. Delete stops the volume and deletes it.
//
// Sizes: glusterd2 v4.1.1 takes a smart volume's size in MiB (its glustercli
// turns "--size 1G" into 1024) and refuses less than 10 MiB, so a request
// is rounded up to whole MiB, and to at least MinSizeBytes; SizeBytes
// reports the rounded size, the one asked of glusterd2. The volume's
// filesystem capacity is a little smaller (XFS overhead).
//
// Subvol.Volume is the glusterd2 volume name, VolumeName(Name): the
// subvolume's name itself unless glusterd2 cannot take it (it has a '.', or
// is longer than MaxVolumeName), in which case it is rewritten and made
// unique with a hash; the subvolume's name is kept in the metadata. ID is
// the volume's UUID; Path is "" (mount the whole volume); Servers are the
// hosts of the volume's bricks, each once, in brick order. UID and GID are
// -1 and Mode 0: glusterd2 does not report the root directory's owner.
//
// A volume without the MetaSize metadata is not a subvolume (this backend
// did not make it, or it was retained): List leaves it out, Get, Delete and
// Usage say NotFound and leave it alone, and Create of its name is
// AlreadyExists. The same holds for a volume whose MetaName is another
// subvolume's. A volume this backend made but never started (a Create whose
// clean-up failed) is FailedPrecondition for Get and left out of List. The one exception is a volume in glusterd2's "Created"
// state (never started, so it never held data), which is what a Create cut
// short leaves: Delete removes it, so that deleting the name completes the
// cleanup.
//
// # Capabilities
//
// *Backend implements backend.Backend, backend.Pinger (GET /ping),
// backend.UsageReader and backend.Aser, and also backend.Resizer and
// backend.Cloner, which always answer Unimplemented because glusterd2
// v4.1.1 cannot do them:
//
//   - Resize: glusterd2 v4.1.1 has no size-based expand; POST
//     /v1/volumes/{volname}/expand adds bricks given by the caller, and
//     nothing shrinks a volume.
//   - Clone: POST /v1/snapshot/{snapname}/clone answers 501 "Snapshot
//     Clone" in v4.1.1 (as do snapshot delete and restore).
//   - Usage works: GET /v1/volumes/{volname}/status reports the mounted
//     volume's used bytes; Limit is SizeBytes, Available the difference,
//     Files and Dirs -1. It needs the volume to be started. Directory quotas
//     are not used at all (the quota plugin's limit routes are stubs in
//     v4.1.1): the volume's own size is the limit.
//   - Ownership: CreateRequest.Owner other than nil or {-1, -1, 0} is
//     Unimplemented: glusterd2 cannot set the owner or mode of a volume's
//     root directory.
//   - Delete policies: DeletePolicyRetain removes the backend's metadata,
//     leaving the volume running with its data, outside the pool (its name
//     stays taken); DeletePolicyArchive is Unimplemented, since a volume
//     cannot be renamed.
//
// # List
//
// Every volume glusterd2 reports comes with its details in one answer, so
// List ignores backend.ListOptions.NamesOnly (the entries always carry their
// full details) and leaves Subvol.Usage nil with WithUsage: usage is read
// one subvolume at a time through backend.UsageReader.
//
// # As
//
// Backend.As supports *(**http.Client), the HTTP client the backend uses,
// and *(**restclient.Client) (github.com/gluster/glusterd2/pkg/restclient),
// a new upstream client for the same URL and credentials, for calls this
// package does not make. Classify errors from that client with ErrorKind.
//
// # Errors
//
// When glusterd2 answers with an unexpected status the error wraps an
// *HTTPError (errors.As gives Status, the messages and glusterd2's own
// error list). The kinds:
//
//	400 "volume already exists" (also a failed    AlreadyExists
//	    transaction step saying so)
//	400 "Volume must be in stopped state...",     FailedPrecondition
//	    "volume not started"
//	other 400, 422                                InvalidArgument
//	401, 403 (bad secret or issuer)               PermissionDenied
//	404 with a glusterd2 error body               NotFound
//	404 without one (a wrong URL)                 Unknown
//	409 (transaction lock not obtained)           Unavailable, after retries
//	500 "No space available or all the devices    QuotaExceeded
//	    are not registered"
//	501                                           Unimplemented
//	other 5xx, no answer (refused, reset, TLS,    Unavailable
//	    timeout)
//	anything else                                 Unknown
//
// A cancelled or expired context is Canceled or DeadlineExceeded. Requests
// are retried with capped exponential backoff and jitter, up to
// Options.RetryMaxAttempts times, only when sending them again is safe: a 409 (the
// lock was not obtained, nothing was done), a connection that could not be
// made, and for GET requests also a 5xx other than 501 or a broken
// connection. A POST or DELETE whose answer was lost is never sent again.
// Calls after Close are FailedPrecondition.
//
// # Concurrency
//
// A *Backend is safe for concurrent use by multiple goroutines. glusterd2
// serializes operations on a volume with its own transaction locks (a 409
// when one is not obtained within 5 s), but a smart volume create checks
// that the name is free before it takes the lock, and the losing one of two
// concurrent creates of a name removes, in its undo, bricks named after the
// volume, the winner's. The backend therefore serializes Create and Delete
// per name among its own calls; two processes must not create the same name
// on one glusterd2 at the same time (subvol.Pool's locks are per process
// too).
package glusterd2
