package heketifake

import (
	"errors"
	"net/http"

	"github.com/subvolkit/subvolkit/backend/heketi"
)

// authenticate checks the request's token as heketi's JWT middleware and
// its Auth middleware do (heketi.Verifier, shared with the example
// heketi-server), answering the error itself. It returns the token's
// issuer.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := heketi.Verifier{AdminKey: s.opts.AdminKey, UserKey: s.opts.UserKey}
	iss, err := v.Verify(r)
	var ae *heketi.AuthError
	if errors.As(err, &ae) {
		http.Error(w, ae.Message, ae.Status)
		return iss, false
	}
	return iss, true
}
