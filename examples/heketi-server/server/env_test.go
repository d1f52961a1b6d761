package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	jwt "github.com/form3tech-oss/jwt-go"
	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
	"github.com/subvolkit/subvolkit/subvol"
)

const (
	adminKey = "adm1n-secret"
	userKey  = "us3r-secret"
)

// The backing volume the memory-backed tests describe: replica 3 over
// three servers.
const testVolume = "gv0"

var testServers = []string{"gfs1", "gfs2", "gfs3"}

func testLayout() *cli.VolumeInfo {
	v := &cli.VolumeInfo{Name: testVolume, Status: "Started", Type: "Replicate", ReplicaCount: 3}
	for _, h := range testServers {
		v.Bricks = append(v.Bricks, cli.Brick{Host: h, Path: "/bricks/" + testVolume})
	}
	return v
}

// env is a heketi server over a Pool on the memory backend (each subvolume
// a real directory in dir), served by httptest on the loopback.
type env struct {
	t    *testing.T
	mem  *memory.Backend
	dir  string
	pool *subvol.Pool
	srv  *server.Server
	hs   *httptest.Server
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newMemory returns a memory backend of 1 TiB whose subvolumes are
// directories of dir, closed in t.Cleanup.
func newMemory(t *testing.T) (*memory.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	mem := memory.New(&memory.Options{Servers: testServers, Volume: testVolume, Dir: dir, MaxSizeBytes: 1 << 40})
	t.Cleanup(func() { assert.NoError(t, mem.Close()) })
	return mem, dir
}

// shared is a backend whose Close does nothing, so that several Pools (as
// several servers would) share one memory backend.
type shared struct{ *memory.Backend }

func (shared) Close() error { return nil }

// openPool returns a Pool over b, closed in t.Cleanup.
func openPool(t *testing.T, b backend.Backend) *subvol.Pool {
	t.Helper()
	pool := subvol.NewPool(b, nil)
	t.Cleanup(func() { assert.NoError(t, pool.Close()) })
	return pool
}

func baseConfig() server.Config {
	return server.Config{Volume: testVolume, Servers: testServers, AdminKey: adminKey, UserKey: userKey, VolumeInfo: testLayout(), MaxVolumeBytes: 1 << 40}
}

// serve starts a heketi server over pool on an httptest server.
func serve(t *testing.T, pool *subvol.Pool, cfg server.Config) (*server.Server, *httptest.Server) {
	t.Helper()
	srv, err := server.New(ctxT(t), cfg, pool)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
	})
	return srv, hs
}

// newEnv serves a server over a new memory backend; mod, if not nil,
// changes the base Config.
func newEnv(t *testing.T, mod func(*server.Config)) *env {
	t.Helper()
	e := &env{t: t}
	e.mem, e.dir = newMemory(t)
	e.pool = openPool(t, shared{e.mem})
	cfg := baseConfig()
	if mod != nil {
		mod(&cfg)
	}
	e.srv, e.hs = serve(t, e.pool, cfg)
	return e
}

// client returns the real heketi Go client, polling every 50 ms.
func newClient(url, user, key string) *client.Client {
	o := client.DefaultClientOptions()
	o.PollDelay = 50
	return client.NewClientWithOptions(url, user, key, o)
}

func (e *env) admin() *client.Client { return newClient(e.hs.URL, "admin", adminKey) }

// token mints a heketi JWT with the heketi client's own JWT library.
func token(t *testing.T, key, iss, method, path string, mod func(jwt.MapClaims)) string {
	t.Helper()
	claims := jwt.MapClaims{
		"iss": iss, "iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
		"qsh": qsh(method, path),
	}
	if mod != nil {
		mod(claims)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	require.NoError(t, err)
	return s
}

func qsh(method, path string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(method+"&"+path)))
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	body   string
	header http.Header
}

// raw sends one request without following redirects. auth "" sends no
// Authorization header; "admin" signs a correct admin token; anything else
// is sent as the header's value.
func raw(t *testing.T, url, method, path, body, auth string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url+path, strings.NewReader(body))
	require.NoError(t, err)
	switch auth {
	case "":
	case "admin":
		req.Header.Set("Authorization", "bearer "+token(t, adminKey, "admin", method, req.URL.Path, nil))
	default:
		req.Header.Set("Authorization", auth)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, body: strings.TrimSpace(string(b)), header: resp.Header}
}

// pollQueue polls a /queue location (bounded) until it is no longer pending.
func pollQueue(t *testing.T, url, loc string) reply {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := raw(t, url, "GET", loc, "", "admin")
		if r.header.Get("X-Pending") != "true" {
			return r
		}
		require.Equal(t, http.StatusOK, r.status)
		require.True(t, time.Now().Before(deadline), "operation %s still pending", loc)
		time.Sleep(20 * time.Millisecond)
	}
}

// disk describes what the backend holds, below the server: every
// subvolume with its size, owner and labels, and its directory with its
// mode and owner. Two equal descriptions mean nothing changed.
func (e *env) disk(t *testing.T) string {
	t.Helper()
	return describe(t, e.mem, e.dir)
}

func describe(t *testing.T, mem *memory.Backend, dir string) string {
	t.Helper()
	page, err := mem.List(ctxT(t), &backend.ListOptions{MaxResults: 10000})
	require.NoError(t, err)
	var lines []string
	for _, sv := range page.Subvols {
		lines = append(lines, fmt.Sprintf("subvol %s %d %d:%d %o %v", sv.Name, sv.SizeBytes, sv.UID, sv.GID, sv.Mode, sv.Labels))
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(filepath.Join(dir, sv.Name), &st))
		lines = append(lines, fmt.Sprintf("dir %s %o %d:%d", sv.Name, st.Mode, st.Uid, st.Gid))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// poll waits (bounded) until cond holds.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	return v
}
