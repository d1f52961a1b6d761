// Package backend defines the interfaces a subvolume backend implements, and
// a registry of backends by name.
//
// Application code should use package subvol, whose Pool adds name
// validation, per-name locking, the Kubernetes/CSI idempotency rules and
// consistent errors on top of a Backend. This package is for those who write
// a backend, and for choosing one by name (as a StorageClass parameter does).
//
// # The contract
//
// Every method takes a context first and must honour its cancellation. Every
// error a backend returns must carry a portable kind (see subvolkit.E and
// subvolkit.KindOf); when a backend cannot tell what happened it says
// subvolkit.Unknown, never NotFound. Backend-native errors stay reachable with
// errors.As through the *subvolkit.Error that wraps them.
//
// Errors are wrapped once: a backend returns subvolkit.E(kind, "", "", native)
// (or an Op naming its own native step, such as "volume quota limit-usage"),
// never the subvolume's name or the Pool's operation; subvol.Pool adds those,
// so a message reads `subvolkit: <op> "<name>": <kind>: <cause>`.
//
// The required set is Backend. Optional capabilities are separate interfaces
// (Resizer, Cloner, UsageReader, Pinger, Snapshotter, Reconciler, Warmer)
// discovered by type assertion; a
// backend that implements one but cannot serve a call in its configuration
// returns an error of kind Unimplemented whose message says why.
package backend

import (
	"context"
	"time"

	"github.com/subvolkit/subvolkit/quota"
)

// Subvol describes one subvolume: what a caller needs to account for it and
// what a mounter needs to mount it.
type Subvol struct {
	// Name is the subvolume's name in the pool (unique per backend).
	Name string
	// ID is the backend's own identifier (a heketi volume id, a directory
	// path); equal to Name where the backend has no other.
	ID string
	// SizeBytes is the size (quota limit) after the backend's rounding.
	SizeBytes int64
	// Servers are the Gluster volfile servers, first the preferred one.
	Servers []string
	// Volume is the Gluster volume that holds the subvolume.
	Volume string
	// Path is the directory inside Volume, with a leading "/", or "" when
	// the subvolume is the whole volume (heketi, glusterd2).
	Path string
	// MountOptions are extra mount options the backend recommends (for
	// example heketi's backup-volfile-servers), without secrets.
	MountOptions map[string]string
	// Source is the name of the subvolume this one was cloned from, if any.
	Source string
	// SourceSnapshot is the name of the snapshot this one was restored
	// from, if any (see Snapshotter).
	SourceSnapshot string
	// UID, GID and Mode are the owner and permission bits of the
	// subvolume's root directory, where the backend controls them; -1 and
	// 0 mean unknown.
	UID, GID int
	Mode     uint32
	// Created is when the subvolume was created, zero if unknown.
	Created time.Time
	// Labels are free-form key/value pairs stored with the subvolume.
	Labels map[string]string
	// State is "" for a live subvolume; List with ListOptions.All also
	// returns others: StateRetained, StateArchived, StateBroken.
	State string
	// Usage is the subvolume's usage when List was asked for it
	// (ListOptions.WithUsage) and the backend could read it cheaply; nil
	// otherwise.
	Usage *quota.Usage
}

// Subvol states reported by List with ListOptions.All.
const (
	StateRetained = "retained" // out of the pool, data and limit kept
	StateArchived = "archived" // out of the pool, data in the archive
	StateBroken   = "broken"   // half-made, or its limit disagrees with its record: Reconcile repairs it
)

// Ownership sets the owner and permissions of a new subvolume's root
// directory. A nil *Ownership leaves the backend's default (root, 0o755 for
// directory backends).
type Ownership struct {
	UID  int    // owner user id, -1 to leave unchanged
	GID  int    // owner group id, -1 to leave unchanged
	Mode uint32 // permission bits (0o7777 mask), 0 for the default
}

