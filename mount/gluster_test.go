package mount

// Tests on real FUSE mounts of real GlusterFS (glustertest).
// They fail, never skip, in CI when GlusterFS cannot start.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/subvol"
)

// realEnv is a Mounter on the real mount(8), with its state, logs and
// targets in one temporary directory that is cleaned up (everything under
// it unmounted) before the directory is removed and before the cluster
// stops.
type realEnv struct {
	m       *Mounter
	dir     string // canonical
	targets string
	logDir  string
	state   string
}

func newRealEnv(t testing.TB, mode Mode, opts *Options) *realEnv {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	env := &realEnv{dir: dir, targets: filepath.Join(dir, "t"), logDir: filepath.Join(dir, "log"), state: filepath.Join(dir, "state")}
	// Registered after TempDir, so it runs before the directory is removed
	// (a RemoveAll through a live FUSE mount would delete volume data).
	t.Cleanup(func() { unmountUnder(t, dir) })
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Mode, o.StateDir, o.LogDir = mode, env.state, env.logDir
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	env.m, err = New(&o)
	require.NoError(t, err)
	return env
}

func (e *realEnv) target(name string) string { return filepath.Join(e.targets, name) }

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// unmountUnder lazily unmounts every mount below dir, newest first.
func unmountUnder(t testing.TB, dir string) {
	es, err := readMountInfoFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("reading mountinfo: %v", err)
		return
	}
	for i := len(es) - 1; i >= 0; i-- {
		if mp := es[i].MountPoint; strings.HasPrefix(mp, dir+"/") {
			t.Errorf("left mounted after the test: %s (%s); unmounting", mp, es[i].Source)
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("umount -l %s: %v", mp, err)
			}
		}
	}
}

func clusterSubvol(c *glustertest.Cluster, path string) *subvol.Subvol {
	return &subvol.Subvol{Name: "sv" + strings.ReplaceAll(path, "/", "-"), Servers: c.Servers(), Volume: c.Volume(), Path: path}
}

// mkdirs creates directories on the volume through a mount of its root.
func mkdirs(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o777))
	}
}

// fuseClients returns the PIDs of glusterfs FUSE clients of volume on server
// whose log file is under logDir (so only the Mounter's own, not the
// harness's root mount).
func fuseClients(volume, server, logDir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := cmdline(pid)
		if len(args) == 0 || filepath.Base(args[0]) != "glusterfs" {
			continue
		}
		var vol, srv, log bool
		for _, a := range args {
			vol = vol || a == "--volfile-id=/"+volume
			srv = srv || a == "--volfile-server="+server
			log = log || strings.HasPrefix(a, "--log-file="+logDir+"/")
		}
		if vol && srv && log {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// fusePID returns the glusterfs client serving mount point mp (its command
// line ends with mp), or 0.
func fusePID(mp string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if isFUSEClientOf(pid, mp) {
			return pid
		}
	}
	return 0
}

func isFUSEClientOf(pid int, mp string) bool {
	args := cmdline(pid)
	return len(args) > 1 && filepath.Base(args[0]) == "glusterfs" &&
		slices.Contains(args, "--process-name") && args[len(args)-1] == mp
}

// killFUSE SIGKILLs the client of mp, checking its command line right before.
func killFUSE(t testing.TB, mp string) {
	t.Helper()
	pid := fusePID(mp)
	require.NotZero(t, pid, "no glusterfs client for %s", mp)
	require.True(t, isFUSEClientOf(pid, mp))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, 10*time.Second, "client of "+mp+" gone", func() bool { return !isFUSEClientOf(pid, mp) })
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireDead checks that err is what I/O on a mount with a dead client gives.
func requireDead(t testing.TB, err error) {
	t.Helper()
	require.True(t, errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED),
		"want ENOTCONN or ECONNABORTED, got %v", err)
}

func mounted(t testing.TB, mp string) (mountEntry, bool) {
	t.Helper()
	es, err := readMountInfoFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return table(es).top(mp)
}

// writeRead writes a file through dir and reads it back through other (the
// same directory seen through another mount), or dir itself.
func writeRead(t testing.TB, dir, other, name string) {
	t.Helper()
	data := bytes.Repeat([]byte(name), 64<<10/len(name)+1)[:64<<10]
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	if other == "" {
		other = dir
	}
	got, err := os.ReadFile(filepath.Join(other, name))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "content of %s differs", name)
}

