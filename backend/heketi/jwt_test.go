package heketi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend/heketi"
)

// TestVerifier checks the shared verifier against tokens minted by Token:
// the round trip, heketi's refusals with their statuses and messages, and
// that an empty key verifies nothing.
func TestVerifier(t *testing.T) {
	now := time.Now()
	v := &heketi.Verifier{AdminKey: "adm", UserKey: "usr", Now: func() time.Time { return now }}
	req := func(method, path, auth string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	bearer := func(iss, key, method, path string, at time.Time) string {
		return "bearer " + heketi.Token(iss, key, method, path, at)
	}
	cases := []struct {
		name   string
		r      *http.Request
		iss    string
		status int // 0: accepted
		msg    string
	}{
		{"admin", req("DELETE", "/volumes/ab", bearer("admin", "adm", "DELETE", "/volumes/ab", now)), "admin", 0, ""},
		{"query string not hashed", req("GET", "/volumes?x=1", bearer("admin", "adm", "GET", "/volumes", now)), "admin", 0, ""},
		{"user on /volumes", req("GET", "/volumes", bearer("user", "usr", "GET", "/volumes", now)), "user", 0, ""},
		{"user elsewhere", req("GET", "/clusters", bearer("user", "usr", "GET", "/clusters", now)), "user", 401, "Administrator access required"},
		{"no header", req("GET", "/volumes", ""), "", 401, "Required authorization token not found"},
		{"basic", req("GET", "/volumes", "Basic eDp5"), "", 400, "Authorization header format must be Bearer {token}"},
		{"wrong key", req("GET", "/volumes", bearer("admin", "usr", "GET", "/volumes", now)), "", 401, "Invalid JWT token: signature is invalid (client and server secrets may not match)"},
		{"other request", req("DELETE", "/volumes", bearer("admin", "adm", "GET", "/volumes", now)), "admin", 401, "Invalid qsh claim in token"},
		{"unknown issuer", req("GET", "/volumes", bearer("root", "adm", "GET", "/volumes", now)), "", 401, "Invalid JWT token: Unknown user"},
		{"no issuer", req("GET", "/volumes", bearer("", "adm", "GET", "/volumes", now)), "", 401, "Invalid JWT token: Token missing iss claim"},
		{"expired", req("GET", "/volumes", bearer("admin", "adm", "GET", "/volumes", now.Add(-6*time.Minute))), "", 401, "Invalid JWT token: Token is expired by 1m0s"},
		{"from the future", req("GET", "/volumes", bearer("admin", "adm", "GET", "/volumes", now.Add(3*time.Minute))), "", 401, "(client and server clocks may differ)"},
		{"within the leeway", req("GET", "/volumes", bearer("admin", "adm", "GET", "/volumes", now.Add(time.Minute))), "admin", 0, ""},
		{"garbage", req("GET", "/volumes", "bearer a.b"), "", 401, "Invalid JWT token: token contains an invalid number of segments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iss, err := v.Verify(c.r)
			var ae *heketi.AuthError
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case c.status == 0 && iss != c.iss:
				t.Fatalf("issuer %q, want %q", iss, c.iss)
			case c.status == 0:
			case !errors.As(err, &ae):
				t.Fatalf("err %v, want an *AuthError", err)
			case ae.Status != c.status || !strings.Contains(ae.Message, c.msg):
				t.Fatalf("got %d %q, want %d %q", ae.Status, ae.Message, c.status, c.msg)
			}
		})
	}

	// No user key: even a token signed with the empty key is refused.
	admOnly := &heketi.Verifier{AdminKey: "adm"}
	_, err := admOnly.Verify(req("GET", "/volumes", bearer("user", "", "GET", "/volumes", time.Now())))
	if err == nil || !strings.Contains(err.Error(), "Unknown user") {
		t.Fatalf("user token with no user key: %v", err)
	}
}
