package subvolkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind is a portable classification of an error, independent of the backend
// that produced it. Use KindOf to read it, or errors.Is with one of the Err*
// sentinels.
type Kind int

// The error kinds. Unknown is the zero value and the answer whenever a
// backend cannot be sure: a wrong NotFound turns into "delete succeeded" and
// loses data.
const (
	Unknown Kind = iota
	NotFound
	AlreadyExists
	InvalidArgument
	QuotaExceeded
	Unavailable
	FailedPrecondition
	Unimplemented
	PermissionDenied
	Canceled
	DeadlineExceeded
	Internal
)

var kindNames = [...]string{
	Unknown:            "unknown",
	NotFound:           "not found",
	AlreadyExists:      "already exists",
	InvalidArgument:    "invalid argument",
	QuotaExceeded:      "quota exceeded",
	Unavailable:        "unavailable",
	FailedPrecondition: "failed precondition",
	Unimplemented:      "unimplemented",
	PermissionDenied:   "permission denied",
	Canceled:           "canceled",
	DeadlineExceeded:   "deadline exceeded",
	Internal:           "internal",
}

// String returns the kind's name, such as "not found".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// kindError is the type of the sentinels: errors.Is(err, ErrNotFound) is true
// for every error whose kind is NotFound.
type kindError struct{ kind Kind }

func (e *kindError) Error() string { return "subvolkit: " + e.kind.String() }

// Sentinel errors, one per Kind. errors.Is(err, ErrNotFound) reports whether
// err is of kind NotFound.
var (
	ErrUnknown            error = &kindError{Unknown}
	ErrNotFound           error = &kindError{NotFound}
	ErrAlreadyExists      error = &kindError{AlreadyExists}
	ErrInvalidArgument    error = &kindError{InvalidArgument}
	ErrQuotaExceeded      error = &kindError{QuotaExceeded}
	ErrUnavailable        error = &kindError{Unavailable}
	ErrFailedPrecondition error = &kindError{FailedPrecondition}
	ErrUnimplemented      error = &kindError{Unimplemented}
	ErrPermissionDenied   error = &kindError{PermissionDenied}
	ErrCanceled           error = &kindError{Canceled}
	ErrDeadlineExceeded   error = &kindError{DeadlineExceeded}
	ErrInternal           error = &kindError{Internal}
)

var sentinels = [...]error{
	Unknown:            ErrUnknown,
	NotFound:           ErrNotFound,
	AlreadyExists:      ErrAlreadyExists,
	InvalidArgument:    ErrInvalidArgument,
	QuotaExceeded:      ErrQuotaExceeded,
	Unavailable:        ErrUnavailable,
	FailedPrecondition: ErrFailedPrecondition,
	Unimplemented:      ErrUnimplemented,
	PermissionDenied:   ErrPermissionDenied,
	Canceled:           ErrCanceled,
	DeadlineExceeded:   ErrDeadlineExceeded,
	Internal:           ErrInternal,
}

// Sentinel returns the sentinel error of kind k (ErrUnknown for an unknown kind).
func (k Kind) Sentinel() error {
	if k >= 0 && int(k) < len(sentinels) {
		return sentinels[k]
	}
	return ErrUnknown
}

// Error is an error with a portable Kind, the operation that failed, the
// subvolume it concerned and the underlying (often backend-specific) error.
// errors.Is(err, ErrX) matches the kind; errors.As reaches Err and anything it
// wraps.
type Error struct {
	Kind Kind   // portable classification
	Op   string // operation, such as "allocate" or "quota limit-usage"; may be empty
	Name string // subvolume name; may be empty
	Err  error  // underlying error; may be nil
}

// Error formats the error as "subvolkit: <op> <name>: <kind>: <err>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("subvolkit: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
		b.WriteString(": ")
	} else if e.Name != "" {
		fmt.Fprintf(&b, "subvolume %q: ", e.Name)
	}
	b.WriteString(e.Kind.String())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error and the kind's sentinel, so that both
// errors.Is(err, ErrNotFound) and errors.As(err, &backendErr) work.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind.Sentinel()}
	}
	return []error{e.Err, e.Kind.Sentinel()}
}

// E builds an *Error. Context errors are never reclassified: if err is (or
// wraps) context.Canceled or context.DeadlineExceeded, the kind is Canceled or
// DeadlineExceeded whatever kind says.
func E(kind Kind, op, name string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		kind = Canceled
	case errors.Is(err, context.DeadlineExceeded):
		kind = DeadlineExceeded
	}
	return &Error{Kind: kind, Op: op, Name: name, Err: err}
}

// Errorf builds an *Error whose underlying error is fmt.Errorf(format, args...).
// Use %w in format to keep a cause reachable with errors.Is/As.
func Errorf(kind Kind, op, name, format string, args ...any) error {
	return E(kind, op, name, fmt.Errorf(format, args...))
}

// WithOp returns err annotated with op and name, keeping its kind. A nil err
// stays nil; an *Error that already names the same subvolume is returned as
// it is, so errors are wrapped once.
func WithOp(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) && se.Name == name && se.Op == op {
		return err
	}
	return &Error{Kind: KindOf(err), Op: op, Name: name, Err: err}
}

// KindOf returns the kind of err: Unknown for nil-free errors that carry no
// kind, Canceled/DeadlineExceeded for context errors, and the outermost kind
// of an *Error chain otherwise. KindOf(nil) is Unknown.
func KindOf(err error) Kind {
	if err == nil {
		return Unknown
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Kind
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return Unknown
}