// CreateRequest asks for a new subvolume.
type CreateRequest struct {
	// Name is the subvolume's name; the Pool has validated it.
	Name string
	// SizeBytes is the requested size, > 0. The backend may round it up to
	// its Capabilities().SizeGranularity and reports the result in
	// Subvol.SizeBytes.
	SizeBytes int64
	// Owner, if not nil, sets the root directory's owner and mode.
	Owner *Ownership
	// Labels are stored with the subvolume where the backend can.
	Labels map[string]string
	// Parameters are backend-specific settings for this one subvolume
	// (for example heketi's volumetype). Unknown keys are InvalidArgument.
	Parameters map[string]string
}

// DeletePolicy says what Delete does with a subvolume's data.
type DeletePolicy int

const (
	// DeletePolicyDelete removes the quota limit, then the data.
	DeletePolicyDelete DeletePolicy = iota
	// DeletePolicyRetain removes the subvolume from the pool but keeps its
	// directory, data and limit where they are.
	DeletePolicyRetain
	// DeletePolicyArchive removes the quota limit and moves the data to an
	// archive location, out of the pool's namespace.
	DeletePolicyArchive
)

// String returns "delete", "retain" or "archive".
func (p DeletePolicy) String() string {
	switch p {
	case DeletePolicyDelete:
		return "delete"
	case DeletePolicyRetain:
		return "retain"
	case DeletePolicyArchive:
		return "archive"
	}
	return "unknown"
}

// DeleteOptions tune Delete. A nil *DeleteOptions means DeletePolicyDelete.
type DeleteOptions struct {
	Policy DeletePolicy
}

// ListOptions tune List. A nil *ListOptions lists from the start with the
// backend's default page size.
type ListOptions struct {
	// PageToken continues a previous List; "" starts at the beginning.
	PageToken string
	// MaxResults bounds the page size; 0 means the backend's default.
	MaxResults int
	// All lists, besides the live subvolumes, those out of the pool
	// (retained, archived) and broken ones (half-made, or whose limit
	// disagrees with their record), where the backend can tell; their
	// Subvol.State says which. The page order and token are then the
	// backend's own (several entries may share a name).
	All bool
	// NamesOnly asks for the names only: the backend may fill only Name,
	// ID, Path, Volume and Servers, and skip reading each subvolume's
	// details (size, owner, labels, creation time, source). A backend that
	// cannot list names more cheaply may return the full details. Which
	// entries a names-only listing may include beyond the live subvolumes
	// is the backend's to document (see its package documentation).
	NamesOnly bool
	// WithUsage asks the backend to fill Subvol.Usage for every entry, in
	// bulk, where it can do so more cheaply than one UsageReader.Usage call
	// per subvolume. A backend that cannot leaves Usage nil; an entry whose
	// usage could not be read also has a nil Usage.
	WithUsage bool
}

// ListPage is one page of List results, sorted by Name.
type ListPage struct {
	Subvols []*Subvol
	// NextPageToken is "" on the last page.
	NextPageToken string
}

// Backend is the required interface every backend implements. Implementations
// must be safe for concurrent use by multiple goroutines.
type Backend interface {
	// Create makes a new subvolume. If one named req.Name exists (complete
	// or not), it must return an error of kind AlreadyExists and change
	// nothing. An invalid request is InvalidArgument; a size the backend
	// can never hold is InvalidArgument or QuotaExceeded. If Create fails
	// it must leave nothing behind, or leave something a later Create or
	// Delete of the same name completes or removes.
	Create(ctx context.Context, req *CreateRequest) (*Subvol, error)

	// Get returns the named subvolume, or an error of kind NotFound.
	Get(ctx context.Context, name string) (*Subvol, error)

	// Delete removes the named subvolume according to opts (nil means
	// DeletePolicyDelete). A missing subvolume is an error of kind
	// NotFound (the Pool turns that into success). Backends must never
	// remove anything they did not create.
	Delete(ctx context.Context, name string, opts *DeleteOptions) error

	// List returns subvolumes sorted by name, a page at a time.
	List(ctx context.Context, opts *ListOptions) (*ListPage, error)

	// Close releases the backend's resources. Calls after Close fail
	// with kind FailedPrecondition.
	Close() error
}

