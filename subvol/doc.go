// Package subvol is the API applications use: a Pool of subvolumes over a
// backend.Backend.
//
// A Pool validates names (naming.ValidateSubvolName) and sizes before a
// backend sees them, serializes operations on one name, applies the
// idempotency rules Kubernetes and CSI expect, and wraps every error once
// with the operation and the subvolume's name:
//
//   - Allocate of an existing name with a compatible size returns the
//     existing subvolume; an incompatible size is AlreadyExists.
//   - Clone likewise, when the existing subvolume was cloned from the same
//     source.
//   - Delete of a missing subvolume succeeds.
//   - Resize takes an absolute size; the backend converts it if it must.
//   - Invalid input is InvalidArgument and creates nothing.
//   - A cancelled context is Canceled, and the backend leaves nothing
//     half-made (or something the next Allocate or Delete finishes).
//
// Pick a backend by import (backend/cli, backend/heketi, backend/glusterd2,
// backend/memory) and either call its Open and NewPool, or Open a Pool by
// backend name with string parameters.
//
// A Pool is safe for concurrent use by multiple goroutines.
package subvol