// waitUsable waits, at most 30 s, until a file can be written and removed
// in dir: a FUSE client whose brick came back reconnects by itself, a few
// seconds later.
func waitUsable(t testing.TB, dir string) {
	t.Helper()
	p := filepath.Join(dir, ".probe")
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = os.WriteFile(p, []byte("x"), 0o644); err == nil {
			require.NoError(t, os.Remove(p))
			return
		}
	}
	t.Fatalf("%s not usable 30 s after its server came back: %v", dir, err)
}

func TestGlusterDeep(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	mkdirs(t, root, "a", "ro")
	env := newRealEnv(t, ModeDeep, nil)

	tg := env.target("a")
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/a"), tg, nil))
	e, ok := mounted(t, tg)
	require.True(t, ok)
	assert.Equal(t, glusterFSType, e.FSType)
	assert.Equal(t, c.Servers()[0]+":/"+c.Volume()+"/a", e.Source)
	assert.Equal(t, "/", e.Root, "a subdir mount shows its directory as the root")
	writeRead(t, tg, filepath.Join(root, "a"), "f1")
	clients := fuseClients(c.Volume(), c.Servers()[0], env.logDir)
	require.Len(t, clients, 1)
	args := strings.Join(cmdline(clients[0]), " ")
	assert.Contains(t, args, "--subdir-mount=/a")
	assert.Contains(t, args, "--log-file="+env.m.deepLog(tg))
	assert.FileExists(t, env.m.deepLog(tg))

	// Again: a no-op, no second client.
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/a"), tg, nil))
	assert.Len(t, fuseClients(c.Volume(), c.Servers()[0], env.logDir), 1)
	err := env.m.Publish(ctx, clusterSubvol(c, "/ro"), tg, nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)

	// Read-only.
	rt := env.target("ro")
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/ro"), rt, &PublishOptions{ReadOnly: true}))
	err = os.WriteFile(filepath.Join(rt, "x"), []byte("x"), 0o644)
	assert.ErrorIs(t, err, syscall.EROFS)
	writeRead(t, filepath.Join(root, "ro"), rt, "from-root")
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/ro"), rt, &PublishOptions{ReadOnly: true}), "read-only again: no-op")
	err = env.m.Publish(ctx, clusterSubvol(c, "/ro"), rt, nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "read-write over read-only: %v", err)
	assert.Len(t, fuseClients(c.Volume(), c.Servers()[0], env.logDir), 2)

	// Unpublish: gone from the table, client gone, idempotent.
	for _, tg := range []string{tg, rt} {
		require.NoError(t, env.m.Unpublish(ctx, tg))
		_, ok = mounted(t, tg)
		assert.False(t, ok)
		assert.NoDirExists(t, tg)
		require.NoError(t, env.m.Unpublish(ctx, tg))
	}
	waitFor(t, 10*time.Second, "no FUSE clients", func() bool {
		return len(fuseClients(c.Volume(), c.Servers()[0], env.logDir)) == 0
	})
	require.NoError(t, env.m.Unpublish(ctx, env.target("never")))
}

func TestGlusterMissingDirectory(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	for _, mode := range []Mode{ModeDeep, ModeShared} {
		t.Run(mode.String(), func(t *testing.T) {
			env := newRealEnv(t, mode, nil)
			tg := env.target("x")
			err := env.m.Publish(ctx, clusterSubvol(c, "/nonexist"), tg, nil)
			require.Error(t, err)
			t.Log(err)
			assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err))
			assert.ErrorContains(t, err, "not found")
			assert.ErrorContains(t, err, "/nonexist")
			_, ok := mounted(t, tg)
			assert.False(t, ok, "nothing mounted")
			sms, err := env.m.SharedMounts()
			require.NoError(t, err)
			assert.Empty(t, sms, "no shared mount left")
			waitFor(t, 10*time.Second, "no FUSE clients left", func() bool {
				return len(fuseClients(c.Volume(), c.Servers()[0], env.logDir)) == 0
			})
		})
	}
}

func TestGlusterAuthRefused(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Quota: glustertest.Bool(false)})
	ctx := t.Context()
	_, err := c.Gluster(ctx, "volume", "set", c.Volume(), "auth.allow", "192.0.2.1")
	require.NoError(t, err)
	env := newRealEnv(t, ModeDeep, nil)
	tg := env.target("x")
	err = env.m.Publish(ctx, clusterSubvol(c, ""), tg, nil)
	require.Error(t, err)
	t.Log(err)
	assert.Equal(t, subvolkit.PermissionDenied, subvolkit.KindOf(err))
	assert.ErrorContains(t, err, "Authentication failed")
	_, ok := mounted(t, tg)
	assert.False(t, ok)
}

