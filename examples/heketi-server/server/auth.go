package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"strings"
	"time"
)

// iatLeeway is how far in the future a token's "iat" may be, as in heketi
// (HEKETI_JWT_IAT_LEEWAY_SECONDS defaults to 120): clocks differ.
const iatLeeway = 120 * time.Second

// Issuers heketi knows.
const (
	issuerAdmin = "admin"
	issuerUser  = "user"
)

// jwtAuth checks heketi's JSON Web Tokens: HMAC-signed with the admin or the
// user key (chosen by the "iss" claim), with "exp" required, "iat" not in the
// future beyond the leeway, "nbf" honoured when present, and "qsh" the
// hex SHA-256 of METHOD + "&" + path, so a token is good for one request
// line only. Users ("iss": "user") may only use the path /volumes, as in
// heketi. It is immutable and safe for concurrent use.
type jwtAuth struct {
	adminKey []byte
	userKey  []byte // nil: tokens issued by "user" are refused
	now      func() time.Time
}

// authError is a refusal: the HTTP status and heketi's message.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

func unauthorized(format string, args ...any) *authError {
	return &authError{status: http.StatusUnauthorized, msg: fmt.Sprintf(format, args...)}
}

// qsh is heketi's query string hash of a request: the query string itself is
// not part of it.
func qsh(method, path string) string {
	h := sha256.Sum256([]byte(method + "&" + path))
	return hex.EncodeToString(h[:])
}

// check verifies r's token and returns nil, or the refusal heketi would give.
func (a *jwtAuth) check(r *http.Request) *authError {
	raw, aerr := bearerToken(r)
	if aerr != nil {
		return aerr
	}
	claims, aerr := a.verify(raw)
	if aerr != nil {
		return aerr
	}
	if claims.Qsh != qsh(r.Method, r.URL.Path) {
		return unauthorized("Invalid qsh claim in token")
	}
	if claims.Iss == issuerUser && r.URL.Path != "/volumes" {
		return unauthorized("Administrator access required")
	}
	return nil
}

// bearerToken extracts the token of "Authorization: bearer <token>" (any
// case of "bearer", as heketi's middleware accepts).
func bearerToken(r *http.Request) (string, *authError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", unauthorized("Required authorization token not found")
	}
	f := strings.Fields(h)
	if len(f) != 2 || !strings.EqualFold(f[0], "bearer") {
		return "", &authError{status: http.StatusBadRequest, msg: "Authorization header format must be Bearer {token}"}
	}
	return f[1], nil
}

type claims struct {
	Iss string
	Qsh string
}

// rawClaims keeps numbers as json.Number so that a float or a huge value is
// judged, not silently truncated by the decoder.
type rawClaims struct {
	Iss string       `json:"iss"`
	Qsh string       `json:"qsh"`
	Exp *json.Number `json:"exp"`
	Iat *json.Number `json:"iat"`
	Nbf *json.Number `json:"nbf"`
}

// verify checks the signature and the time claims of a compact JWT.
func (a *jwtAuth) verify(raw string) (*claims, *authError) {
	bad := func(format string, args ...any) *authError {
		return unauthorized("Invalid JWT token: "+format, args...)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, bad("token contains an invalid number of segments")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, bad("malformed header: %v", err)
	}
	var newHash func() hash.Hash
	switch header.Alg {
	case "HS256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		return nil, bad("Unexpected signing method: %q", header.Alg)
	}
	var rc rawClaims
	if err := decodeSegment(parts[1], &rc); err != nil {
		return nil, bad("malformed claims: %v", err)
	}
	var key []byte
	switch rc.Iss {
	case "":
		return nil, bad("Token missing iss claim")
	case issuerAdmin:
		key = a.adminKey
	case issuerUser:
		key = a.userKey
	}
	if len(key) == 0 {
		// An unknown issuer, or the user issuer with no user key set: an
		// empty key must never verify a token signed with an empty key.
		return nil, bad("Unknown user")
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		return nil, bad("malformed signature: %v", err)
	}
	mac := hmac.New(newHash, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, bad("signature is invalid (client and server secrets may not match)")
	}

	now := a.now()
	exp, ok, err := unixTime(rc.Exp)
	switch {
	case err != nil:
		return nil, bad("exp: %v", err)
	case !ok:
		return nil, bad("Token is expired: it has no exp claim")
	case now.After(exp):
		return nil, bad("Token is expired by %v", now.Sub(exp).Round(time.Second))
	}
	if iat, ok, err := unixTime(rc.Iat); err != nil {
		return nil, bad("iat: %v", err)
	} else if ok && now.Before(iat.Add(-iatLeeway)) {
		return nil, bad("Token used before issued (client and server clocks may differ)")
	}
	if nbf, ok, err := unixTime(rc.Nbf); err != nil {
		return nil, bad("nbf: %v", err)
	} else if ok && now.Before(nbf) {
		return nil, bad("token is not valid yet")
	}
	return &claims{Iss: rc.Iss, Qsh: rc.Qsh}, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// unixTime reads a NumericDate claim (seconds since the epoch, possibly with
// a fraction). ok is false when the claim is absent.
func unixTime(n *json.Number) (t time.Time, ok bool, err error) {
	if n == nil {
		return time.Time{}, false, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
		return time.Time{}, false, errors.New("not a valid NumericDate")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
