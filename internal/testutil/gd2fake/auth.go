package gd2fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// internalUser is the only JWT issuer glusterd2 v4.1.1 accepts
// (glusterd2/middleware/auth.go: getAuthSecret knows no other).
const internalUser = "glustercli"

// hmacAlgs are the algorithms jwt-go's SigningMethodHMAC covers; the
// middleware accepts any of them.
var hmacAlgs = map[string]func() hash.Hash{
	"HS256": sha256.New,
	"HS384": sha512.New384,
	"HS512": sha512.New,
}

// knownAlgs are the other algorithms jwt-go v3 registers. A token naming one
// of them gets past parsing and is then refused by the middleware's
// "Unexpected signing method" check; any other name fails earlier, in
// jwt-go, with "signing method (alg) is unavailable.".
var knownAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"none": true,
}

// errPanic stands for the middleware's unchecked claims["iss"].(string)
// type assertion: a non-string issuer panics inside glusterd2 and the
// Recover middleware answers 500 with an empty body.
var errPanic = errors.New("panic: interface conversion")

// glusterd2's scheme is not heketi's, so this fake does not use
// heketi.Verifier: one fixed issuer ("glustercli") instead of admin/user
// keys, "iss" and "exp" required by the key function (which reports them as
// "Token missing <claim> Claim"), MapClaims validation with no iat leeway,
// no qsh in v4.1.1 (the release pkg/restclient speaks to), and other
// messages ("Invalid App ID: <iss>").
//
// checkAuth reproduces glusterd2/middleware/auth.go: the Authorization
// header must be "Bearer <JWT>" (scheme case-insensitive), the token must
// carry "iss" and "exp", be HMAC-signed, come from the issuer "glustercli",
// be valid by jwt-go's MapClaims rules (exp, iat, nbf when numeric) and
// carry a correct signature. The error text is what glusterd2 sends, as
// text/plain, with a 401.
func checkAuth(r *http.Request, secret string, now time.Time) error {
	header := strings.TrimSpace(r.Header.Get("Authorization"))
	if header == "" {
		return errors.New("Authorization header is required")
	}
	parts := strings.Split(header, " ")
	if len(parts) != 2 || strings.ToLower(parts[0]) != "bearer" {
		return errors.New("Authorization header format must be Bearer <TOKEN>")
	}
	return verifyToken(parts[1], secret, now)
}

// verifyToken follows the order of jwt-go v3's Parser.ParseWithClaims with
// the middleware's key function, so that the first failing check decides the
// message, as it does upstream.
func verifyToken(token, secret string, now time.Time) error {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return errors.New("token contains an invalid number of segments")
	}
	rawHeader, err := decodeSegment(segs[0])
	if err != nil {
		return err
	}
	var header map[string]any
	if err := json.Unmarshal(rawHeader, &header); err != nil {
		return err
	}
	rawClaims, err := decodeSegment(segs[1])
	if err != nil {
		return err
	}
	var claims map[string]any
	if err := json.Unmarshal(rawClaims, &claims); err != nil {
		return err
	}
	alg, ok := header["alg"].(string)
	if !ok {
		return errors.New("signing method (alg) is unspecified.")
	}
	newHash, isHMAC := hmacAlgs[alg]
	if !isHMAC && !knownAlgs[alg] {
		return errors.New("signing method (alg) is unavailable.")
	}

	// The middleware's key function.
	for _, c := range []string{"iss", "exp"} {
		if _, ok := claims[c]; !ok {
			return fmt.Errorf("Token missing %s Claim", c)
		}
	}
	if !isHMAC {
		return fmt.Errorf("Unexpected signing method: %v", header["alg"])
	}
	iss, ok := claims["iss"].(string)
	if !ok {
		return errPanic
	}
	if iss != internalUser {
		return fmt.Errorf("Invalid App ID: %s", iss)
	}

	// MapClaims.Valid: only numeric claims are checked; the last failing
	// check names the error. A bad signature overrides all of them.
	var claimErr error
	unix := now.Unix()
	if v, ok := numClaim(claims, "exp"); ok && v != 0 && unix > v {
		claimErr = errors.New("Token is expired")
	}
	if v, ok := numClaim(claims, "iat"); ok && v != 0 && unix < v {
		claimErr = errors.New("Token used before issued")
	}
	if v, ok := numClaim(claims, "nbf"); ok && v != 0 && unix < v {
		claimErr = errors.New("Token is not valid yet")
	}
	sig, err := decodeSegment(segs[2])
	if err != nil {
		return err
	}
	mac := hmac.New(newHash, []byte(secret))
	mac.Write([]byte(segs[0] + "." + segs[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return errors.New("signature is invalid")
	}
	return claimErr
}

// numClaim reads a numeric claim the way jwt-go decodes it (float64).
func numClaim(claims map[string]any, name string) (int64, bool) {
	f, ok := claims[name].(float64)
	return int64(f), ok
}

// decodeSegment decodes unpadded base64url, accepting padding as jwt-go does.
func decodeSegment(s string) ([]byte, error) {
	if l := len(s) % 4; l > 0 {
		s += strings.Repeat("=", 4-l)
	}
	return base64.URLEncoding.DecodeString(s)
}

// Token returns a JWT that the fake accepts for secret: HS256 with the
// claims iss=issuer and exp=now+ttl, as pkg/restclient builds it. Tests use
// it to speak raw HTTP to the fake.
func Token(issuer, secret string, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct {
		Exp int64  `json:"exp"`
		Iss string `json:"iss"`
	}{time.Now().Add(ttl).Unix(), issuer})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
