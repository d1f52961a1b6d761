package main

import (
	"context"
	"errors"

	"github.com/subvolkit/subvolkit"
)

// Exit codes. They are part of the command's interface: see README.md.
const (
	exitOK                 = 0   // success
	exitError              = 1   // any other error (unknown, internal)
	exitUsage              = 2   // bad command line, bad configuration or an invalid argument
	exitNotFound           = 3   // the subvolume (or source) does not exist
	exitAlreadyExists      = 4   // it exists, incompatibly
	exitQuotaExceeded      = 5   // the backend has no room
	exitUnavailable        = 6   // the backend did not answer (or a deadline passed)
	exitFailedPrecondition = 7   // the state does not allow it (quota off, pool closed, ...)
	exitUnimplemented      = 8   // the backend cannot do it
	exitPermissionDenied   = 9   // not allowed
	exitCanceled           = 130 // interrupted (SIGINT/SIGTERM)
)

// usageError marks errors of the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		return exitCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitUnavailable
	}
	switch subvolkit.KindOf(err) {
	case subvolkit.InvalidArgument:
		return exitUsage
	case subvolkit.NotFound:
		return exitNotFound
	case subvolkit.AlreadyExists:
		return exitAlreadyExists
	case subvolkit.QuotaExceeded:
		return exitQuotaExceeded
	case subvolkit.Unavailable, subvolkit.DeadlineExceeded:
		return exitUnavailable
	case subvolkit.FailedPrecondition:
		return exitFailedPrecondition
	case subvolkit.Unimplemented:
		return exitUnimplemented
	case subvolkit.PermissionDenied:
		return exitPermissionDenied
	case subvolkit.Canceled:
		return exitCanceled
	}
	return exitError
}
