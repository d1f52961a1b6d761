package mount

import (
	"errors"
	"fmt"
	"syscall"

	mountutils "k8s.io/mount-utils"

	"github.com/subvolkit/subvolkit"
)

// kindError gives an internal error a subvolkit kind without the
// "subvolkit: op: kind:" prefix, which is added once, by subvolkit.WithOp,
// where an exported method returns.
type kindError struct {
	kind subvolkit.Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }

// Unwrap returns the error and the kind's sentinel, which is how
// subvolkit.KindOf and errors.Is(err, subvolkit.ErrNotFound) find the kind.
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind.Sentinel()} }

// withKind returns err with the given kind.
func withKind(kind subvolkit.Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// kindErrorf is withKind(kind, fmt.Errorf(format, args...)).
func kindErrorf(kind subvolkit.Kind, format string, args ...any) error {
	return withKind(kind, fmt.Errorf(format, args...))
}

// isStale reports whether err, from statfs or stat of a mount point, means
// the mount's FUSE client is gone: mount-utils' IsCorruptedMnt (ENOTCONN,
// ESTALE, EIO, ...) or ECONNABORTED, which Linux returns for a FUSE
// connection that was aborted when its daemon died.
func isStale(err error) bool {
	return mountutils.IsCorruptedMnt(err) || errors.Is(err, syscall.ECONNABORTED)
}
