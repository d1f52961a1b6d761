package heketi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// The issuers heketi knows: "admin" may do everything, "user" may only use
// the path /volumes.
const (
	IssuerAdmin = "admin"
	IssuerUser  = "user"
)

// IATLeeway is how far in the future a token's "iat" may lie before heketi
// refuses it (its HEKETI_JWT_IAT_LEEWAY_SECONDS default): clocks differ.
const IATLeeway = 120 * time.Second

// tokenTTL is the lifetime of the tokens Token mints, as heketi's client.
const tokenTTL = 5 * time.Minute

// QSH is heketi's query string hash of a request: the hex SHA-256 of
// METHOD + "&" + path. The query string itself is not part of it.
func QSH(method, path string) string {
	sum := sha256.Sum256([]byte(method + "&" + path))
	return hex.EncodeToString(sum[:])
}

// Token returns the JWT heketi's client sends with one request: HS256 with
// the claims iss, iat (now), exp (five minutes later) and qsh, signed with
// key. It is good for that request line only.
func Token(issuer, key, method, path string, now time.Time) string {
	claims, _ := json.Marshal(struct { // cannot fail: strings and integers
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
		Qsh string `json:"qsh"`
	}{issuer, now.Unix(), now.Add(tokenTTL).Unix(), QSH(method, path)})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// AuthError is a request heketi's server refuses: the HTTP status and the
// message heketi sends.
type AuthError struct {
	Status  int
	Message string
}

func (e *AuthError) Error() string { return e.Message }

// Verifier checks requests the way heketi's server does (its JWT middleware
// with jwt-go, then its Auth middleware): "Authorization: bearer <token>",
// an HMAC-signed token (HS256, HS384 or HS512) whose "iss" picks the key,
// "exp" required, "iat" at most IATLeeway in the future, "nbf" honoured,
// "qsh" matching the request, and issuer "user" only on /volumes. Messages
// are heketi's. Unlike heketi, an empty key never verifies anything: with
// UserKey empty, tokens issued by "user" are refused as "Unknown user".
// A Verifier is safe for concurrent use once set up.
type Verifier struct {
	// AdminKey and UserKey are the secrets of the issuers "admin" and
	// "user".
	AdminKey, UserKey string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verify checks r's token and returns its issuer, or an *AuthError with the
// status and message heketi would answer.
func (v *Verifier) Verify(r *http.Request) (issuer string, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", &AuthError{http.StatusUnauthorized, "Required authorization token not found"}
	}
	parts := strings.Fields(h)
	if len(parts) != 2 || !strings.EqualFold(parts[0], "bearer") {
		return "", &AuthError{http.StatusBadRequest, "Authorization header format must be Bearer {token}"}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	claims, err := v.verifyToken(parts[1], now().Unix())
	if err != nil {
		msg := "Invalid JWT token: " + err.Error()
		switch {
		case err.Error() == "signature is invalid":
			msg += " (client and server secrets may not match)"
		case strings.Contains(err.Error(), "used before issued"):
			msg += " (client and server clocks may differ)"
		}
		return "", &AuthError{http.StatusUnauthorized, msg}
	}
	if claims.Qsh != QSH(r.Method, r.URL.Path) {
		return claims.Issuer, &AuthError{http.StatusUnauthorized, "Invalid qsh claim in token"}
	}
	if claims.Issuer == IssuerUser && r.URL.Path != "/volumes" {
		return claims.Issuer, &AuthError{http.StatusUnauthorized, "Administrator access required"}
	}
	return claims.Issuer, nil
}

// jwtClaims are the claims heketi decodes (jwt-go's StandardClaims plus
// qsh); decoding into typed fields makes malformed claims fail as they do
// upstream.
type jwtClaims struct {
	Audience  string `json:"aud,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	ID        string `json:"jti,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Qsh       string `json:"qsh,omitempty"`
}

// nonHMAC are the signing methods jwt-go knows that are not HMAC: heketi's
// key function refuses them with "Unexpected signing method".
var nonHMAC = map[string]bool{
	"none": true, "RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
}

// verifyToken parses and checks a token in the order jwt-go's
// ParseWithClaims does with heketi's key function and claims validation,
// returning errors with the same texts.
func (v *Verifier) verifyToken(tok string, now int64) (*jwtClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("token contains an invalid number of segments")
	}
	hb, err := decodeSegment(parts[0])
	if err != nil {
		if strings.HasPrefix(strings.ToLower(tok), "bearer ") {
			return nil, errors.New("tokenstring should not contain 'bearer '")
		}
		return nil, err
	}
	var header map[string]any
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, err
	}
	cb, err := decodeSegment(parts[1])
	if err != nil {
		return nil, err
	}
	var claims jwtClaims
	if err := json.NewDecoder(bytes.NewReader(cb)).Decode(&claims); err != nil {
		return nil, err
	}
	alg, ok := header["alg"].(string)
	if !ok {
		return nil, errors.New("signing method (alg) is unspecified.")
	}
	var newHash func() hash.Hash
	switch alg {
	case "HS256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		if nonHMAC[alg] {
			return nil, fmt.Errorf("Unexpected signing method: %v", alg)
		}
		return nil, errors.New("signing method (alg) is unavailable.")
	}
	var key string
	switch claims.Issuer {
	case "":
		return nil, errors.New("Token missing iss claim")
	case IssuerAdmin:
		key = v.AdminKey
	case IssuerUser:
		key = v.UserKey
	}
	if key == "" {
		// An unknown issuer, or one without a key: an empty key must
		// never verify a token signed with an empty key.
		return nil, errors.New("Unknown user")
	}

	// heketi's HeketiJwtClaims.Valid: exp is required, iat has leeway,
	// nbf is optional. The last failing check's message wins, and a bad
	// signature overrides them all.
	var claimErr error
	if claims.ExpiresAt == 0 || now > claims.ExpiresAt {
		claimErr = fmt.Errorf("Token is expired by %v", time.Unix(now, 0).Sub(time.Unix(claims.ExpiresAt, 0)))
	}
	if now < claims.IssuedAt-int64(IATLeeway/time.Second) {
		claimErr = errors.New("Token used before issued")
	}
	if claims.NotBefore != 0 && now < claims.NotBefore {
		claimErr = errors.New("token is not valid yet")
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, err
	}
	mac := hmac.New(newHash, []byte(key))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("signature is invalid")
	}
	if claimErr != nil {
		return nil, claimErr
	}
	return &claims, nil
}

// decodeSegment decodes a JWT segment: base64url, padding optional.
func decodeSegment(seg string) ([]byte, error) {
	if l := len(seg) % 4; l > 0 {
		seg += strings.Repeat("=", 4-l)
	}
	return base64.URLEncoding.DecodeString(seg)
}
