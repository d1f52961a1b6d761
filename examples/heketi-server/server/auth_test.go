package server_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	jwt "github.com/form3tech-oss/jwt-go"
	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
)

// TestAuth checks heketi's JWT rules (heketi.Verifier) on the server: tokens minted with
// the heketi client's own JWT library, and the heketi client itself with
// good and bad keys. A refused request changes nothing on the volume.
func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	v, err := e.admin().VolumeCreate(&api.VolumeCreateRequest{Size: 1})
	require.NoError(t, err)
	url := e.hs.URL
	vpath := "/volumes/" + v.Id
	before := e.disk(t)

	bearer := func(tok string) string { return "bearer " + tok }
	adminTok := func(method, path string, mod func(jwt.MapClaims)) string {
		return bearer(token(t, adminKey, "admin", method, path, mod))
	}
	hs512 := func(method, path string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
			"iss": "admin", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "qsh": qsh(method, path),
		}).SignedString([]byte(adminKey))
		require.NoError(t, err)
		return bearer(s)
	}
	// An unsigned token ("alg": "none") with otherwise perfect claims.
	unsigned := func(method, path string) string {
		seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		return bearer(seg(`{"alg":"none","typ":"JWT"}`) + "." +
			seg(`{"iss":"admin","exp":`+strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)+`,"qsh":"`+qsh(method, path)+`"}`) + ".")
	}

	cases := []struct {
		name, method, path, auth string
		status                   int
		msg                      string
	}{
		{"no token", "GET", "/volumes", "", 401, "Required authorization token not found"},
		{"no token on delete", "DELETE", vpath, "", 401, "Required authorization token not found"},
		{"not bearer", "GET", "/volumes", "Basic YWRtaW46YWRtaW4=", 400, "Authorization header format must be Bearer {token}"},
		{"garbage", "GET", "/volumes", "bearer not.a.token", 401, "Invalid JWT token"},
		{"wrong secret", "DELETE", vpath, bearer(token(t, "guess", "admin", "DELETE", vpath, nil)), 401, "(client and server secrets may not match)"},
		{"user key as admin", "DELETE", vpath, bearer(token(t, userKey, "admin", "DELETE", vpath, nil)), 401, "secrets may not match"},
		{"unknown issuer", "GET", "/volumes", bearer(token(t, adminKey, "root", "GET", "/volumes", nil)), 401, "Unknown user"},
		{"no issuer", "GET", "/volumes", bearer(token(t, adminKey, "", "GET", "/volumes", nil)), 401, "Token missing iss claim"},
		{"expired", "DELETE", vpath, adminTok("DELETE", vpath, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), 401, "Token is expired"},
		{"no exp", "DELETE", vpath, adminTok("DELETE", vpath, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "Token is expired"},
		{"issued in the future", "DELETE", vpath, adminTok("DELETE", vpath, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(10 * time.Minute).Unix() }), 401, "(client and server clocks may differ)"},
		{"not valid yet", "DELETE", vpath, adminTok("DELETE", vpath, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() }), 401, "not valid yet"},
		{"token for another request", "DELETE", vpath, adminTok("GET", vpath, nil), 401, "Invalid qsh claim in token"},
		{"no qsh", "DELETE", vpath, adminTok("DELETE", vpath, func(c jwt.MapClaims) { delete(c, "qsh") }), 401, "Invalid qsh claim in token"},
		{"alg none", "DELETE", vpath, unsigned("DELETE", vpath), 401, "Unexpected signing method"},
		{"user outside /volumes", "DELETE", vpath, bearer(token(t, userKey, "user", "DELETE", vpath, nil)), 401, "Administrator access required"},
		{"user polling the queue", "GET", "/queue/" + v.Id, bearer(token(t, userKey, "user", "GET", "/queue/"+v.Id, nil)), 401, "Administrator access required"},
		{"user listing", "GET", "/volumes", bearer(token(t, userKey, "user", "GET", "/volumes", nil)), 200, v.Id},
		{"admin HS512", "GET", vpath, hs512("GET", vpath), 200, v.Id},
		{"hello needs no token", "GET", "/hello", "", 200, "Hello from Heketi"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := raw(t, url, c.method, c.path, "", c.auth)
			assert.Equal(t, c.status, r.status, r.body)
			assert.Contains(t, r.body, c.msg)
			assert.Equal(t, before, e.disk(t), "the volume changed")
		})
	}

	// The heketi client with the wrong key gets heketi's messages, and
	// nothing it asks for happens.
	wrong := newClient(url, "admin", "not-the-key")
	_, err = wrong.VolumeList()
	require.ErrorContains(t, err, "Invalid JWT token")
	_, err = wrong.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "intruder"})
	require.ErrorContains(t, err, "secrets may not match")
	require.ErrorContains(t, wrong.VolumeDelete(v.Id), "secrets may not match")
	_, err = wrong.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 5})
	require.ErrorContains(t, err, "secrets may not match")
	_, err = client.NewClientNoAuth(url).VolumeCreate(&api.VolumeCreateRequest{Size: 1})
	require.ErrorContains(t, err, "Token missing iss claim")
	assert.Equal(t, before, e.disk(t))
	require.NoError(t, wrong.Hello())

	// The user key may use /volumes only, as in heketi (so not even the
	// queue: only listing is of use to a heketi client).
	user := newClient(url, "user", userKey)
	list, err := user.VolumeList()
	require.NoError(t, err)
	assert.Equal(t, []string{v.Id}, list.Volumes)
	_, err = user.ClusterList()
	require.ErrorContains(t, err, "Administrator access required")

	// A server without a user key refuses user tokens, even "signed" with
	// an empty key.
	cfg := baseConfig()
	cfg.UserKey = ""
	_, hs := serve(t, e.pool, cfg)
	r := raw(t, hs.URL, "GET", "/volumes", "", bearer(token(t, "", "user", "GET", "/volumes", nil)))
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.body, "Unknown user")
}

// TestAuthDisabled checks that authentication is off only when asked for.
func TestAuthDisabled(t *testing.T) {
	mem, _ := newMemory(t)
	pool := openPool(t, shared{mem})

	cfg := baseConfig()
	cfg.AdminKey, cfg.UserKey = "", ""
	_, err := server.New(ctxT(t), cfg, pool)
	require.ErrorContains(t, err, "admin key is required")

	cfg.DisableAuth = true
	_, hs := serve(t, pool, cfg)
	hc := client.NewClientNoAuth(hs.URL)
	v, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "open"})
	require.NoError(t, err)
	assert.Equal(t, testVolume+"/open", v.Name)
	r := raw(t, hs.URL, "GET", "/volumes/"+v.Id, "", "")
	assert.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, hc.VolumeDelete(v.Id))
}
