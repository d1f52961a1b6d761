// Package heketi is the subvolkit backend for heketi (v10), the REST
// service that creates whole GlusterFS volumes on LVM bricks. It uses
// heketi's own Go client (github.com/heketi/heketi/client/api/go-client),
// with an HTTP performer of its own that adds what that client lacks:
// context cancellation of every request (job polls included), HTTP status
// codes for errors, bounded context-aware retries of 429, and a bound on
// requests in flight.
//
// Import it for its side effect to make backend.Open(ctx, "heketi",
// params) available, or call Open with Options:
//
//	b, err := heketi.Open(ctx, &heketi.Options{
//		URL: "https://heketi.example:8080", User: "admin", Key: key,
//		Durability: "replicate:3",
//	})
//
// Open does not contact the server; Ping does.
//
// # Parameters
//
// backend.Open takes the Kubernetes in-tree glusterfs provisioner's
// StorageClass parameters (kubernetes.io/glusterfs), so a StorageClass can
// be carried over; an unknown parameter is InvalidArgument:
//
//	resturl        heketi's URL (required)                      Options.URL
//	restuser       JWT issuer, "admin" (default with a key;     Options.User
//	               Open refuses "user" with PermissionDenied:
//	               heketi lets it reach /volumes only)
//	restuserkey    the issuer's secret                          Options.Key
//	clusterid      comma list of cluster ids                    Options.Clusters
//	volumetype     replicate[:N] | disperse:D:R | none          Options.Durability
//	gid            group owning the volume root (mode 2775)     Options.Gid
//	volumeoptions  comma list of "key value" volume options     Options.VolumeOptions
//	snapfactor     thin pool snapshot factor 1..100, 0 off      Options.SnapshotFactor
//	tlsinsecure    skip TLS certificate checks                  Options.TLS.InsecureSkipVerify
//	tlscafile      PEM file of CAs to trust (not in-tree)       Options.TLS.CAFile
//	retrymaxattempts, retrymindelay, retrymaxdelay              Options.RetryMaxAttempts, …
//	deepdirprefix  see Options.DeepDirPrefix (not in-tree)      Options.DeepDirPrefix
//
// The in-tree provisioner's secretName, secretNamespace, gidMin, gidMax,
// volumenameprefix and customepnameprefix concern Kubernetes objects and
// are not accepted: resolve secrets before calling Open.
//
// volumetype defaults to replicate:3. A replica count is 1 to 3; disperse
// takes heketi's combinations 2:1, 4:2, 8:3 and 8:4. A CreateRequest's
// Parameters may override clusterid (within the backend's clusters),
// volumetype, gid, volumeoptions and snapfactor for one volume; the other
// keys are InvalidArgument there.
//
// # What a subvolume is
//
// A subvolume is a whole heketi volume. Subvol.ID is heketi's volume id,
// Volume the Gluster (heketi) volume name and Path "" (mount the whole
// volume). Subvol.Name is the volume name too, except that heketi does not
// allow '.' in names (only letters, digits, '_' and '-') while subvolume
// names may hold it: a name with '.' is stored as '_' followed by the name
// with '_' written "__" and '.' written "_d" ("my.data_1" is the volume
// "_my_ddata__1"), and read back the same way. No subvolume name starts
// with '_', so names without '.' (all of naming.FromUID's, and the
// in-tree provisioner's "vol_<id>") are their volume's name unchanged.
//
// A heketi-compatible server that hands out directories of one Gluster
// volume instead of whole volumes (subvolkit's examples/heketi-server,
// piragua) reports the deep path "<volume>/<dir>" as the name. Then Volume
// is the part before the first '/', Path the rest ("/<dir>"), and the name
// is read from the last element ("h.<name>" stands for a heketi name that
// is not a valid directory name, such as "_my_ddata__1").
//
// Sizes are whole GiB, rounded
// up, and SizeBytes reports the rounded size. Servers are heketi's mount
// hosts, the host of its mount device first; MountOptions carries
// backup-volfile-servers as heketi reports it. UID is 0 (heketi leaves the
// root to root) and GID the volume's gid; with a gid, heketi makes the root
// mode 2775, which Mode reports. An Ownership may only ask for that: uid -1
// or 0, a gid, and mode 0 or 02775. Labels are not stored (heketi volumes
// carry none) and Created is unknown.
//
// heketi keeps volume names unique only within a cluster, and not at all
// for clones. This backend therefore looks a name up across its clusters
// before it creates or clones (it lists the volumes and reads each id's
// info once, then remembers the id's name, which never changes) and holds a
// per-name lock while it does. Two processes creating the same name at once
// in different clusters can still both succeed; Get then reports the name
// as FailedPrecondition (ambiguous) rather than pick one. Set clusterid to
// keep the backend to the clusters it owns: it then sees and deletes only
// their volumes.
//
// # Capabilities
//
//   - Resize grows a volume to an absolute size: heketi's expand takes the
//     GiB to add, so the backend reads the current size and sends the
//     difference. The same size is a no-op; a smaller one is Unimplemented
//     (heketi cannot shrink) and changes nothing.
//   - Clone makes a heketi clone (a thin LVM snapshot clone with the
//     source's size and settings); a larger requested size is reached by an
//     expand afterwards, and the clone is deleted again if that fails.
//     Subvol.Source is known only for clones this Backend value made:
//     heketi does not record it.
//   - Usage is Unimplemented: heketi reports sizes, not usage.
//   - Ping calls GET /hello, then lists volumes to check the credentials.
//   - Delete deletes the volume and its data; DeletePolicyRetain and
//     DeletePolicyArchive are Unimplemented.
//
// # List
//
// Every volume heketi reports comes with its details in one answer, so
// List ignores backend.ListOptions.NamesOnly (the entries always carry their
// full details) and leaves Subvol.Usage nil with WithUsage: usage is read
// one subvolume at a time through backend.UsageReader.
//
// # Cancellation and interrupted jobs
//
// Every call honours its context: a cancelled call returns Canceled (or
// DeadlineExceeded) and a job poll in flight is abandoned at once; between
// polls a cancellation is noticed within Options.PollInterval. The one
// request that starts a job (the POST or DELETE heketi answers with 202) is
// allowed to finish, for at most 10 seconds, even after a cancellation:
// heketi answers it at once, and only its answer tells where the job is.
//
// A heketi job goes on in the server when its client stops polling, and
// until it ends heketi neither lists nor shows the volume, yet keeps its
// name. So when a call ends after heketi accepted its job but before its
// outcome was known (a cancellation, a dropped connection), the Backend
// remembers the job for that subvolume name, and the next Create, Get,
// Delete, Resize or Clone of the name first waits for it to end. A retried
// Create then returns AlreadyExists for the volume the job made (which
// subvol.Pool turns into the volume), a Delete removes it, and a retried
// Resize reads the size the expand left instead of adding the difference
// twice. This memory belongs to the Backend value: another process, or a
// restarted one, cannot see it.
//
// # As
//
// As supports **client.Client (github.com/heketi/heketi/client/api/go-client):
// a heketi client configured like the backend (URL, credentials, TLS or
// HTTP client, poll interval) with heketi's own 10–30 s 429 retry off. Its
// calls take no context.
//
// # Tokens
//
// Token mints heketi's JWT for one request (HS256; iss, iat, exp five
// minutes later, qsh = hex SHA-256 of "METHOD&path"), and Verifier checks
// tokens exactly as heketi's server does, with its statuses and messages.
// The heketi-compatible example server and the test fake use Verifier, so
// there is one implementation. Open refuses the "user" issuer with
// PermissionDenied: heketi lets it reach /volumes only, so it could start
// a create but never follow it.
//
// # Testing against the real heketi
//
// Package heketitest builds the real heketi server and heketi-cli and runs
// the server with its mock executor in a network namespace of its own;
// TestRealHeketiConformance runs this backend through the conformance
// suite against it, and TestFakeAnswersAsRealHeketi checks that the test
// fake answers the same raw requests with the real server's statuses and
// messages.
//
// # Errors
//
// Errors are *subvolkit.Error values naming the operation and the
// subvolume. The kind comes from the HTTP status of the answer that failed
// the call, which the backend records (heketi's client keeps only the
// text); the status and text are reachable as *HTTPError with errors.As:
//
//	404 "Id not found"            NotFound (any other 404, such as a wrong URL path, is Unknown)
//	400, 422                      InvalidArgument (heketi's validation)
//	401, 403                      PermissionDenied (wrong key, or the "user" issuer outside /volumes)
//	409                           FailedPrecondition (heketi's own database volume)
//	429                           retried up to Options.RetryMaxAttempts times, then Unavailable
//	500 "… already in use"        AlreadyExists (heketi's per-cluster name check)
//	500 "… No space", "… Maximum number of bricks reached.",
//	    "… Out of space."         QuotaExceeded (heketi's allocator gave up)
//	500 "… is in use."            FailedPrecondition (an operation is pending on the volume)
//	other 5xx, no answer          Unavailable; a failed job's error carries the server's text
//	context ended                 Canceled or DeadlineExceeded
//	anything else                 Unknown
//
// A volume heketi hides while an operation runs on it (the source of a
// clone in progress) is never reported missing: calls that cannot tell
// return Unavailable.
package heketi
