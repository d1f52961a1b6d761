package glusterd2

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/subvolkit/subvolkit"
)

func TestHTTPErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   subvolkit.Kind
		msg    string
	}{
		{400, `{"errors":[{"code":1,"message":"volume already exists"}]}`, subvolkit.AlreadyExists, "volume already exists"},
		// The lost race of two creates: the transaction step says it.
		{500, `{"errors":[{"code":2,"message":"a txn step failed","fields":{"step":"vol-create.CreateVolinfo","peer-id":"p1","error":"volume already exists"}}]}`,
			subvolkit.AlreadyExists, "Transaction step vol-create.CreateVolinfo failed on peer p1 with error: volume already exists"},
		{400, `{"errors":[{"code":1,"message":"Volume must be in stopped state before deleting."}]}`, subvolkit.FailedPrecondition, ""},
		{400, `{"errors":[{"code":1,"message":"volume not started"}]}`, subvolkit.FailedPrecondition, ""},
		{400, `{"errors":[{"code":1,"message":"invalid volume name"}]}`, subvolkit.InvalidArgument, "invalid volume name"},
		{422, `{"errors":[{"code":1,"message":"json: cannot unmarshal"}]}`, subvolkit.InvalidArgument, ""},
		{401, "signature is invalid\n", subvolkit.PermissionDenied, "signature is invalid"},
		{403, "", subvolkit.PermissionDenied, ""},
		{404, `{"errors":[{"code":1,"message":"volume not found"}]}` + "\n", subvolkit.NotFound, "volume not found"},
		{404, "404 page not found\n", subvolkit.Unknown, "404 page not found"},
		{404, `{"errors":[]}`, subvolkit.Unknown, ""},
		{409, `{"errors":[{"code":1,"message":"could not obtain lock: another conflicting transaction may be in progress"}]}`, subvolkit.Unavailable, ""},
		{500, `{"errors":[{"code":1,"message":"No space available or all the devices are not registered"}]}`, subvolkit.QuotaExceeded, ""},
		{500, `{"errors":[{"code":1,"message":"No devices registered or available for allocating bricks"}]}`, subvolkit.Unavailable, ""},
		{501, `"Snapshot Clone"` + "\n", subvolkit.Unimplemented, "Snapshot Clone"},
		{503, "", subvolkit.Unavailable, ""},
		{302, "", subvolkit.Unknown, ""},
		{200, `{}`, subvolkit.Unknown, ""},
	} {
		e := newHTTPError("POST", "/v1/x", tc.status, []byte(tc.body))
		if got := e.Kind(); got != tc.kind {
			t.Errorf("%d %s: kind %v, want %v", tc.status, tc.body, got, tc.kind)
		}
		if tc.msg != "" && (len(e.Messages) != 1 || e.Messages[0] != tc.msg) {
			t.Errorf("%d %s: messages %q, want [%q]", tc.status, tc.body, e.Messages, tc.msg)
		}
		if got := ErrorKind(fmt.Errorf("wrapped: %w", e)); got != tc.kind {
			t.Errorf("%d: ErrorKind of a wrapped HTTPError = %v", tc.status, got)
		}
	}
}

func TestErrorKindOthers(t *testing.T) {
	if k := ErrorKind(nil); k != subvolkit.Unknown {
		t.Errorf("ErrorKind(nil) = %v", k)
	}
	if k := ErrorKind(errors.New("x")); k != subvolkit.Unknown {
		t.Errorf("ErrorKind(plain) = %v", k)
	}
	if k := ErrorKind(fmt.Errorf("x: %w", context.Canceled)); k != subvolkit.Canceled {
		t.Errorf("ErrorKind(canceled) = %v", k)
	}
	if k := ErrorKind(&transportError{"GET", "/ping", errors.New("connection reset")}); k != subvolkit.Unavailable {
		t.Errorf("ErrorKind(transport) = %v", k)
	}
	e := newHTTPError("GET", "/ping", 500, nil)
	if e.Error() != "glusterd2: GET /ping: HTTP 500: Internal Server Error" {
		t.Errorf("Error() = %q", e.Error())
	}
}