func TestGlusterShared(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	const n = 20
	for i := range n {
		mkdirs(t, root, fmt.Sprintf("s%02d", i))
	}
	env := newRealEnv(t, ModeShared, nil)
	for i := range n {
		sv := clusterSubvol(c, fmt.Sprintf("/s%02d", i))
		require.NoError(t, env.m.Publish(ctx, sv, env.target(strconv.Itoa(i)), &PublishOptions{ReadOnly: i == n-1}))
	}
	assert.Len(t, fuseClients(c.Volume(), c.Servers()[0], env.logDir), 1, "one FUSE client for 20 targets")
	for i := range n - 1 {
		writeRead(t, env.target(strconv.Itoa(i)), filepath.Join(root, fmt.Sprintf("s%02d", i)), "f")
	}
	err := os.WriteFile(filepath.Join(env.target(strconv.Itoa(n-1)), "x"), nil, 0o644)
	assert.ErrorIs(t, err, syscall.EROFS, "read-only bind")

	sms, err := env.m.SharedMounts()
	require.NoError(t, err)
	require.Len(t, sms, 1)
	assert.Len(t, sms[0].Binds, n)
	assert.Equal(t, c.Volume(), sms[0].Volume)
	assert.Equal(t, c.Servers()[0]+":/"+c.Volume(), sms[0].Source)
	for _, b := range sms[0].Binds {
		i, _ := strconv.Atoi(filepath.Base(b.Target))
		assert.Equal(t, fmt.Sprintf("/s%02d", i), b.Path)
		assert.Equal(t, i == n-1, b.ReadOnly)
	}

	// Idempotent, and a conflict.
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/s00"), env.target("0"), nil))
	err = env.m.Publish(ctx, clusterSubvol(c, "/s01"), env.target("0"), nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)
	err = env.m.Publish(ctx, clusterSubvol(c, "/nope"), env.target("nope"), nil)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)

	for i := range n {
		require.NoError(t, env.m.Unpublish(ctx, env.target(strconv.Itoa(i))))
		sms, err := env.m.SharedMounts()
		require.NoError(t, err)
		if i < n-1 {
			require.Len(t, sms, 1)
			assert.Len(t, sms[0].Binds, n-1-i)
		} else {
			assert.Empty(t, sms, "the last unpublish removes the shared mount")
		}
	}
	waitFor(t, 10*time.Second, "the shared FUSE client to exit", func() bool {
		return len(fuseClients(c.Volume(), c.Servers()[0], env.logDir)) == 0
	})
	ents, err := os.ReadDir(filepath.Join(env.state, "shared"))
	require.NoError(t, err)
	assert.Empty(t, ents)
}

