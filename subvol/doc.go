// Package subvol is the API applications use: a Pool of subvolumes over a
// backend.Backend.
//
// A Pool validates names (naming.ValidateSubvolName) and sizes before a
// backend sees them, serializes operations on one name (the wait honours
// the context), applies the idempotency rules Kubernetes and CSI expect, and
// wraps every error once with the operation and the subvolume's name, so
// messages read `subvolkit: <op> "<name>": <kind>: <cause>`:
//
//   - Allocate of an existing name returns the existing subvolume when its
//     size is compatible by CSI's rule — at least the requested size and,
//     when AllocateOptions.LimitBytes is set, at most the limit — whatever
//     the backend's rounding (SizeGranularity reports it); any other size
//     is AlreadyExists.
//   - Clone likewise, when the existing subvolume was cloned from the same
//     source.
//   - Delete of a missing subvolume succeeds.
//   - Resize takes an absolute size; the backend converts it if it must.
//   - Invalid input is InvalidArgument and creates nothing.
//   - A cancelled context is Canceled, and the backend leaves nothing
//     half-made (or something the next Allocate or Delete finishes).
//
// List returns every subvolume with its details; ListPage reads one page
// (ListOptions: a stable page token, MaxResults to bound memory, NamesOnly
// for just the names, WithUsage for every entry's usage, read in bulk where
// the backend can), for listings of thousands.
//
// Close waits for the operations in flight, refuses new ones with
// FailedPrecondition and then closes the backend, as sql.DB.Close does;
// Shutdown bounds the wait with a context.
//
// Applications use this package's own types (Subvol, Ownership,
// DeletePolicy and the options); package backend is for backend authors.
// A backend's native client is reachable with Pool.As.
//
// Pick a backend by import (backend/cli, backend/heketi, backend/glusterd2,
// backend/memory) and either call its Open and NewPool, or Open a Pool by
// backend name with string parameters.
//
// A Pool is safe for concurrent use by multiple goroutines.
package subvol
