package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
)

// gated is the memory backend whose Create of names starting with "slow"
// waits for the gate to open (or for its context to end), so that tests
// can hold operations in flight.
type gated struct {
	*memory.Backend
	gate    chan struct{}
	entered chan string
}

func (g *gated) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	if strings.HasPrefix(req.Name, "slow") {
		g.entered <- req.Name
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, subvolkit.E(subvolkit.Canceled, "create", req.Name, ctx.Err())
		}
	}
	return g.Backend.Create(ctx, req)
}

func waitEntered(t *testing.T, g *gated, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("a gated create never reached the backend")
		}
	}
}

// TestInFlightLimit holds operations in flight and checks heketi's 429,
// the pending answers of the queue, and that a finished operation is
// reported once.
func TestInFlightLimit(t *testing.T) {
	mem, dir := newMemory(t)
	g := &gated{Backend: mem, gate: make(chan struct{}), entered: make(chan string, 16)}
	pool := openPool(t, g)
	cfg := baseConfig()
	cfg.MaxInFlight = 2
	srv, hs := serve(t, pool, cfg)
	e := &env{t: t, mem: mem, dir: dir, pool: pool, srv: srv, hs: hs}
	url := hs.URL

	fast, err := e.admin().VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "fast"})
	require.NoError(t, err)
	before := e.disk(t)

	var locs []string
	for _, name := range []string{"slow1", "slow2"} {
		r := raw(t, url, "POST", "/volumes", `{"size": 1, "name": "`+name+`"}`, "admin")
		require.Equal(t, http.StatusAccepted, r.status, r.body)
		require.True(t, strings.HasPrefix(r.header.Get("Location"), "/queue/"), r.header.Get("Location"))
		locs = append(locs, r.header.Get("Location"))
	}
	waitEntered(t, g, 2)
	for _, loc := range locs {
		r := raw(t, url, "GET", loc, "", "admin")
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "true", r.header.Get("X-Pending"))
	}

	busy := []struct{ method, path, body string }{
		{"POST", "/volumes", `{"size": 1, "name": "third"}`},
		{"POST", "/volumes/" + fast.Id + "/expand", `{"expand_size": 1}`},
		{"POST", "/volumes/" + fast.Id + "/clone", `{"name": "copy"}`},
		{"DELETE", "/volumes/" + fast.Id, ``},
	}
	for _, b := range busy {
		r := raw(t, url, b.method, b.path, b.body, "admin")
		assert.Equal(t, http.StatusTooManyRequests, r.status, "%s %s: %s", b.method, b.path, r.body)
		assert.Equal(t, "Server busy. Retry operation later.", r.body)
	}
	// The same name as a running create: refused, not queued.
	r := raw(t, url, "POST", "/volumes", `{"size": 1, "name": "slow1"}`, "admin")
	assert.Equal(t, http.StatusInternalServerError, r.status)
	assert.Contains(t, r.body, "Volume name 'slow1' already in use")
	assert.Equal(t, before, e.disk(t), "refused and pending requests changed the volume")

	close(g.gate)
	for _, loc := range locs {
		done := pollQueue(t, url, loc)
		require.Equal(t, http.StatusSeeOther, done.status, done.body)
		vloc := done.header.Get("Location")
		require.True(t, strings.HasPrefix(vloc, "/volumes/"), vloc)
		vr := raw(t, url, "GET", vloc, "", "admin")
		require.Equal(t, http.StatusOK, vr.status, vr.body)
		v := decode[api.VolumeInfoResponse](t, vr.body)
		assert.True(t, strings.HasPrefix(v.Name, testVolume+"/slow"), v.Name)
		_, err := os.Stat(filepath.Join(e.dir, strings.TrimPrefix(v.Name, testVolume+"/")))
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, raw(t, url, "GET", loc, "", "admin").status, "reported twice")
	}
	// Room again.
	_, err = e.admin().VolumeExpand(fast.Id, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err)
}

// TestShutdown checks that Shutdown lets no new operation start, cancels
// the running ones when its context ends, and that a cancelled create
// leaves nothing on the volume.
func TestShutdown(t *testing.T) {
	mem, dir := newMemory(t)
	g := &gated{Backend: mem, gate: make(chan struct{}), entered: make(chan string, 16)}
	pool := openPool(t, g)
	srv, hs := serve(t, pool, baseConfig())
	e := &env{t: t, mem: mem, dir: dir, pool: pool, srv: srv, hs: hs}
	before := e.disk(t)

	r := raw(t, hs.URL, "POST", "/volumes", `{"size": 1, "name": "slow_never"}`, "admin")
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	waitEntered(t, g, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := srv.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(t0), 10*time.Second, "Shutdown must return once the cancelled operation did")

	done := raw(t, hs.URL, "GET", r.header.Get("Location"), "", "admin")
	assert.Equal(t, http.StatusInternalServerError, done.status)
	assert.Contains(t, done.body, "canceled")
	after := raw(t, hs.URL, "POST", "/volumes", `{"size": 1}`, "admin")
	assert.Equal(t, http.StatusServiceUnavailable, after.status, after.body)
	assert.Equal(t, before, e.disk(t), "a cancelled create left something")
}
