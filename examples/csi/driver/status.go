package driver

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"
)

// toStatus maps an SDK error to a gRPC status: the one place where kinds
// become codes. A copy still running is ABORTED, so that the sidecar retries.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, subvol.ErrInProgress) {
		return status.Error(codes.Aborted, err.Error())
	}
	code := codes.Unknown
	switch subvolkit.KindOf(err) {
	case subvolkit.NotFound:
		code = codes.NotFound
	case subvolkit.AlreadyExists:
		code = codes.AlreadyExists
	case subvolkit.InvalidArgument:
		code = codes.InvalidArgument
	case subvolkit.QuotaExceeded:
		code = codes.ResourceExhausted
	case subvolkit.Unavailable:
		code = codes.Unavailable
	case subvolkit.FailedPrecondition:
		code = codes.FailedPrecondition
	case subvolkit.Unimplemented:
		code = codes.Unimplemented
	case subvolkit.PermissionDenied:
		code = codes.PermissionDenied
	case subvolkit.Canceled:
		code = codes.Canceled
	case subvolkit.DeadlineExceeded:
		code = codes.DeadlineExceeded
	case subvolkit.Internal:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

func errInvalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
