package heketifake

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

// iatLeeway is heketi's default HEKETI_JWT_IAT_LEEWAY_SECONDS.
const iatLeeway = 120

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

// Signing methods jwt-go knows that are not HMAC: heketi's key function
// rejects them with "Unexpected signing method".
var nonHMAC = map[string]bool{
	"none": true, "RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
}

// authenticate checks the request's token as heketi's JWT middleware and
// its Auth middleware do, answering the error itself. It returns the
// token's issuer.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		http.Error(w, "Required authorization token not found", http.StatusUnauthorized)
		return "", false
	}
	parts := strings.Fields(h)
	if len(parts) != 2 || strings.ToLower(parts[0]) != "bearer" {
		http.Error(w, "Authorization header format must be Bearer {token}", http.StatusBadRequest)
		return "", false
	}
	claims, err := s.verifyToken(parts[1], time.Now().Unix())
	if err != nil {
		msg := "Invalid JWT token: " + err.Error()
		if err.Error() == "signature is invalid" {
			msg += " (client and server secrets may not match)"
		}
		if strings.Contains(err.Error(), "used before issued") {
			msg += " (client and server clocks may differ)"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return "", false
	}
	if claims.Qsh != qsh(r.Method, r.URL.Path) {
		http.Error(w, "Invalid qsh claim in token", http.StatusUnauthorized)
		return claims.Issuer, false
	}
	if claims.Issuer == "user" && r.URL.Path != "/volumes" {
		http.Error(w, "Administrator access required", http.StatusUnauthorized)
		return claims.Issuer, false
	}
	return claims.Issuer, true
}

// qsh is heketi's query string hash: the query string itself is not part
// of it.
func qsh(method, path string) string {
	sum := sha256.Sum256([]byte(method + "&" + path))
	return hex.EncodeToString(sum[:])
}

// verifyToken parses and checks a token in the order jwt-go's
// ParseWithClaims does with heketi's key function and claims validation,
// returning errors with the same texts.
func (s *Server) verifyToken(tok string, now int64) (*jwtClaims, error) {
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
	var key []byte
	switch claims.Issuer {
	case "":
		return nil, errors.New("Token missing iss claim")
	case "admin":
		key = []byte(s.opts.AdminKey)
	case "user":
		key = []byte(s.opts.UserKey)
	default:
		return nil, errors.New("Unknown user")
	}

	// heketi's HeketiJwtClaims.Valid: exp is required, iat has leeway,
	// nbf is optional. The last failing check's message wins, and a bad
	// signature overrides them all.
	var claimErr error
	if claims.ExpiresAt == 0 || now > claims.ExpiresAt {
		claimErr = fmt.Errorf("Token is expired by %v", time.Unix(now, 0).Sub(time.Unix(claims.ExpiresAt, 0)))
	}
	if now < claims.IssuedAt-iatLeeway {
		claimErr = errors.New("Token used before issued")
	}
	if claims.NotBefore != 0 && now < claims.NotBefore {
		claimErr = errors.New("token is not valid yet")
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, err
	}
	mac := hmac.New(newHash, key)
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
