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
//
// Errors are wrapped once: a backend returns an *Error with a kind and the
// native cause (and at most an Op naming its own native step, such as a
// gluster command); subvol.Pool adds the operation and the subvolume's name.
// The message then reads
//
//	subvolkit: <op> "<name>": <kind>: <cause>
//
// with "subvolkit:" exactly once, however the error was wrapped on its way.
type Error struct {
	Kind Kind   // portable classification
	Op   string // operation, such as "allocate" or "quota limit-usage"; may be empty
	Name string // subvolume name; may be empty
	Err  error  // underlying error; may be nil
}

// Error formats the error as `subvolkit: <op> "<name>": <kind>: <cause>`
// (op and name are left out when empty). A *Error found inside the cause
// is rendered without its own "subvolkit: " prefix, and without the parts
// (operation, name, kind) that repeat this one's.
func (e *Error) Error() string {
	return "subvolkit: " + e.body(nil)
}

// body renders e without the "subvolkit: " prefix, leaving out what outer
// already says.
func (e *Error) body(outer *Error) string {
	var b strings.Builder
	op, name := e.Op, e.Name
	if outer != nil {
		if op == outer.Op {
			op = ""
		}
		if name == outer.Name {
			name = ""
		}
	}
	switch {
	case op != "" && name != "":
		fmt.Fprintf(&b, "%s %q: ", op, name)
	case op != "":
		b.WriteString(op + ": ")
	case name != "":
		fmt.Fprintf(&b, "subvolume %q: ", name)
	}
	kind := e.Kind.String()
	if outer != nil && e.Kind == outer.Kind {
		kind = ""
	}
	b.WriteString(kind)
	if e.Err != nil {
		cause := causeText(e, e.Err)
		if kind != "" && cause != "" {
			b.WriteString(": ")
		}
		b.WriteString(cause)
	}
	return strings.TrimSuffix(b.String(), ": ")
}

// causeText renders err, the cause of outer, replacing the message of every
// *Error found in err's tree by its prefix-less body, so that "subvolkit:"
// appears once in the whole message.
func causeText(outer *Error, err error) string {
	if se, ok := err.(*Error); ok {
		return se.body(outer)
	}
	msg := err.Error()
	for _, se := range nested(err) {
		msg = strings.Replace(msg, se.Error(), se.body(outer), 1)
	}
	return msg
}

// nested returns the outermost *Error values in err's tree (not err itself),
// without descending into them.
func nested(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if c := u.Unwrap(); c != nil {
				visit(c, &out, walk)
			}
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				if c != nil {
					visit(c, &out, walk)
				}
			}
		}
	}
	walk(err)
	return out
}

func visit(e error, out *[]*Error, walk func(error)) {
	if se, ok := e.(*Error); ok {
		*out = append(*out, se)
		return
	}
	walk(e)
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
//
// E does not wrap twice: if err is itself an *Error whose operation and name
// are empty or equal to op and name, the result takes err's cause directly.
func E(kind Kind, op, name string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		kind = Canceled
	case errors.Is(err, context.DeadlineExceeded):
		kind = DeadlineExceeded
	}
	return &Error{Kind: kind, Op: op, Name: name, Err: flatten(op, name, err)}
}

// flatten returns the cause to store under a new *Error with op and name:
// an *Error that adds nothing but its kind (no operation or name of its
// own, or the same ones) is replaced by its own cause.
func flatten(op, name string, err error) error {
	se, ok := err.(*Error)
	if !ok {
		return err
	}
	if (se.Op == "" || se.Op == op) && (se.Name == "" || se.Name == name) {
		return se.Err
	}
	return err
}

// Errorf builds an *Error whose underlying error is fmt.Errorf(format, args...).
// Use %w in format to keep a cause reachable with errors.Is/As.
func Errorf(kind Kind, op, name, format string, args ...any) error {
	return E(kind, op, name, fmt.Errorf(format, args...))
}

// WithOp returns err annotated with op and name, keeping its kind: this is
// the one wrap subvol.Pool adds. A nil err stays nil. An *Error that already
// says op and name is returned as it is; an *Error without operation or name
// (what backends return) is replaced by one with op and name around the same
// cause, so errors are wrapped once.
func WithOp(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if se, ok := err.(*Error); ok && se.Op == op && se.Name == name {
		return err
	}
	return &Error{Kind: KindOf(err), Op: op, Name: name, Err: flatten(op, name, err)}
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
