package glusterd2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gluster/glusterd2/pkg/api"
	"github.com/gluster/glusterd2/pkg/restclient"

	"github.com/subvolkit/subvolkit"
)

// Upstream error texts that decide a kind (glusterd2 v4.1.1 pkg/errors,
// the volume handlers and the smart volume planner). Matching them is the
// only way to tell these cases apart: glusterd2 answers 400 both for an
// invalid request and for a name that is taken.
const (
	msgVolExists     = "volume already exists"
	msgDeleteStarted = "Volume must be in stopped state before deleting."
	msgVolNotStarted = "volume not started"
	msgAlreadyStop   = "volume already stopped"
	msgNoSpace       = "No space available or all the devices are not registered"
)

// HTTPError is an answer from glusterd2 with an unexpected status. Errors
// returned by this package wrap it when the server answered, so that
// errors.As(err, &httpErr) gives the status and messages.
type HTTPError struct {
	// Method and Path are the request's, such as "POST" "/v1/smartvol".
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Messages are the error texts: the message of each glusterd2 error
	// (a failed transaction step rendered as pkg/restclient does), a JSON
	// string body (the 501 answers), or a plain text body (a 401).
	Messages []string
	// Errors are the glusterd2 errors of a JSON error body, nil if the
	// body was not one (which a 404 from a wrong URL is not).
	Errors []api.HTTPError
}

// Error returns "glusterd2: METHOD PATH: HTTP STATUS: messages".
func (e *HTTPError) Error() string {
	msg := strings.Join(e.Messages, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("glusterd2: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, msg)
}

// has reports whether one of the messages, or the error of a failed
// transaction step, is msg.
func (e *HTTPError) has(msg string) bool {
	for _, m := range e.Messages {
		if m == msg {
			return true
		}
	}
	for _, ae := range e.Errors {
		if ae.Message == msg || ae.Fields["error"] == msg {
			return true
		}
	}
	return false
}

// Kind classifies the error by its status and, where glusterd2 uses one
// status for several cases, by its message. See the package documentation.
func (e *HTTPError) Kind() subvolkit.Kind {
	switch {
	case e.has(msgVolExists):
		return subvolkit.AlreadyExists
	case e.Status == http.StatusBadRequest && (e.has(msgDeleteStarted) || e.has(msgVolNotStarted)):
		return subvolkit.FailedPrecondition
	case e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity:
		return subvolkit.InvalidArgument
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return subvolkit.PermissionDenied
	case e.Status == http.StatusNotFound:
		if len(e.Errors) > 0 {
			return subvolkit.NotFound
		}
		// Not glusterd2's "volume not found" but a router's "404 page
		// not found": the URL is wrong, nothing is known about the volume.
		return subvolkit.Unknown
	case e.Status == http.StatusConflict:
		return subvolkit.Unavailable
	case e.Status == http.StatusNotImplemented:
		return subvolkit.Unimplemented
	case e.Status == http.StatusInternalServerError && e.has(msgNoSpace):
		return subvolkit.QuotaExceeded
	case e.Status >= 500:
		return subvolkit.Unavailable
	}
	return subvolkit.Unknown
}

// newHTTPError decodes an error body the ways glusterd2 writes them.
func newHTTPError(method, path string, status int, body []byte) *HTTPError {
	e := &HTTPError{Method: method, Path: path, Status: status}
	var er api.ErrorResp
	var s string
	switch {
	case json.Unmarshal(body, &er) == nil && len(er.Errors) > 0:
		e.Errors = er.Errors
		for _, ae := range er.Errors {
			if api.ErrorCode(ae.Code) == api.ErrTxnStepFailed {
				e.Messages = append(e.Messages, fmt.Sprintf("Transaction step %s failed on peer %s with error: %s",
					ae.Fields["step"], ae.Fields["peer-id"], ae.Fields["error"]))
			} else {
				e.Messages = append(e.Messages, ae.Message)
			}
		}
	case json.Unmarshal(body, &s) == nil:
		e.Messages = []string{s}
	default:
		if t := strings.TrimSpace(string(body)); t != "" {
			if len(t) > 512 {
				t = t[:512] + "…"
			}
			e.Messages = []string{t}
		}
	}
	return e
}

// ErrorKind classifies an error from this package or from the upstream
// pkg/restclient (as returned by the client As gives): context errors are
// Canceled or DeadlineExceeded, an *HTTPError or a
// *restclient.UnexpectedStatusError is classified by status and message,
// any other error from talking to the server (connection refused or reset,
// TLS, a timeout) is Unavailable, and nil is Unknown.
func ErrorKind(err error) subvolkit.Kind {
	if err == nil {
		return subvolkit.Unknown
	}
	switch {
	case errors.Is(err, context.Canceled):
		return subvolkit.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return subvolkit.DeadlineExceeded
	}
	var se *subvolkit.Error
	if errors.As(err, &se) {
		return se.Kind
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Kind()
	}
	var ue *restclient.UnexpectedStatusError
	if errors.As(err, &ue) {
		return fromRestclient(ue).Kind()
	}
	var te *transportError
	if errors.As(err, &te) {
		return subvolkit.Unavailable
	}
	return subvolkit.Unknown
}

// fromRestclient recovers status and messages from the only place
// restclient keeps them, its Error text: "Request failed with HTTP Status
// code %d\n%s". A status that cannot be read is 0 (Unknown). The messages
// are concatenated upstream; they are kept as one.
func fromRestclient(ue *restclient.UnexpectedStatusError) *HTTPError {
	first, rest, _ := strings.Cut(ue.Error(), "\n")
	e := &HTTPError{}
	if _, err := fmt.Sscanf(first, "Request failed with HTTP Status code %d", &e.Status); err != nil {
		e.Status = 0
	}
	if rest != "" {
		e.Messages = []string{strings.TrimSuffix(rest, "\n")}
		// restclient renders the messages of a JSON error body, or,
		// for a body that is not JSON (a router's 404), the decoder's
		// complaint, which starts "invalid character". Only the former
		// is glusterd2 speaking about a volume.
		if !strings.HasPrefix(rest, "invalid character") {
			e.Errors = []api.HTTPError{{Message: e.Messages[0]}}
		}
	}
	return e
}

// transportError is a failure to get an answer: the connection could not be
// made or broke, TLS failed, or the attempt timed out.
type transportError struct {
	method, path string
	err          error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("glusterd2: %s %s: %v", e.method, e.path, e.err)
}

func (e *transportError) Unwrap() error { return e.err }
