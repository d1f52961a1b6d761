package heketi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/heketi"
	"github.com/subvolkit/subvolkit/heketitest"
	"github.com/subvolkit/subvolkit/internal/testutil/heketifake"
)

// TestFakeAnswersAsRealHeketi sends the same raw requests to the test fake
// and to the real heketi, and checks that the fake answers each with the
// real server's status and message: the fake must not teach the backend a
// heketi that does not exist.
func TestFakeAnswersAsRealHeketi(t *testing.T) {
	real := heketitest.StartT(t, nil)
	fakeSrv := heketifake.New(&heketifake.Options{
		AdminKey: real.AdminKey(), UserKey: real.UserKey(),
		Clusters: []heketifake.Cluster{{Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, CapacityGiB: 3 * realDeviceGiB}},
	})
	t.Cleanup(fakeSrv.Close)

	type server struct {
		name string
		url  string
		hc   *http.Client
	}
	noRedirect := func(c *http.Client) *http.Client {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	servers := []server{
		{"heketi", real.URL(), noRedirect(real.HTTPClient())},
		{"fake", fakeSrv.URL(), noRedirect(&http.Client{Timeout: time.Minute})},
	}
	doH := func(t *testing.T, s server, method, path, body, auth string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, strings.NewReader(body))
		require.NoError(t, err)
		switch auth {
		case "admin":
			req.Header.Set("Authorization", "bearer "+heketi.Token("admin", real.AdminKey(), method, path, time.Now()))
		case "user":
			req.Header.Set("Authorization", "bearer "+heketi.Token("user", real.UserKey(), method, path, time.Now()))
		case "wrong":
			req.Header.Set("Authorization", "bearer "+heketi.Token("admin", "wrong", method, path, time.Now()))
		}
		resp, err := s.hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("Location")
	}
	do := func(t *testing.T, s server, method, path, body, auth string) (int, string) {
		t.Helper()
		code, b, _ := doH(t, s, method, path, body, auth)
		return code, b
	}
	// A volume on each side, to expand.
	vol := map[string]string{}
	for _, s := range servers {
		code, _, loc := doH(t, s, "POST", "/volumes", `{"size":1,"durability":{"type":"replicate","replicate":{"replica":3}}}`, "admin")
		require.Equal(t, http.StatusAccepted, code, s.name)
		deadline := time.Now().Add(time.Minute)
		for {
			code, body, next := doH(t, s, "GET", loc, "", "admin")
			if code == http.StatusSeeOther {
				vol[s.name] = strings.TrimPrefix(next, "/volumes/")
				break
			}
			require.Equal(t, http.StatusOK, code, "%s: %s", s.name, body)
			require.True(t, time.Now().Before(deadline), "%s: create still pending", s.name)
			time.Sleep(20 * time.Millisecond)
		}
	}
	const unknown = "0123456789abcdef0123456789abcdef"
	cases := []struct{ name, method, path, body, auth string }{
		{"hello", "GET", "/hello", "", ""},
		{"no token", "GET", "/volumes", "", ""},
		{"wrong key", "GET", "/volumes", "", "wrong"},
		{"user on /clusters", "GET", "/clusters", "", "user"},
		{"create: not JSON", "POST", "/volumes", `{"size": 1`, "admin"},
		{"create: size 0", "POST", "/volumes", `{"size": 0}`, "admin"},
		{"create: no space", "POST", "/volumes", `{"size":100000,"durability":{"type":"replicate","replicate":{"replica":3}}}`, "admin"},
		{"info: unknown id", "GET", "/volumes/" + unknown, "", "admin"},
		{"delete: unknown id", "DELETE", "/volumes/" + unknown, "", "admin"},
		{"expand: unknown id", "POST", "/volumes/" + unknown + "/expand", `{"expand_size":1}`, "admin"},
		{"expand: size 0", "POST", "/volumes/{VOL}/expand", `{"expand_size":0}`, "admin"},
		{"expand: no space", "POST", "/volumes/{VOL}/expand", `{"expand_size":100000}`, "admin"},
		{"queue: unknown id", "GET", "/queue/" + unknown, "", "admin"},
		{"cluster: unknown id", "GET", "/clusters/" + unknown, "", "admin"},
		{"node: unknown id", "GET", "/nodes/" + unknown, "", "admin"},
		{"unknown path", "GET", "/nope/" + unknown, "", "admin"},
		{"unknown path, no token", "GET", "/nope", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [2]struct {
				code int
				body string
			}
			for i, s := range servers {
				path := strings.ReplaceAll(c.path, "{VOL}", vol[s.name])
				got[i].code, got[i].body = do(t, s, c.method, path, c.body, c.auth)
			}
			t.Logf("heketi: %d %q", got[0].code, got[0].body)
			assert.Equal(t, got[0].code, got[1].code, "status; fake said %q", got[1].body)
			assert.Equal(t, got[0].body, got[1].body, "message")
		})
	}
}