// Resizer is implemented by backends that can change a subvolume's size.
type Resizer interface {
	// Resize sets the subvolume's size to sizeBytes (an absolute size,
	// not a delta) and returns it. A shrink the backend cannot do is
	// Unimplemented (or FailedPrecondition when usage is above the new
	// size); a missing subvolume is NotFound.
	Resize(ctx context.Context, name string, sizeBytes int64) (*Subvol, error)
}

// CloneRequest asks for a new subvolume with a copy of another's content.
type CloneRequest struct {
	// Source is the subvolume to copy.
	Source string
	// Name is the new subvolume's name.
	Name string
	// SizeBytes is the new subvolume's size; 0 means the source's size.
	// A size smaller than the source's is InvalidArgument.
	SizeBytes int64
	// Owner, Labels and Parameters are as in CreateRequest.
	Owner      *Ownership
	Labels     map[string]string
	Parameters map[string]string
}

// Cloner is implemented by backends that can copy a subvolume.
type Cloner interface {
	// Clone creates req.Name with the content of req.Source. A missing
	// source is NotFound; an existing req.Name is AlreadyExists.
	Clone(ctx context.Context, req *CloneRequest) (*Subvol, error)
}

// UsageReader is implemented by backends that can report usage.
type UsageReader interface {
	// Usage reports the named subvolume's usage, or NotFound.
	Usage(ctx context.Context, name string) (*quota.Usage, error)
}

// Pinger is implemented by backends that can check their server is reachable.
type Pinger interface {
	// Ping returns nil when the backend's server answers, an error of
	// kind Unavailable (or PermissionDenied) otherwise.
	Ping(ctx context.Context) error
}

// Capabilities describes fixed properties of a backend that portable code
// needs to know.
type Capabilities struct {
	// SizeGranularity is the unit, in bytes, to which the backend rounds a
	// requested size up (heketi: 1 GiB; glusterd2: 1 MiB). 0 or 1 means
	// sizes are kept exactly.
	SizeGranularity int64
}

// Describer is implemented by backends that describe their Capabilities. A
// backend that does not implement it keeps sizes exactly.
type Describer interface {
	Capabilities() Capabilities
}

// Aser is implemented by backends that expose their underlying client. As
// sets *i to it and reports true when i is a pointer to a supported type;
// each backend's package documentation lists the types.
type Aser interface {
	As(i any) bool
}

// Warmer is implemented by backends that can keep pre-made, pre-limited,
// unnamed subvolumes ("warm" ones) of a size and hand one out under a name
// much faster than Create makes one (subvol.Pool.SetWarm keeps them
// stocked). Warm subvolumes are never listed and count against no name.
type Warmer interface {
	// Warm makes one warm subvolume of sizeBytes (rounded as Create
	// rounds). A crash while it is made leaves nothing a later TakeWarm
	// hands out.
	Warm(ctx context.Context, sizeBytes int64) error
	// WarmCounts reports how many warm subvolumes of each size exist (on
	// the whole volume, made by any process).
	WarmCounts(ctx context.Context) (map[int64]int, error)
	// TakeWarm creates req.Name from a warm subvolume of exactly
	// req.SizeBytes, with req's owner and labels, and reports true; it
	// reports false, changing nothing, when none is left (the caller then
	// falls back to Create). An existing req.Name is AlreadyExists, as in
	// Create, and no warm subvolume is used.
	TakeWarm(ctx context.Context, req *CreateRequest) (*Subvol, bool, error)
	// DrainWarm removes warm subvolumes of sizeBytes (0: of every size),
	// keeping at most keep of each size, and reports how many it removed.
	DrainWarm(ctx context.Context, sizeBytes int64, keep int) (int, error)
}
