package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	jwt "github.com/form3tech-oss/jwt-go"
	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/subvol"
)

const (
	adminKey = "adm1n-secret"
	userKey  = "us3r-secret"
)

// env is one real single-node GlusterFS with a cli backend, a Pool and a
// heketi server on it, served by httptest on the loopback.
type env struct {
	t    *testing.T
	c    *glustertest.Cluster
	pool *subvol.Pool
	srv  *server.Server
	hs   *httptest.Server
	root string // the volume's only brick, to look behind the server and every client cache
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func startCluster(t *testing.T) *glustertest.Cluster {
	t.Helper()
	return glustertest.StartT(t, &glustertest.Options{Nodes: 1})
}

// openPool opens a cli backend (its own mount) on c; wrap, if not nil,
// wraps the backend.
func openPool(t *testing.T, c *glustertest.Cluster, wrap func(*cli.Backend) backend.Backend) *subvol.Pool {
	t.Helper()
	b, err := cli.Open(ctxT(t), &cli.Options{
		Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
		MountDir: filepath.Join(t.TempDir(), "mnt"), StrictQuota: true,
	})
	require.NoError(t, err)
	var bb backend.Backend = b
	if wrap != nil {
		bb = wrap(b)
	}
	pool := subvol.NewPool(bb, nil)
	t.Cleanup(func() { assert.NoError(t, pool.Close()) })
	return pool
}

func baseConfig(c *glustertest.Cluster) server.Config {
	return server.Config{Volume: c.Volume(), Servers: c.Servers(), AdminKey: adminKey, UserKey: userKey}
}

// serve starts a heketi server over pool on an httptest server.
func serve(t *testing.T, c *glustertest.Cluster, pool *subvol.Pool, cfg server.Config) (*server.Server, *httptest.Server) {
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

func newEnv(t *testing.T, mod func(*server.Config)) *env {
	t.Helper()
	c := startCluster(t)
	e := &env{t: t, c: c, pool: openPool(t, c, nil)}
	cfg := baseConfig(c)
	if mod != nil {
		mod(&cfg)
	}
	e.srv, e.hs = serve(t, c, e.pool, cfg)
	e.root = c.BrickPath(1)
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

// disk describes what is on the volume (read on its brick, below every
// client's cache): every top-level entry with its mode, owner and owner
// marker, and every quota limit. Two equal descriptions mean nothing
// changed.
func (e *env) disk(t *testing.T) string {
	t.Helper()
	ents, err := os.ReadDir(e.root)
	require.NoError(t, err)
	var lines []string
	for _, d := range ents {
		if d.Name() == ".glusterfs" {
			continue // the brick's own metadata
		}
		p := filepath.Join(e.root, d.Name())
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(p, &st))
		m := make([]byte, 4096)
		n, err := syscall.Getxattr(p, "trusted.subvolkit.v1", m)
		marker := ""
		if err == nil {
			marker = string(m[:n])
		}
		lines = append(lines, fmt.Sprintf("%s %o %d:%d %s", d.Name(), st.Mode, st.Uid, st.Gid, marker))
	}
	for path, hard := range e.limits(t) {
		lines = append(lines, "limit "+path+" "+hard)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// limits returns path -> hard limit from `gluster volume quota VOL list`.
func (e *env) limits(t *testing.T) map[string]string {
	t.Helper()
	m, err := e.c.QuotaLimits(ctxT(t))
	require.NoError(t, err)
	return m
}

var mounts atomic.Int64

// mountGluster mounts source ("host:/vol/dir" or "host:vol/dir") with
// mount.glusterfs, checks the mount table (mount.glusterfs answers 0 even
// when nothing got mounted) and unmounts in t.Cleanup.
func mountGluster(t *testing.T, c *glustertest.Cluster, source string, opts ...string) string {
	t.Helper()
	i := mounts.Add(1)
	mp := filepath.Join(c.BaseDir(), fmt.Sprintf("hs-mnt-%d", i))
	require.NoError(t, os.MkdirAll(mp, 0o755))
	opts = append([]string{"log-file=" + filepath.Join(c.BaseDir(), fmt.Sprintf("hs-mnt-%d.log", i))}, opts...)
	ctx, cancel := context.WithTimeout(ctxT(t), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mount", "-t", "glusterfs", "-o", strings.Join(opts, ","), source, mp).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() {
		if err := syscall.Unmount(mp, 0); err != nil {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	require.Contains(t, string(mi), " "+mp+" ", "mount.glusterfs %s reported success but nothing is mounted", source)
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mp, &st))
	return mp
}

// dfSize is the size statfs reports (the quota limit on a deep mount).
func dfSize(t *testing.T, mp string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(mp, &st))
	return int64(st.Blocks) * int64(st.Bsize)
}

// fill fills path up to limit-prealloc... then writes until a write (or
// fsync) fails or max bytes are in the file. The first limit-64 MiB are
// allocated with fallocate (which the quota translator accounts like
// writes, and which takes milliseconds instead of the ~15 s that 1 GiB of
// quota-checked FUSE writes take); the rest are real writes, synced one by
// one, so the failure shows where it happens.
func fill(path string, limit, max int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := limit - 64<<20
	if n > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
			return 0, fmt.Errorf("fallocate: %w", err)
		}
		if _, err := f.Seek(n, io.SeekStart); err != nil {
			return 0, err
		}
	} else {
		n = 0
	}
	buf := bytes.Repeat([]byte("heketi-server subvolume "), 1<<20/24+1)[:1<<20]
	for n < max {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
	return n, f.Close()
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