func TestGlusterSharedConcurrent(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	const n = 20
	for i := range n {
		mkdirs(t, root, fmt.Sprintf("c%02d", i))
	}
	env := newRealEnv(t, ModeShared, nil)
	// A second Mounter on the same state directory stands for a second
	// process (FlexVolume calls); the flock serialises them.
	other, err := New(&Options{Mode: ModeShared, StateDir: env.state, LogDir: env.logDir})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 10*n)
	for i := range n {
		wg.Go(func() {
			m := env.m
			if i%2 == 1 {
				m = other
			}
			sv := clusterSubvol(c, fmt.Sprintf("/c%02d", i))
			tg := env.target(strconv.Itoa(i))
			for round := range 3 {
				errs <- m.Publish(ctx, sv, tg, nil)
				if round < 2 || i%4 == 0 {
					errs <- m.Unpublish(ctx, tg)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	sms, err := env.m.SharedMounts()
	require.NoError(t, err)
	require.Len(t, sms, 1)
	var got, want []string
	for _, b := range sms[0].Binds {
		got = append(got, b.Target)
	}
	for i := range n {
		if i%4 != 0 {
			want = append(want, env.target(strconv.Itoa(i)))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	assert.Equal(t, want, got)
	assert.Len(t, fuseClients(c.Volume(), c.Servers()[0], env.logDir), 1)
	for i := range n {
		tg := env.target(strconv.Itoa(i))
		if i%4 != 0 {
			writeRead(t, tg, filepath.Join(root, fmt.Sprintf("c%02d", i)), "f")
		} else {
			_, ok := mounted(t, tg)
			assert.False(t, ok)
		}
	}

	// Concurrent unpublish of everything, from both "processes".
	wg = sync.WaitGroup{}
	errs = make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := env.m
			if i%2 == 1 {
				m = other
			}
			errs <- m.Unpublish(ctx, env.target(strconv.Itoa(i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	sms, err = env.m.SharedMounts()
	require.NoError(t, err)
	assert.Empty(t, sms)
	waitFor(t, 10*time.Second, "the shared FUSE client to exit", func() bool {
		return len(fuseClients(c.Volume(), c.Servers()[0], env.logDir)) == 0
	})
}

func TestGlusterHeal(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	mkdirs(t, root, "h1", "h2", "d1")

	t.Run("shared", func(t *testing.T) {
		env := newRealEnv(t, ModeShared, nil)
		t1, t2 := env.target("1"), env.target("2")
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/h1"), t1, nil))
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/h2"), t2, &PublishOptions{ReadOnly: true}))
		writeRead(t, t1, "", "before")
		sms, err := env.m.SharedMounts()
		require.NoError(t, err)
		require.Len(t, sms, 1)
		shared := sms[0].Path

		// Kill the client: every bind is dead.
		killFUSE(t, shared)
		_, err = os.ReadFile(filepath.Join(t1, "before"))
		requireDead(t, err)
		_, err = Stats(ctx, t1)
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)

		// Publish of an existing target restores the shared mount and
		// both binds.
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/h1"), t1, nil))
		writeRead(t, t1, filepath.Join(root, "h1"), "after-publish")
		writeRead(t, filepath.Join(root, "h2"), t2, "h2-after-publish")
		assert.ErrorIs(t, os.WriteFile(filepath.Join(t2, "x"), nil, 0o644), syscall.EROFS, "still read-only")
		assert.Len(t, fuseClients(c.Volume(), c.Servers()[0], env.logDir), 1)

		// Heal, from another "process".
		killFUSE(t, shared)
		other, err := New(&Options{StateDir: env.state, LogDir: env.logDir})
		require.NoError(t, err)
		healed, err := other.Heal(ctx)
		require.NoError(t, err)
		slices.Sort(healed)
		assert.Equal(t, []string{t1, t2}, healed)
		writeRead(t, t1, filepath.Join(root, "h1"), "after-heal")
		writeRead(t, filepath.Join(root, "h2"), t2, "h2-after-heal")
		healed, err = other.Heal(ctx)
		require.NoError(t, err)
		assert.Empty(t, healed, "nothing left to heal")

		for _, tg := range []string{t1, t2} {
			require.NoError(t, env.m.Unpublish(ctx, tg))
		}
		sms, err = env.m.SharedMounts()
		require.NoError(t, err)
		assert.Empty(t, sms)
	})

	t.Run("deep", func(t *testing.T) {
		env := newRealEnv(t, ModeDeep, nil)
		tg := env.target("d")
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/d1"), tg, nil))
		writeRead(t, tg, "", "before")
		killFUSE(t, tg)
		_, err := os.ReadFile(filepath.Join(tg, "before"))
		requireDead(t, err)
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/d1"), tg, nil))
		writeRead(t, tg, filepath.Join(root, "d1"), "after")
		es, err := readMountInfoFile("/proc/self/mountinfo")
		require.NoError(t, err)
		assert.Len(t, table(es).at(tg), 1, "the dead mount is gone, not stacked")

		// A dead deep mount can also just be unpublished.
		killFUSE(t, tg)
		require.NoError(t, env.m.Unpublish(ctx, tg))
		_, ok := mounted(t, tg)
		assert.False(t, ok)
	})
}

func TestGlusterFailover(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 3, Quota: glustertest.Bool(false)})
	ctx := t.Context()
	root := c.MountT(t, "")
	mkdirs(t, root, "f")
	servers := c.Servers()

	check := func(t *testing.T, mode Mode) {
		env := newRealEnv(t, mode, nil)
		tg := env.target("f")
		start := time.Now()
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/f"), tg, nil))
		took := time.Since(start)
		t.Logf("%s publish with node 1 down took %v", mode, took)
		assert.Less(t, took, 20*time.Second)
		e, ok := mounted(t, tg)
		require.True(t, ok)
		host, _ := e.shows()
		assert.NotEqual(t, servers[0], host, "a live server went first")
		writeRead(t, tg, "", "failover-"+mode.String())
		require.NoError(t, env.m.Unpublish(ctx, tg))
	}

	t.Run("killed", func(t *testing.T) {
		require.NoError(t, c.KillNode(1))
		t.Cleanup(func() { require.NoError(t, c.StartNode(context.WithoutCancel(ctx), 1)) })
		check(t, ModeDeep)
	})
	t.Run("unreachable", func(t *testing.T) {
		require.NoError(t, c.LinkDown(1))
		t.Cleanup(func() { require.NoError(t, c.LinkUp(1)) })
		check(t, ModeDeep)
		check(t, ModeShared)
	})
	t.Run("none answers", func(t *testing.T) {
		// Probe a port nobody listens on: every probe is refused, so the
		// servers are tried in the given order and the mount still works.
		env := newRealEnv(t, ModeDeep, &Options{ProbePort: 1})
		tg := env.target("f")
		require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/f"), tg, nil))
		e, ok := mounted(t, tg)
		require.True(t, ok)
		host, _ := e.shows()
		assert.Equal(t, servers[0], host)
		require.NoError(t, env.m.Unpublish(ctx, tg))
	})
}

func TestGlusterStats(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	mkdirs(t, root, "q")
	_, err := c.Gluster(ctx, "volume", "quota", c.Volume(), "limit-usage", "/q", "10MB")
	require.NoError(t, err)
	env := newRealEnv(t, ModeDeep, nil)
	tg := env.target("q")
	require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/q"), tg, nil))
	require.NoError(t, os.WriteFile(filepath.Join(tg, "two-mib"), make([]byte, 2<<20), 0o644))
	const limit = 10 << 20
	var st *VolumeStats
	waitFor(t, 15*time.Second, "statfs to report the quota", func() bool {
		st, err = Stats(ctx, tg)
		require.NoError(t, err)
		return st.CapacityBytes == limit && st.UsedBytes >= 2<<20
	})
	t.Logf("stats: %+v", *st)
	assert.InDelta(t, 2<<20, st.UsedBytes, 256<<10)
	assert.Equal(t, st.CapacityBytes-st.UsedBytes, st.AvailableBytes)
	assert.Positive(t, st.Inodes)
	require.NoError(t, env.m.Unpublish(ctx, tg))
}

// A shared mount whose restore fails once (its only server is down) keeps
// its targets: a later Heal, or a Publish of one of them, restores every
// bind once the server is back.
func TestGlusterRestoreAfterFailedHeal(t *testing.T) {
	c := glustertest.StartT(t, nil)
	ctx := t.Context()
	root := c.MountT(t, "")
	mkdirs(t, root, "r1", "r2")
	for _, via := range []string{"heal", "publish"} {
		t.Run(via, func(t *testing.T) {
			env := newRealEnv(t, ModeShared, nil)
			t1, t2 := env.target("1"), env.target("2")
			require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/r1"), t1, nil))
			require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/r2"), t2, &PublishOptions{ReadOnly: true}))
			sms, err := env.m.SharedMounts()
			require.NoError(t, err)
			require.Len(t, sms, 1)
			killFUSE(t, sms[0].Path)
			require.NoError(t, c.KillNode(1))
			restarted := false
			defer func() {
				if !restarted {
					assert.NoError(t, c.StartNode(context.Background(), 1))
				}
			}()
			hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			_, err = env.m.Heal(hctx)
			cancel()
			require.Error(t, err, "the server is down: the restore fails")
			_, err = os.ReadFile(filepath.Join(t1, "x"))
			require.Error(t, err)

			require.NoError(t, c.StartNode(ctx, 1))
			restarted = true
			switch via {
			case "heal":
				healed, err := env.m.Heal(ctx)
				require.NoError(t, err)
				slices.Sort(healed)
				assert.Equal(t, []string{t1, t2}, healed)
			case "publish":
				require.NoError(t, env.m.Publish(ctx, clusterSubvol(c, "/r1"), t1, nil))
			}
			// The harness's own FUSE client of root reconnects to the
			// restarted brick on its own schedule (every few seconds).
			waitUsable(t, filepath.Join(root, "r1"))
			waitUsable(t, filepath.Join(root, "r2"))
			writeRead(t, t1, filepath.Join(root, "r1"), "after-"+via)
			writeRead(t, filepath.Join(root, "r2"), t2, "r2-after-"+via)
			assert.ErrorIs(t, os.WriteFile(filepath.Join(t2, "y"), nil, 0o644), syscall.EROFS, "still read-only")
			for _, tg := range []string{t1, t2} {
				require.NoError(t, env.m.Unpublish(ctx, tg))
			}
			sms, err = env.m.SharedMounts()
			require.NoError(t, err)
			assert.Empty(t, sms)
		})
	}
}
