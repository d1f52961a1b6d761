// Package memory is an in-process subvolume backend: the reference
// implementation of the backend contract, and a fake for unit-testing code
// that uses subvolkit without a Gluster cluster (as gocloud's memblob and
// mount-utils' FakeMounter are for theirs).
//
// A subvolume here is an entry in a map, with a size that counts against
// the backend's capacity. It has no content unless Options.Dir is set: then
// each subvolume is also a real directory, Dir/<name>, in which callers may
// write files; Clone copies that tree, Usage measures it, and a shrink below
// what it holds is refused. Its Subvol looks like one from the gluster CLI
// backend: Path is "/<name>", Volume and Servers come from Options, so code
// that mounts subvolumes sees realistic values.
//
// # Capabilities
//
// *Backend implements backend.Backend and every optional interface:
// backend.Resizer (grow and shrink), backend.Cloner, backend.UsageReader,
// backend.Pinger and backend.Aser. All three delete policies are honoured:
// DeletePolicyDelete removes the subvolume and its directory;
// DeletePolicyRetain removes it from the pool but leaves Dir/<name> where it
// is; DeletePolicyArchive moves Dir/<name> to Dir/.archive/<name>-<id>.
// Retained and archived subvolumes no longer count against the capacity.
// Without Dir there is no data to keep, so the three policies differ only in
// name.
//
// # List
//
// List honours backend.ListOptions.NamesOnly (only Name, ID, Path, Volume
// and Servers are filled) and WithUsage (Subvol.Usage is filled as Usage
// would report it; with Dir that walks each subvolume's tree). The page
// token is the last name of the previous page, so subvolumes created or
// deleted between pages never make a page skip or repeat another name.
//
// # Params
//
// The package registers itself as "memory" (see backend.Register), so
// importing it for its side effect makes subvol.Open(ctx, "memory", params,
// nil) work. The parameters are:
//
//	servers   comma-separated volfile servers (default "localhost")
//	volume    the volume name reported in each Subvol (default "memory")
//	capacity  total capacity, a Kubernetes quantity such as "10Gi" (default: unlimited)
//	dir       an existing directory that holds one directory per subvolume
//
// Any other parameter, or a malformed one, is an error of kind
// InvalidArgument. CreateRequest.Parameters must be empty: the backend has
// no per-subvolume settings.
//
// # Errors
//
// Create of an existing name is AlreadyExists, and so is Create of a name
// whose directory already exists in Dir (retained data, or a directory the
// backend did not make: it is never adopted or overwritten). Get, Delete,
// Resize and Usage of a missing subvolume, and Clone of a missing source,
// are NotFound. A size that does not fit in the free capacity is
// QuotaExceeded. A cancelled or expired context is Canceled or
// DeadlineExceeded, and the call changes nothing (a Clone interrupted while
// copying removes its partial copy). Every method called after Close is
// FailedPrecondition, except Close itself, which is idempotent, and
// Allocated and Len. Names are checked with naming.ValidateSubvolName even
// though the Pool already did, so a raw Create can never escape Dir.
//
// # As
//
// Backend.As supports one type, **memory.Backend: given the address of a
// *memory.Backend variable it sets the variable to the backend itself, so
// that code holding a subvol.Pool can reach memory-specific methods such as
// Allocated and Len.
//
// # Concurrency
//
// A *Backend is safe for concurrent use by multiple goroutines. Operations
// are serialized by one lock, which a waiting call gives up when its context
// is done; a Clone with Dir copies while holding it.
package memory
