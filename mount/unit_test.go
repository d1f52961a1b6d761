package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	mountutils "k8s.io/mount-utils"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"
)

func testSubvol(path string) *subvol.Subvol {
	return &subvol.Subvol{
		Name:    "pvc-1",
		Servers: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"},
		Volume:  "vol0",
		Path:    path,
	}
}

type testEnv struct {
	m     *Mounter
	fake  *mountutils.FakeMounter
	root  string // a directory for targets
	logs  *bytes.Buffer
	state string
}

// newTestMounter returns a Mounter on a FakeMounter (its table derived from
// the fake's List), probing off, with a text logger into a buffer.
func newTestMounter(t *testing.T, mode Mode, iface mountutils.Interface) *testEnv {
	t.Helper()
	fake := mountutils.NewFakeMounter(nil)
	if iface == nil {
		iface = fake
	}
	var buf bytes.Buffer
	dir := t.TempDir()
	m, err := New(&Options{
		Interface:    iface,
		Mode:         mode,
		StateDir:     filepath.Join(dir, "state"),
		LogDir:       filepath.Join(dir, "log"),
		ProbeTimeout: -1,
		Logger:       slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	_, isFake := m.iface.(fakeMounter)
	require.True(t, isFake, "wrapped fakes are recognised")
	root := filepath.Join(dir, "targets")
	require.NoError(t, os.MkdirAll(root, 0o755))
	root, _ = filepath.EvalSymlinks(root)
	return &testEnv{m: m, fake: fake, root: root, logs: &buf, state: m.stateDir}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func mounts(t *testing.T, f *mountutils.FakeMounter) []mountutils.MountPoint {
	t.Helper()
	mps, err := f.List()
	require.NoError(t, err)
	return slices.Clone(mps)
}

func countActions(f *mountutils.FakeMounter, action string) int {
	n := 0
	for _, a := range f.GetLog() {
		if a.Action == action {
			n++
		}
	}
	return n
}

func optValue(opts []string, key string) (string, bool) {
	for _, o := range opts {
		if k, v, _ := strings.Cut(o, "="); k == key {
			return v, true
		}
	}
	return "", false
}

func TestParseMountInfo(t *testing.T) {
	const fixture = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
54 27 0:40 / /run/svk/shared/vol0-ab rw,relatime shared:5 master:2 - fuse.glusterfs 10.0.0.1:/vol0 rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072
60 27 0:40 /a\040b /var/lib/k\134x/t\0401 ro,relatime - fuse.glusterfs 10.0.0.1:/vol0 rw,user_id=0
61 27 0:41 / /mnt/deep rw,relatime - fuse.glusterfs 10.0.0.2:/vol0/dir rw
`
	es, err := parseMountInfo([]byte(fixture))
	require.NoError(t, err)
	require.Len(t, es, 5)
	e := es[3]
	assert.Equal(t, 60, e.ID)
	assert.Equal(t, 27, e.Parent)
	assert.Equal(t, [2]int{0, 40}, e.dev())
	assert.Equal(t, "/a b", e.Root)
	assert.Equal(t, `/var/lib/k\x/t 1`, e.MountPoint)
	assert.Equal(t, glusterFSType, e.FSType)
	assert.Equal(t, "10.0.0.1:/vol0", e.Source)
	assert.True(t, e.readOnly())
	host, shows := e.shows()
	assert.Equal(t, "10.0.0.1", host)
	assert.Equal(t, "/vol0/a b", shows)
	_, shows = es[4].shows()
	assert.Equal(t, "/vol0/dir", shows)
	assert.False(t, es[2].readOnly())
	_, shows = es[1].shows()
	assert.Empty(t, shows, "not gluster")

	_, err = parseMountInfo([]byte("1 2 3\n"))
	assert.Error(t, err)
	_, err = parseMountInfo([]byte("x 1 0:1 / /a rw - ext4 /dev/x rw\n"))
	assert.Error(t, err)
	assert.Equal(t, `a\04`, unescapeOctal(`a\04`), "truncated escape kept")
	assert.Equal(t, "a\tb\nc", unescapeOctal(`a\011b\012c`))
}

func TestReadMountInfoFile(t *testing.T) {
	es, err := readMountInfoFile("/proc/self/mountinfo")
	require.NoError(t, err)
	_, ok := table(es).top("/")
	assert.True(t, ok, "/ is in the real mount table")
}

func TestSource(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", "h1:/vol0"},
		{"/", "h1:/vol0"},
		{"/a", "h1:/vol0/a"},
		{"/a/b/", "h1:/vol0/a/b"},
	} {
		assert.Equal(t, tc.want, Source(testSubvol(tc.path), "h1"), tc.path)
	}
}

func TestNewPlan(t *testing.T) {
	sv := testSubvol("/pvc-1")
	sv.MountOptions = map[string]string{
		"backup-volfile-servers": "127.0.0.3:127.0.0.4",
		"acl":                    "",
		"reader-thread-count":    "2",
	}
	p, err := newPlan(sv, &PublishOptions{
		MountOptions:     []string{"reader-thread-count=4", "ro", "log-level=debug", "rw"},
		SensitiveOptions: []string{"secret=abcd"},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, p.servers)
	assert.Equal(t, []string{"acl", "reader-thread-count=4"}, p.options, "sorted backend options, caller's value wins")
	assert.True(t, p.readOnly)
	assert.Equal(t, "DEBUG", p.logLevel)
	assert.Equal(t, "/vol0/pvc-1", p.want())
	assert.Equal(t, []string{"secret=abcd"}, p.sensitive)

	got := fuseOptions(p, []string{"127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.4"}, "/l/x.log", "DEBUG", true)
	assert.Equal(t, []string{
		"log-file=/l/x.log", "log-level=DEBUG",
		"backup-volfile-servers=127.0.0.1:127.0.0.3:127.0.0.4", "ro", "acl", "reader-thread-count=4",
	}, got)
	assert.Equal(t, []string{"log-file=/l/x.log", "log-level=INFO"}, fuseOptions(&plan{}, []string{"h"}, "/l/x.log", "INFO", false))

	p, err = newPlan(&subvol.Subvol{Volume: "vol_0a1b", Servers: []string{"h1"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "/vol_0a1b", p.want(), "whole volume")

	bad := []struct {
		name string
		sv   *subvol.Subvol
		opts *PublishOptions
	}{
		{"nil", nil, nil},
		{"no servers", &subvol.Subvol{Volume: "v"}, nil},
		{"volume with slash", &subvol.Subvol{Volume: "v/x", Servers: []string{"h"}}, nil},
		{"empty volume", &subvol.Subvol{Servers: []string{"h"}}, nil},
		{"relative path", &subvol.Subvol{Volume: "v", Path: "a", Servers: []string{"h"}}, nil},
		{"dotdot", &subvol.Subvol{Volume: "v", Path: "/a/../../etc", Servers: []string{"h"}}, nil},
		{"comma in path", &subvol.Subvol{Volume: "v", Path: "/a,b", Servers: []string{"h"}}, nil},
		{"server with colon", &subvol.Subvol{Volume: "v", Servers: []string{"h:1"}}, nil},
		{"comma option", testSubvol(""), &PublishOptions{MountOptions: []string{"a,b"}}},
		{"bind option", testSubvol(""), &PublishOptions{MountOptions: []string{"bind"}}},
		{"log level", testSubvol(""), &PublishOptions{MountOptions: []string{"log-level=LOUD"}}},
		{"relative log file", testSubvol(""), &PublishOptions{MountOptions: []string{"log-file=x.log"}}},
		{"sensitive comma", testSubvol(""), &PublishOptions{SensitiveOptions: []string{"k=a,b"}}},
	}
	for _, tc := range bad {
		_, err := newPlan(tc.sv, tc.opts)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%s: %v", tc.name, err)
	}
	_, err = newPlan(testSubvol(""), &PublishOptions{SensitiveOptions: []string{"k=a,verysecret"}})
	assert.NotContains(t, err.Error(), "verysecret")
}

func TestSharedKey(t *testing.T) {
	a, _ := newPlan(testSubvol("/a"), nil)
	b, _ := newPlan(testSubvol("/b"), &PublishOptions{ReadOnly: true, MountOptions: []string{"log-level=DEBUG"}})
	sv := testSubvol("/c")
	slices.Reverse(sv.Servers)
	c, _ := newPlan(sv, nil)
	d, _ := newPlan(testSubvol("/d"), &PublishOptions{MountOptions: []string{"acl"}})
	e, _ := newPlan(testSubvol("/e"), &PublishOptions{SensitiveOptions: []string{"k=v"}})
	sv = testSubvol("/f")
	sv.Volume = "vol1"
	f, _ := newPlan(sv, nil)
	assert.Equal(t, sharedKey(a), sharedKey(b), "directory, read-only and log level do not matter")
	assert.Equal(t, sharedKey(a), sharedKey(c), "server order does not matter")
	assert.NotEqual(t, sharedKey(a), sharedKey(d), "options matter")
	assert.NotEqual(t, sharedKey(a), sharedKey(e), "sensitive options matter")
	assert.NotEqual(t, sharedKey(a), sharedKey(f), "volume matters")
	assert.True(t, strings.HasPrefix(sharedKey(a), "vol0-"))
}

func TestMasker(t *testing.T) {
	m := newMasker([]string{"password=hunter22", "secretopt", "k=v"})
	err := fmt.Errorf("mount failed: exit status 1\nMounting arguments: -t glusterfs -o log-level=INFO,<masked>,<masked> h:/v /t\nOutput: Invalid option: secretopt\nbad value hunter22 for password=hunter22, k=v")
	got := m.maskErr(err).Error()
	assert.NotContains(t, got, "hunter22")
	assert.NotContains(t, got, "secretopt")
	assert.NotContains(t, got, "k=v")
	assert.Contains(t, got, "Invalid option: <masked>")
	assert.Contains(t, got, "bad value <masked> for <masked>")
	plain := errors.New("nothing secret")
	assert.Same(t, plain, m.maskErr(plain), "unchanged errors keep their identity")
	assert.Equal(t, "x", newMasker(nil).mask("x"))
}

const setvolumeLog = `[2026-11-23 16:20:00.100000 +0000] I [MSGID: 100030] [glusterfsd.c:2767:main] 0-/usr/sbin/glusterfs: Started running version [{arg=/usr/sbin/glusterfs}, {version=10.3}]
[2026-11-23 16:20:00.200000 +0000] E [MSGID: 114044] [client-handshake.c:1162:client_setvolume_cbk] 0-vol0-client-0: SETVOLUME on remote-host failed [{remote-error=subdirectory for mount "/nonexist" is not found}, {errno=2}, {error=No such file or directory}]
[2026-11-23 16:20:00.200100 +0000] E [fuse-bridge.c:6315:notify] 0-fuse: Server authentication failed. Shutting down.
`

func TestLogReason(t *testing.T) {
	r, k := logReason(setvolumeLog)
	assert.Equal(t, `subdirectory for mount "/nonexist" is not found`, r)
	assert.Equal(t, subvolkit.NotFound, k)

	r, k = logReason(`[2026-11-23 16:20:00.2 +0000] E [MSGID: 114044] [client-handshake.c:1162:client_setvolume_cbk] 0-vol0-client-0: SETVOLUME on remote-host failed [{remote-error=Authentication failed}, {errno=13}, {error=Permission denied}]`)
	assert.Equal(t, "Authentication failed", r)
	assert.Equal(t, subvolkit.PermissionDenied, k)

	r, k = logReason("[t] E [MSGID: 101075] [common-utils.c:520:gf_resolve_ip6] 0-resolver: error in getaddrinfo\n" +
		"[t] E [glusterfsd-mgmt.c:2705:mgmt_rpc_notify] 0-glusterfsd-mgmt: failed to connect to remote-host: h1 [Connection refused]\n" +
		"[t] W [x.c:1:f] 0-x: a warning\n")
	assert.Equal(t, "0-resolver: error in getaddrinfo; 0-glusterfsd-mgmt: failed to connect to remote-host: h1 [Connection refused]", r)
	assert.Equal(t, subvolkit.Unavailable, k)

	r, k = logReason("[t] I [x.c:1:f] 0-x: fine\n")
	assert.Empty(t, r)
	assert.Equal(t, subvolkit.Unknown, k)
}

func TestReadLogTail(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.log")
	require.NoError(t, os.WriteFile(f, []byte("old\nnew\n"), 0o644))
	assert.Equal(t, "new\n", readLogTail(f, 4))
	assert.Equal(t, "old\nnew\n", readLogTail(f, 100), "truncated file read whole")
	assert.Empty(t, readLogTail(filepath.Join(t.TempDir(), "missing"), 0))
}

// listen returns a TCP listener on ip and its port, with a port number free
// on 127.0.0.1 (nothing listens there) for the "closed" server.
func listen(t *testing.T, ip string) (net.Listener, int) {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ip+":0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		// Make sure 127.0.0.1:port is closed.
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			l.Close()
			continue
		}
		t.Cleanup(func() { l.Close() })
		return l, port
	}
	t.Fatal("no port free on 127.0.0.1 and 127.0.0.2 at once")
	return nil, 0
}

func TestProbe(t *testing.T) {
	_, port := listen(t, "127.0.0.2")
	ctx := context.Background()

	start := time.Now()
	r, err := probe(ctx, []string{"127.0.0.1", "127.0.0.2"}, port, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.2", "127.0.0.1"}, r.ordered, "the live server goes first")
	assert.Equal(t, 1, r.live)
	assert.Less(t, time.Since(start), time.Second, "a refused connection is known at once")

	r, err = probe(ctx, []string{"127.0.0.2", "127.0.0.1"}, port, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.2", "127.0.0.1"}, r.ordered)
	assert.GreaterOrEqual(t, r.live, 1)

	r, err = probe(ctx, []string{"127.0.0.3", "127.0.0.1"}, port, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.3", "127.0.0.1"}, r.ordered, "none live: the given order")
	assert.Equal(t, 0, r.live)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = probe(cctx, []string{"127.0.0.1", "127.0.0.2"}, port, 2*time.Second)
	assert.ErrorIs(t, err, context.Canceled)
}

// blackhole makes ip:port drop SYNs, like an unreachable server: a listener
// with a full accept queue.
func blackhole(t *testing.T, ip [4]byte, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: ip}))
	require.NoError(t, syscall.Listen(fd, 0))
	addr := fmt.Sprintf("%d.%d.%d.%d:%d", ip[0], ip[1], ip[2], ip[3], port)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
			return
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue never filled")
}

func TestProbeUnreachable(t *testing.T) {
	_, port := listen(t, "127.0.0.2")
	blackhole(t, [4]byte{127, 0, 0, 3}, port)
	start := time.Now()
	r, err := probe(context.Background(), []string{"127.0.0.3", "127.0.0.2"}, port, 5*time.Second)
	took := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.2", "127.0.0.3"}, r.ordered)
	assert.Equal(t, 1, r.live)
	assert.GreaterOrEqual(t, took, probeGrace, "waited for the preferred server a little")
	assert.Less(t, took, 2*time.Second, "but not for its timeout")

	start = time.Now()
	r, err = probe(context.Background(), []string{"127.0.0.3", "127.0.0.1"}, port, 500*time.Millisecond)
	took = time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, 0, r.live)
	assert.Equal(t, []string{"127.0.0.3", "127.0.0.1"}, r.ordered)
	assert.GreaterOrEqual(t, took, 500*time.Millisecond, "the timeout")
	assert.Less(t, took, 2*time.Second)
}

func TestProbeOrdersMountSource(t *testing.T) {
	_, port := listen(t, "127.0.0.2")
	env := newTestMounter(t, ModeDeep, nil)
	env.m.probeTimeout = time.Second
	env.m.probePort = port
	target := filepath.Join(env.root, "t")
	require.NoError(t, env.m.Publish(context.Background(), testSubvol("/a"), target, nil))
	mps := mounts(t, env.fake)
	require.Len(t, mps, 1)
	assert.Equal(t, "127.0.0.2:/vol0/a", mps[0].Device)
	v, _ := optValue(mps[0].Opts, optBackupServers)
	// The others follow, those not heard from yet before the refused.
	assert.Contains(t, []string{"127.0.0.1:127.0.0.3", "127.0.0.3:127.0.0.1"}, v)
}

func TestProbeNoneAnswersIsInError(t *testing.T) {
	_, port := listen(t, "127.0.0.2") // a port closed on 127.0.0.1 and .3
	lm := &lyingMounter{FakeMounter: mountutils.NewFakeMounter(nil), failure: "mount failed: exit status 1"}
	env := newTestMounter(t, ModeDeep, lm)
	env.m.probeTimeout = time.Second
	env.m.probePort = port
	sv := testSubvol("/a")
	sv.Servers = []string{"127.0.0.3", "127.0.0.1"}
	err := env.m.Publish(context.Background(), sv, filepath.Join(env.root, "t"), nil)
	require.Error(t, err)
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
	assert.ErrorContains(t, err, fmt.Sprintf("no volfile server answered on port %d", port))
	assert.ErrorContains(t, err, "tried 127.0.0.3, 127.0.0.1 in the given order")
	assert.ErrorContains(t, err, "mount 127.0.0.3:/vol0/a on ")
}

func TestNewOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []*Options{
		{Mode: Mode(7), StateDir: dir, LogDir: dir},
		{LogLevel: "LOUD", StateDir: dir, LogDir: dir},
		{StateDir: "relative", LogDir: dir},
		{ProbePort: 70000, StateDir: dir, LogDir: dir},
	} {
		_, err := New(o)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%+v", o)
	}
	m, err := New(&Options{StateDir: dir + "/s", LogDir: dir + "/l", LogLevel: "warning"})
	require.NoError(t, err)
	assert.Equal(t, "WARNING", m.logLevel)
	assert.Equal(t, DefaultProbeTimeout, m.probeTimeout)
	assert.Equal(t, DefaultProbePort, m.probePort)
	assert.DirExists(t, dir+"/s/shared")
	assert.DirExists(t, dir+"/l")
	assert.Equal(t, "deep", ModeDeep.String())
	assert.Equal(t, "shared", ModeShared.String())
}

func TestDeepPublishUnpublish(t *testing.T) {
	env := newTestMounter(t, ModeDeep, nil)
	ctx := context.Background()
	target := filepath.Join(env.root, "pod1", "mount")
	opts := &PublishOptions{MountOptions: []string{"acl"}}

	require.NoError(t, env.m.Publish(ctx, testSubvol("/pvc-1"), target, opts))
	assert.DirExists(t, target)
	mps := mounts(t, env.fake)
	require.Len(t, mps, 1)
	assert.Equal(t, "127.0.0.1:/vol0/pvc-1", mps[0].Device)
	assert.Equal(t, target, mps[0].Path)
	assert.Equal(t, "glusterfs", mps[0].Type)
	lf, _ := optValue(mps[0].Opts, optLogFile)
	assert.Equal(t, env.m.deepLog(target), lf)
	ll, _ := optValue(mps[0].Opts, optLogLevel)
	assert.Equal(t, "INFO", ll)
	bv, _ := optValue(mps[0].Opts, optBackupServers)
	assert.Equal(t, "127.0.0.2:127.0.0.3", bv)
	assert.Contains(t, mps[0].Opts, "acl")
	assert.NotContains(t, mps[0].Opts, "ro")

	// Same again: no-op.
	require.NoError(t, env.m.Publish(ctx, testSubvol("/pvc-1"), target, opts))
	assert.Equal(t, 1, countActions(env.fake, mountutils.FakeActionMount))

	// Same directory, different server of the same list: still the same.
	sv := testSubvol("/pvc-1")
	sv.Servers = []string{"127.0.0.3", "127.0.0.1"}
	require.NoError(t, env.m.Publish(ctx, sv, target, opts))

	// Different directory, different volume, other cluster, read-only: AlreadyExists.
	other := testSubvol("/pvc-2")
	err := env.m.Publish(ctx, other, target, nil)
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(err), "%v", err)
	assert.ErrorContains(t, err, "/vol0/pvc-1")
	t.Log(err)
	other = testSubvol("/pvc-1")
	other.Volume = "vol9"
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(env.m.Publish(ctx, other, target, nil)))
	other = testSubvol("/pvc-1")
	other.Servers = []string{"127.0.0.9"}
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(env.m.Publish(ctx, other, target, nil)))
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(env.m.Publish(ctx, testSubvol("/pvc-1"), target, &PublishOptions{ReadOnly: true})))
	assert.Equal(t, 1, countActions(env.fake, mountutils.FakeActionMount))

	// Unpublish, twice, and a target that never existed.
	require.NoError(t, os.WriteFile(env.m.deepLog(target), []byte("log"), 0o644))
	require.NoError(t, env.m.Unpublish(ctx, target))
	assert.Empty(t, mounts(t, env.fake))
	assert.NoDirExists(t, target)
	assert.NoFileExists(t, env.m.deepLog(target))
	require.NoError(t, env.m.Unpublish(ctx, target))
	require.NoError(t, env.m.Unpublish(ctx, filepath.Join(env.root, "nope", "x")))
	assert.Equal(t, 1, countActions(env.fake, mountutils.FakeActionUnmount))

	// Read-only and a whole volume.
	require.NoError(t, env.m.Publish(ctx, &subvol.Subvol{Volume: "vol_abc", Servers: []string{"127.0.0.5"}}, target, &PublishOptions{ReadOnly: true}))
	mps = mounts(t, env.fake)
	require.Len(t, mps, 1)
	assert.Equal(t, "127.0.0.5:/vol_abc", mps[0].Device)
	assert.Contains(t, mps[0].Opts, "ro")
	_, hasBackup := optValue(mps[0].Opts, optBackupServers)
	assert.False(t, hasBackup, "one server: no backup-volfile-servers")
	require.NoError(t, env.m.Publish(ctx, &subvol.Subvol{Volume: "vol_abc", Servers: []string{"127.0.0.5"}}, target, &PublishOptions{ReadOnly: true}))
	assert.Equal(t, 2, countActions(env.fake, mountutils.FakeActionMount))
}

func TestBadInput(t *testing.T) {
	env := newTestMounter(t, ModeDeep, nil)
	ctx := context.Background()
	for _, target := range []string{"", "rel/dir", "/", filepath.Join(env.state, "shared", "x")} {
		err := env.m.Publish(ctx, testSubvol("/a"), target, nil)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%q: %v", target, err)
		err = env.m.Unpublish(ctx, target)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%q: %v", target, err)
	}
	err := env.m.Publish(ctx, testSubvol("/a/../b"), filepath.Join(env.root, "t"), nil)
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))
	assert.Empty(t, env.fake.GetLog(), "bad input mounts nothing")
	assert.NoDirExists(t, filepath.Join(env.root, "t"))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = env.m.Publish(cctx, testSubvol("/a"), filepath.Join(env.root, "t"), nil)
	assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err), "%v", err)
	assert.Empty(t, env.fake.GetLog())
}

// symlinkTarget: the mount table shows canonical paths.
func TestSymlinkedTarget(t *testing.T) {
	env := newTestMounter(t, ModeDeep, nil)
	ctx := context.Background()
	real := filepath.Join(env.root, "real")
	require.NoError(t, os.MkdirAll(real, 0o755))
	link := filepath.Join(env.root, "link")
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), filepath.Join(link, "t"), nil))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), filepath.Join(real, "t"), nil), "same target")
	assert.Equal(t, 1, countActions(env.fake, mountutils.FakeActionMount))
	require.NoError(t, env.m.Unpublish(ctx, filepath.Join(link, "t")))
	assert.Empty(t, mounts(t, env.fake))
}

// lyingMounter is a mount.Interface whose glusterfs mounts "succeed" but
// leave nothing mounted, writing a client log the way glusterfs does when
// the directory is missing; or fail with output that echoes options.
type lyingMounter struct {
	*mountutils.FakeMounter
	log     string
	failure string // if set, MountSensitive fails with this text
}

func (l *lyingMounter) MountSensitive(source, target, fstype string, options, sensitive []string) error {
	if fstype != "glusterfs" {
		return l.FakeMounter.MountSensitive(source, target, fstype, options, sensitive)
	}
	if lf, ok := optValue(options, optLogFile); ok {
		f, err := os.OpenFile(lf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.WriteString(l.log)
		f.Close()
	}
	if l.failure != "" {
		return errors.New(l.failure)
	}
	return nil
}

func TestVerifyMissingDirectory(t *testing.T) {
	for _, mode := range []Mode{ModeDeep, ModeShared} {
		t.Run(mode.String(), func(t *testing.T) {
			lm := &lyingMounter{FakeMounter: mountutils.NewFakeMounter(nil), log: setvolumeLog}
			env := newTestMounter(t, mode, lm)
			target := filepath.Join(env.root, "t")
			// An older failure in the log must not be quoted again.
			logFile := env.m.deepLog(target)
			if mode == ModeShared {
				p, _ := newPlan(testSubvol("/nonexist"), nil)
				logFile = env.m.sharedLog(sharedKey(p))
			}
			require.NoError(t, os.WriteFile(logFile, []byte(strings.ReplaceAll(setvolumeLog, "nonexist", "older")), 0o644))

			err := env.m.Publish(context.Background(), testSubvol("/nonexist"), target, nil)
			require.Error(t, err)
			t.Log(err)
			assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
			assert.ErrorContains(t, err, `subdirectory for mount "/nonexist" is not found`)
			assert.NotContains(t, err.Error(), "older")
			assert.ErrorContains(t, err, logFile)
			assert.Empty(t, mounts(t, lm.FakeMounter), "nothing left mounted")
			ents, _ := os.ReadDir(filepath.Join(env.state, "shared"))
			assert.Empty(t, ents, "no shared mount state left")
		})
	}
}

func TestSensitiveOptionsMasked(t *testing.T) {
	lm := &lyingMounter{
		FakeMounter: mountutils.NewFakeMounter(nil),
		failure:     "mount failed: exit status 1\nMounting arguments: -o <masked>\nOutput: Invalid option: topsecret-flag; password=s3cr3t-value",
	}
	env := newTestMounter(t, ModeDeep, lm)
	err := env.m.Publish(context.Background(), testSubvol("/a"), filepath.Join(env.root, "t"),
		&PublishOptions{SensitiveOptions: []string{"topsecret-flag", "password=s3cr3t-value"}})
	require.Error(t, err)
	for _, s := range []string{"topsecret-flag", "s3cr3t-value"} {
		assert.NotContains(t, err.Error(), s)
		assert.NotContains(t, env.logs.String(), s)
	}
	assert.ErrorContains(t, err, "Invalid option: <masked>")
	assert.Contains(t, env.logs.String(), "mount failed")

	// A successful mount passes them, and logs only their number.
	env = newTestMounter(t, ModeDeep, nil)
	require.NoError(t, env.m.Publish(context.Background(), testSubvol("/a"), filepath.Join(env.root, "t"),
		&PublishOptions{SensitiveOptions: []string{"password=s3cr3t-value"}}))
	mps := mounts(t, env.fake)
	require.Len(t, mps, 1)
	assert.Contains(t, mps[0].Opts, "password=s3cr3t-value")
	assert.NotContains(t, env.logs.String(), "s3cr3t")
	assert.Contains(t, env.logs.String(), "sensitive_options=1")
}

// prepShared creates the directories a fake shared mount of sv would show.
func prepShared(t *testing.T, env *testEnv, sv *subvol.Subvol, opts *PublishOptions, dirs ...string) string {
	t.Helper()
	p, err := newPlan(sv, opts)
	require.NoError(t, err)
	mp := filepath.Join(env.state, "shared", sharedKey(p))
	for _, d := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(mp, d), 0o755))
	}
	return mp
}

func TestSharedPublishUnpublish(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	ctx := context.Background()
	mp := prepShared(t, env, testSubvol(""), nil, "a", "b", "c")
	targets := []string{filepath.Join(env.root, "1"), filepath.Join(env.root, "2"), filepath.Join(env.root, "3"), filepath.Join(env.root, "4")}
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), targets[0], nil))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/b"), targets[1], &PublishOptions{ReadOnly: true}))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), targets[2], nil))
	require.NoError(t, env.m.Publish(ctx, &subvol.Subvol{Volume: "vol0", Servers: []string{"127.0.0.1"}}, targets[3], nil))

	mps := mounts(t, env.fake)
	require.Len(t, mps, 6, "4 binds and 2 FUSE mounts: one for the volume on 3 servers, one for it on 1 server")
	assert.Equal(t, "127.0.0.1:/vol0", mps[0].Device)
	assert.Equal(t, mp, mps[0].Path)
	assert.Equal(t, "glusterfs", mps[0].Type)
	assert.Equal(t, filepath.Join(mp, "a"), mps[1].Device)
	assert.Equal(t, []string{"bind", "ro"}, mps[2].Opts)
	assert.Equal(t, "glusterfs", mps[4].Type)

	sms, err := env.m.SharedMounts()
	require.NoError(t, err)
	require.Len(t, sms, 2, "the one-server subvolume has its own shared mount")
	var sm SharedMount
	for _, s := range sms {
		if s.Path == mp {
			sm = s
		}
	}
	assert.Equal(t, "vol0", sm.Volume)
	assert.Equal(t, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, sm.Servers)
	assert.Equal(t, "127.0.0.1:/vol0", sm.Source)
	assert.Equal(t, []Bind{
		{Target: targets[0], Path: "/a"},
		{Target: targets[1], Path: "/b", ReadOnly: true},
		{Target: targets[2], Path: "/a"},
	}, sm.Binds)

	// Idempotency and conflicts.
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), targets[0], nil))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/b"), targets[1], &PublishOptions{ReadOnly: true}))
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(env.m.Publish(ctx, testSubvol("/b"), targets[0], nil)))
	assert.Equal(t, subvolkit.AlreadyExists, subvolkit.KindOf(env.m.Publish(ctx, testSubvol("/b"), targets[1], nil)))
	assert.Len(t, mounts(t, env.fake), 6)

	// Missing directory: NotFound, nothing left.
	err = env.m.Publish(ctx, testSubvol("/missing"), filepath.Join(env.root, "5"), nil)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
	assert.ErrorContains(t, err, `"/missing"`)
	assert.ErrorContains(t, err, "not found")
	assert.Len(t, mounts(t, env.fake), 6)

	// A symlink on the volume is refused.
	require.NoError(t, os.Symlink("/etc", filepath.Join(mp, "evil")))
	err = env.m.Publish(ctx, testSubvol("/evil"), filepath.Join(env.root, "6"), nil)
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	assert.Len(t, mounts(t, env.fake), 6)

	// Unpublish: the shared mount goes with its last bind.
	for _, tg := range targets[:2] {
		require.NoError(t, env.m.Unpublish(ctx, tg))
	}
	sms, _ = env.m.SharedMounts()
	assert.Len(t, sms, 2)
	require.NoError(t, env.m.Unpublish(ctx, targets[2]))
	require.NoError(t, env.m.Unpublish(ctx, targets[3]))
	assert.Empty(t, mounts(t, env.fake))
	sms, _ = env.m.SharedMounts()
	assert.Empty(t, sms)
	ents, _ := os.ReadDir(filepath.Join(env.state, "shared"))
	for _, e := range ents {
		// The fake leaves the directories the test made in the mount point.
		assert.Equal(t, mp, filepath.Join(env.state, "shared", e.Name()), "no state files or other mount points left")
	}
	ents, _ = os.ReadDir(filepath.Join(env.state, "locks"))
	assert.Empty(t, ents, "no lock files left")
	require.NoError(t, env.m.Unpublish(ctx, targets[0]))
}

func TestSharedMissingDirOnFreshMountReleasesIt(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	err := env.m.Publish(context.Background(), testSubvol("/nope"), filepath.Join(env.root, "t"), nil)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
	assert.Empty(t, mounts(t, env.fake))
	assert.Equal(t, 1, countActions(env.fake, mountutils.FakeActionUnmount), "the fresh shared mount is removed")
}

// fixtureTable is a mount table written as mountinfo text.
func fixtureTable(t *testing.T, text string) func() (table, error) {
	es, err := parseMountInfo([]byte(text))
	require.NoError(t, err)
	return func() (table, error) { return es, nil }
}

func TestRefcountFromMountinfo(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	sh := env.state + "/shared/vol0-0123456789abcdef"
	require.NoError(t, os.MkdirAll(sh, 0o700))
	require.NoError(t, os.WriteFile(sh+".json", []byte(`{"volume":"vol0","servers":["h1","h2"]}`), 0o600))
	env.m.mountTable = fixtureTable(t, fmt.Sprintf(`27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
54 27 0:40 / %[1]s rw,relatime - fuse.glusterfs h1:/vol0 rw
60 27 0:40 /a /var/lib/kubelet/pods/p1/vol rw,relatime - fuse.glusterfs h1:/vol0 rw
61 27 0:40 /b\040c /var/lib/kubelet/pods/p\0402/vol ro,relatime - fuse.glusterfs h1:/vol0 rw
62 27 0:41 / /mnt/deep rw,relatime - fuse.glusterfs h1:/vol0/a rw
63 27 0:42 / %[2]s/other rw,relatime - fuse.glusterfs h1:/vol1 rw
`, sh, env.root))
	sms, err := env.m.SharedMounts()
	require.NoError(t, err)
	require.Len(t, sms, 1)
	assert.Equal(t, SharedMount{
		Path: sh, Volume: "vol0", Servers: []string{"h1", "h2"}, Source: "h1:/vol0",
		Binds: []Bind{
			{Target: "/var/lib/kubelet/pods/p1/vol", Path: "/a"},
			{Target: "/var/lib/kubelet/pods/p 2/vol", Path: "/b c", ReadOnly: true},
		},
	}, sms[0])

	// Releasing with binds in the table unmounts nothing.
	require.NoError(t, env.m.releaseShared(context.Background(), filepath.Base(sh)))
	assert.Empty(t, env.fake.GetLog())
	assert.FileExists(t, sh+".json")

	// Heal of a healthy shared mount with binds does nothing either.
	healed, err := env.m.Heal(context.Background())
	require.NoError(t, err)
	assert.Empty(t, healed)
	assert.Empty(t, env.fake.GetLog())
}

// staleCheck makes the health check fail with ENOTCONN for the given paths.
type staleCheck struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (s *staleCheck) set(paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = map[string]bool{}
	for _, p := range paths {
		s.paths[p] = true
	}
}

func (s *staleCheck) check(p string) error {
	s.mu.Lock()
	dead := s.paths[p]
	s.mu.Unlock()
	if dead {
		return &os.PathError{Op: "statfs", Path: p, Err: syscall.ENOTCONN}
	}
	return statfsPath(p)
}

func TestSharedStaleHealsOnPublishAndHeal(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	ctx := context.Background()
	mp := prepShared(t, env, testSubvol(""), nil, "a", "b")
	sc := &staleCheck{}
	env.m.checkPath = sc.check
	t1, t2, t3 := filepath.Join(env.root, "1"), filepath.Join(env.root, "2"), filepath.Join(env.root, "3")
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), t1, nil))
	require.NoError(t, env.m.Publish(ctx, testSubvol("/b"), t2, &PublishOptions{ReadOnly: true}))

	// The client dies: the shared mount and its binds answer ENOTCONN,
	// until the dead mount is detached.
	sc.set(mp, t1, t2)
	env.fake.ResetLog()
	var once sync.Once
	env.m.detach = func(p string) error {
		once.Do(func() { sc.set() })
		return env.fake.Unmount(p)
	}
	// Publishing the same target again restores everything.
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), t1, nil))
	log := env.fake.GetLog()
	var actions []string
	for _, a := range log {
		actions = append(actions, a.Action+" "+a.Target)
	}
	assert.Equal(t, []string{
		"unmount " + mp, "mount " + mp,
		"unmount " + t1, "mount " + t1,
		"unmount " + t2, "mount " + t2,
	}, actions)
	sms, err := env.m.SharedMounts()
	require.NoError(t, err)
	require.Len(t, sms, 1)
	assert.Equal(t, []Bind{{Target: t1, Path: "/a"}, {Target: t2, Path: "/b", ReadOnly: true}}, sms[0].Binds)

	// Heal, from another Mounter (process) with the same state directory.
	other, err := New(&Options{Interface: env.fake, Mode: ModeDeep, StateDir: env.state, LogDir: t.TempDir(), ProbeTimeout: -1})
	require.NoError(t, err)
	other.checkPath = sc.check
	sc.set(mp, t1, t2)
	env.fake.ResetLog()
	once = sync.Once{}
	other.detach = func(p string) error {
		once.Do(func() { sc.set() })
		return env.fake.Unmount(p)
	}
	healed, err := other.Heal(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{t1, t2}, healed)
	assert.Equal(t, 3, countActions(env.fake, mountutils.FakeActionMount))

	// A new target on a dead shared mount heals it first.
	sc.set(mp, t1, t2)
	once = sync.Once{}
	env.m.detach = other.detach
	require.NoError(t, env.m.Publish(ctx, testSubvol("/b"), t3, nil))
	sms, _ = env.m.SharedMounts()
	require.Len(t, sms, 1)
	assert.Len(t, sms[0].Binds, 3)

	// Heal removes a shared mount with no binds.
	for _, tg := range []string{t1, t2, t3} {
		require.NoError(t, env.fake.Unmount(tg))
	}
	healed, err = other.Heal(ctx)
	require.NoError(t, err)
	assert.Empty(t, healed)
	assert.Empty(t, mounts(t, env.fake))
}

func TestHealNeedsSecrets(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	ctx := context.Background()
	opts := &PublishOptions{SensitiveOptions: []string{"k=secretvalue"}}
	mp := prepShared(t, env, testSubvol(""), opts, "a")
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), filepath.Join(env.root, "1"), opts))
	st, err := os.ReadFile(mp + ".json")
	require.NoError(t, err)
	assert.NotContains(t, string(st), "secretvalue", "secrets never reach the disk")

	sc := &staleCheck{}
	sc.set(mp)
	other, err := New(&Options{Interface: env.fake, StateDir: env.state, LogDir: t.TempDir(), ProbeTimeout: -1})
	require.NoError(t, err)
	other.checkPath = sc.check
	_, err = other.Heal(ctx)
	assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
	assert.Len(t, mounts(t, env.fake), 2, "nothing touched")
}

func TestDeepStaleRemountedOnPublish(t *testing.T) {
	env := newTestMounter(t, ModeDeep, nil)
	ctx := context.Background()
	sc := &staleCheck{}
	env.m.checkPath = sc.check
	target := filepath.Join(env.root, "t")
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), target, nil))
	sc.set(target)
	env.m.detach = func(p string) error {
		sc.set()
		return env.fake.Unmount(p)
	}
	env.fake.ResetLog()
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), target, nil))
	assert.Equal(t, []mountutils.FakeAction{
		{Action: "unmount", Target: target},
		{Action: "mount", Target: target, Source: "127.0.0.1:/vol0/a", FSType: "glusterfs"},
	}, env.fake.GetLog())

	// A stale target is unpublished too (umount fails, lazy unmount works).
	sc.set(target)
	env.fake.UnmountFunc = func(string) error { return errors.New("umount: target is busy") }
	var detached []string
	env.m.detach = func(p string) error {
		sc.set()
		detached = append(detached, p)
		env.fake.UnmountFunc = nil
		return env.fake.Unmount(p)
	}
	require.NoError(t, env.m.Unpublish(ctx, target))
	assert.Equal(t, []string{target}, detached)
	assert.Empty(t, mounts(t, env.fake))

	// A healthy busy target is FailedPrecondition.
	require.NoError(t, env.m.Publish(ctx, testSubvol("/a"), target, nil))
	sc.set()
	env.fake.UnmountFunc = func(string) error { return errors.New("umount: target is busy") }
	err := env.m.Unpublish(ctx, target)
	assert.Equal(t, subvolkit.FailedPrecondition, subvolkit.KindOf(err), "%v", err)
}

func TestSharedConcurrent(t *testing.T) {
	env := newTestMounter(t, ModeShared, nil)
	ctx := context.Background()
	const n = 20
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = fmt.Sprintf("d%02d", i)
	}
	mp := prepShared(t, env, testSubvol(""), nil, dirs...)
	// Two Mounters on one state directory stand for two processes.
	other, err := New(&Options{Interface: env.fake, Mode: ModeShared, StateDir: env.state, LogDir: t.TempDir(), ProbeTimeout: -1})
	require.NoError(t, err)
	target := func(i int) string { return filepath.Join(env.root, dirs[i]) }
	var wg sync.WaitGroup
	errs := make(chan error, 6*n)
	for i := range n {
		wg.Go(func() {
			m := env.m
			if i%2 == 1 {
				m = other
			}
			for round := range 3 {
				errs <- m.Publish(ctx, testSubvol("/"+dirs[i]), target(i), nil)
				if i%3 == 0 || round < 2 {
					errs <- m.Unpublish(ctx, target(i))
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
	var got []string
	for _, b := range sms[0].Binds {
		got = append(got, b.Target)
	}
	var want []string
	for i := range n {
		if i%3 != 0 {
			want = append(want, target(i))
		}
	}
	slices.Sort(got)
	assert.Equal(t, want, got)
	fuse := 0
	for _, mp2 := range mounts(t, env.fake) {
		if mp2.Type == "glusterfs" {
			fuse++
			assert.Equal(t, mp, mp2.Path)
		}
	}
	assert.Equal(t, 1, fuse, "one shared FUSE mount")
	for i := range n {
		require.NoError(t, other.Unpublish(ctx, target(i)))
	}
	assert.Empty(t, mounts(t, env.fake))
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	st, err := Stats(context.Background(), dir)
	require.NoError(t, err)
	var sfs syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &sfs))
	assert.Equal(t, int64(sfs.Blocks)*sfs.Frsize, st.CapacityBytes)
	assert.Equal(t, int64(sfs.Files), st.Inodes)
	assert.Equal(t, st.Inodes-st.InodesFree, st.InodesUsed)
	assert.Positive(t, st.CapacityBytes)
	assert.LessOrEqual(t, st.AvailableBytes, st.CapacityBytes-st.UsedBytes)

	_, err = Stats(context.Background(), filepath.Join(dir, "missing"))
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err))
	_, err = Stats(context.Background(), "")
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err))

	got := statsFrom(&syscall.Statfs_t{Bsize: 4096, Frsize: 1024, Blocks: 100, Bfree: 40, Bavail: 30, Files: 10, Ffree: 4})
	assert.Equal(t, &VolumeStats{CapacityBytes: 102400, UsedBytes: 61440, AvailableBytes: 30720, Inodes: 10, InodesUsed: 6, InodesFree: 4}, got)
}

// A mount whose only server does not answer is Unavailable too (the probe
// runs after the failure when there was nothing to order before it).
func TestOnlyServerUnreachableIsUnavailable(t *testing.T) {
	_, port := listen(t, "127.0.0.2") // a port closed on 127.0.0.3
	lm := &lyingMounter{FakeMounter: mountutils.NewFakeMounter(nil), failure: "mount failed: exit status 1"}
	env := newTestMounter(t, ModeDeep, lm)
	env.m.probeTimeout = time.Second
	env.m.probePort = port
	sv := testSubvol("/a")
	sv.Servers = []string{"127.0.0.3"}
	err := env.m.Publish(context.Background(), sv, filepath.Join(env.root, "t"), nil)
	require.Error(t, err)
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
	assert.ErrorContains(t, err, fmt.Sprintf("no volfile server answered on port %d", port))
}
