package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	mountutils "k8s.io/mount-utils"
)

// fakeNode is a FakeMounter whose glusterfs mounts show a volume's
// directories: mounting "host:/vol" creates dirs[vol] in the mount point, and
// unmounting it removes them again (as the real mount point goes back to an
// empty directory).
type fakeNode struct {
	*mountutils.FakeMounter
	dirs map[string][]string // volume → directories on it

	mu    sync.Mutex
	fuses map[string]bool // mount points of glusterfs mounts
}

func newFakeNode(dirs map[string][]string) *fakeNode {
	f := &fakeNode{FakeMounter: mountutils.NewFakeMounter(nil), dirs: dirs, fuses: map[string]bool{}}
	f.UnmountFunc = func(p string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fuses[p] {
			delete(f.fuses, p)
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return f
}

func (f *fakeNode) MountSensitive(source, target, fstype string, options, sensitive []string) error {
	if fstype == "glusterfs" {
		_, vol, _ := strings.Cut(source, ":/")
		for _, d := range f.dirs[vol] {
			if err := os.MkdirAll(filepath.Join(target, d), 0o755); err != nil {
				return err
			}
		}
		f.mu.Lock()
		f.fuses[target] = true
		f.mu.Unlock()
	}
	return f.FakeMounter.MountSensitive(source, target, fstype, options, sensitive)
}

func (f *fakeNode) Mount(source, target, fstype string, options []string) error {
	return f.MountSensitive(source, target, fstype, options, nil)
}

// count returns the number of glusterfs mounts and of bind mounts.
func (f *fakeNode) count(t *testing.T) (fuse, binds int) {
	t.Helper()
	mps, err := f.List()
	require.NoError(t, err)
	for _, mp := range mps {
		if mp.Type == "glusterfs" {
			fuse++
		} else {
			binds++
		}
	}
	return fuse, binds
}

type env struct {
	d     *Driver
	node  *fakeNode
	root  string
	log   *bytes.Buffer
	state string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	dir, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	node := newFakeNode(map[string][]string{"testvol": {"00/01", "00/02"}})
	var buf bytes.Buffer
	cfg := &Config{
		Name: DefaultDriver, StateDir: filepath.Join(dir, "state"), GlusterLogDir: filepath.Join(dir, "glog"),
		Timeout: time.Minute, ProbeTimeout: -1,
	}
	lg := NewLog(&buf, time.Unix(1505999412, 727592392))
	return &env{d: New(cfg, node, lg), node: node, root: filepath.Join(dir, "pods"), log: &buf, state: cfg.StateDir}
}

func (e *env) target(pod string) string {
	return filepath.Join(e.root, pod, "volumes", "rht~glfs-subvol", "pv")
}

func opts(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	m := map[string]string{
		"cluster": "192.168.173.15:192.168.173.16:192.168.173.17", "volume": "testvol", "dir": dir,
		"kubernetes.io/fsType": "", "kubernetes.io/pod.name": "filebench-8pn4m", "kubernetes.io/pod.namespace": "testproj",
		"kubernetes.io/pvOrVolumeName": "pv-" + dir, "kubernetes.io/readwrite": "rw",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func TestInitCapabilities(t *testing.T) {
	e := newEnv(t)
	r := e.d.Run(context.Background(), []string{"init"})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Equal(t, 0, r.ExitCode())
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":"Success","capabilities":{"attach":false,"selinuxRelabel":false,"fsGroup":false}}`, string(b))
	assert.DirExists(t, filepath.Join(e.state, "locks"))

	e.d.cfg.FSGroup = true
	r = e.d.Run(context.Background(), []string{"init"})
	assert.True(t, r.Capabilities.FSGroup)
}

func TestNotSupported(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"attach", "{}", "node1"}, {"getvolumename", "{}"}, {"expandvolume"}, {}} {
		r := e.d.Run(context.Background(), args)
		assert.Equal(t, StatusNotSupported, r.Status, "%q", args)
		assert.Equal(t, 0, r.ExitCode())
	}
	assert.Empty(t, e.node.GetLog())
}

func TestMountUnmountShared(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b, ro := e.target("a"), e.target("b"), e.target("ro")

	r := e.d.Run(ctx, []string{"mount", a, opts(t, "00/01")})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "volserver=192.168.173.15 backup=192.168.173.16:192.168.173.17 volume=testvol")
	assert.Contains(t, r.Message, "bindto="+a)
	r = e.d.Run(ctx, []string{"mount", b, opts(t, "00/02")})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	r = e.d.Run(ctx, []string{"mount", ro, opts(t, "00/01", "kubernetes.io/readwrite", "ro")})
	require.Equal(t, StatusSuccess, r.Status, r.Message)

	fuse, binds := e.node.count(t)
	assert.Equal(t, 1, fuse, "one shared FUSE mount for the volume")
	assert.Equal(t, 3, binds)
	mps, _ := e.node.List()
	var fuseSrc string
	for _, mp := range mps {
		switch mp.Path {
		case ro:
			assert.Contains(t, mp.Opts, "ro")
			assert.True(t, strings.HasSuffix(mp.Device, "/00/01"), mp.Device)
		case a:
			assert.NotContains(t, mp.Opts, "ro")
		}
		if mp.Type == "glusterfs" {
			fuseSrc = mp.Device
			v, _ := optValue(mp.Opts, "backup-volfile-servers")
			assert.Equal(t, "192.168.173.16:192.168.173.17", v)
		}
	}
	assert.Equal(t, "192.168.173.15:/testvol", fuseSrc)

	// The same mount again is a no-op.
	n := len(e.node.GetLog())
	r = e.d.Run(ctx, []string{"mount", a, opts(t, "00/01")})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Len(t, e.node.GetLog(), n)

	r = e.d.Run(ctx, []string{"unmount", ro})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	r = e.d.Run(ctx, []string{"unmount", a})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "stays for 1 other mount")
	fuse, binds = e.node.count(t)
	assert.Equal(t, []int{1, 1}, []int{fuse, binds})

	r = e.d.Run(ctx, []string{"unmount", b})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "last one")
	fuse, binds = e.node.count(t)
	assert.Equal(t, []int{0, 0}, []int{fuse, binds})
	assert.NoDirExists(t, b, "the mount dir is removed, as kubelet allows")

	r = e.d.Run(ctx, []string{"unmount", b})
	require.Equal(t, StatusSuccess, r.Status, r.Message)
	assert.Contains(t, r.Message, "was not mounted")
}

func TestMountFailuresLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.target("x")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"missing dir on the volume": {[]string{"mount", tg, opts(t, "00/99")}, `does not exist`},
		"dir with ..":               {[]string{"mount", tg, opts(t, "00/../../etc")}, `contains ".."`},
		"absolute escape":           {[]string{"mount", tg, opts(t, "/../etc")}, `contains ".."`},
		"dir is the root":           {[]string{"mount", tg, opts(t, ".")}, `root`},
		"dir is the root, absolute": {[]string{"mount", tg, opts(t, "//")}, `root`},
		"dir with NUL":              {[]string{"mount", tg, opts(t, "00/\x0001")}, `NUL`},
		"no dir":                    {[]string{"mount", tg, opts(t, "")}, `missing option "dir"`},
		"no cluster":                {[]string{"mount", tg, opts(t, "00/01", "cluster", "")}, `missing option "cluster"`},
		"only colons":               {[]string{"mount", tg, opts(t, "00/01", "cluster", "::")}, `names no server`},
		"bad server":                {[]string{"mount", tg, opts(t, "00/01", "cluster", "a b")}, `not a host name`},
		"bad volume":                {[]string{"mount", tg, opts(t, "00/01", "volume", "v/1")}, `not a Gluster volume name`},
		"not JSON":                  {[]string{"mount", tg, "cluster=a"}, `not a JSON object`},
		"JSON null":                 {[]string{"mount", tg, "null"}, `got null`},
		"trailing data":             {[]string{"mount", tg, opts(t, "00/01") + "{}"}, `after the JSON object`},
		"relative mount dir":        {[]string{"mount", "pods/x", opts(t, "00/01")}, `not an absolute path`},
		"too few arguments":         {[]string{"mount", tg}, `usage`},
		"unmount without dir":       {[]string{"unmount"}, `usage`},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.d.Run(ctx, tc.args)
			assert.Equal(t, StatusFailure, r.Status)
			assert.Equal(t, 1, r.ExitCode())
			assert.Contains(t, r.Message, tc.want)
			fuse, binds := e.node.count(t)
			assert.Equal(t, []int{0, 0}, []int{fuse, binds}, "nothing left mounted")
		})
	}
	// Only the missing directory got as far as mounting (and unmounted).
	var fuseMounts int
	for _, a := range e.node.GetLog() {
		if a.Action == mountutils.FakeActionMount {
			fuseMounts++
		}
	}
	assert.Equal(t, 1, fuseMounts)
}

// TestParseOptionsAsGlfsSubvol checks that every definition glfs-subvol
// accepts is accepted, normalised to the directory glfs-subvol's bind
// mount would show.
func TestParseOptionsAsGlfsSubvol(t *testing.T) {
	for _, tc := range []struct {
		opts     string
		servers  []string
		dir      string
		readOnly bool
		ignored  []string
	}{
		{`{"cluster":"a:b","volume":"v","dir":"/pvs/01"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":"a:b","volume":"v","dir":"pvs/01/"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":"a:b","volume":"v","dir":"./pvs/01"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":"a:b","volume":"v","dir":"pvs//01"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":"a:b:","volume":"v","dir":"pvs/01"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":":a::b","volume":"v","dir":"pvs/01"}`, []string{"a", "b"}, "pvs/01", false, nil},
		{`{"cluster":"a","volume":"v","dir":"pvs/01","size":"1Gi","dirr":"x"}`, []string{"a"}, "pvs/01", false, []string{"dirr", "size"}},
		{`{"cluster":"a","volume":"v","dir":"pvs/01","kubernetes.io/readwrite":"RO"}`, []string{"a"}, "pvs/01", true, nil},
		{`{"cluster":"a","volume":"v","dir":"pvs/01","kubernetes.io/readwrite":"Rw"}`, []string{"a"}, "pvs/01", false, nil},
		{`{"cluster":"a","volume":"v","dir":"pvs/01","kubernetes.io/readwrite":"whatever"}`, []string{"a"}, "pvs/01", false, nil},
	} {
		r, err := ParseOptions(tc.opts)
		require.NoError(t, err, tc.opts)
		assert.Equal(t, tc.servers, r.Servers, tc.opts)
		assert.Equal(t, tc.dir, r.Dir, tc.opts)
		assert.Equal(t, "/"+tc.dir, r.Subvol().Path, tc.opts)
		assert.Equal(t, tc.readOnly, r.ReadOnly, tc.opts)
		assert.Equal(t, tc.ignored, r.Ignored, tc.opts)
	}
}

func TestParseOptionsGlfsSubvolExample(t *testing.T) {
	// The options of glfs-subvol's README log.
	raw := `{"cluster":"192.168.173.15:192.168.173.16:192.168.173.17","dir":"00/05","kubernetes.io/fsGroup":"1000090000","kubernetes.io/fsType":"","kubernetes.io/pod.name":"filebench-8pn4m","kubernetes.io/pod.namespace":"testproj","kubernetes.io/pod.uid":"33a5af66-9ece-11e7-bbac-0cc47af70d00","kubernetes.io/pvOrVolumeName":"192.168.173.15-192.168.173.16-192.168.173.17-testvol-00-05","kubernetes.io/readwrite":"rw","kubernetes.io/serviceAccount.name":"default","volume":"testvol"}`
	r, err := ParseOptions(raw)
	require.NoError(t, err)
	assert.Equal(t, &Request{
		Servers: []string{"192.168.173.15", "192.168.173.16", "192.168.173.17"},
		Volume:  "testvol", Dir: "00/05",
		Name: "192.168.173.15-192.168.173.16-192.168.173.17-testvol-00-05",
	}, r)
	sv := r.Subvol()
	assert.Equal(t, "/00/05", sv.Path)
	assert.Equal(t, "testvol", sv.Volume)
	assert.Equal(t, r.Servers, sv.Servers)

	r, err = ParseOptions(`{"cluster":"gfs1:gfs1:gfs2","volume":"v","dir":"a b/c","kubernetes.io/readwrite":"ro"}`)
	require.NoError(t, err)
	assert.Equal(t, []string{"gfs1", "gfs2"}, r.Servers, "duplicates dropped")
	assert.True(t, r.ReadOnly)
	assert.Equal(t, "a b/c", r.Name, "dir names the volume without pvOrVolumeName")
}

func TestConfigFromEnv(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(get(nil))
	require.NoError(t, err)
	assert.Equal(t, &Config{
		Name: "rht/glfs-subvol", LogFile: "/var/log/glusterfs/glfs-subdir.log",
		StateDir: "/var/lib/kubelet/plugins/rht~glfs-subvol", GlusterLogDir: "/var/log/glusterfs",
		Timeout: 2 * time.Minute,
	}, c)

	c, err = ConfigFromEnv(get(map[string]string{
		EnvDriver: "acme/subvol", EnvLog: "off", EnvGlusterLogLevel: "ERROR", EnvTimeout: "90s",
		EnvProbeTimeout: "off", EnvFSGroup: "true", EnvGlusterLogDir: "/var/log/x/",
	}))
	require.NoError(t, err)
	assert.Equal(t, &Config{
		Name: "acme/subvol", StateDir: "/var/lib/kubelet/plugins/acme~subvol", GlusterLogDir: "/var/log/x",
		GlusterLogLevel: "ERROR", Timeout: 90 * time.Second, ProbeTimeout: -1, FSGroup: true,
	}, c)

	c, err = ConfigFromEnv(get(map[string]string{EnvLog: "/tmp/f.log", EnvState: "/run/flex", EnvProbeTimeout: "500ms"}))
	require.NoError(t, err)
	assert.Equal(t, "/tmp/f.log", c.LogFile)
	assert.Equal(t, "/run/flex", c.StateDir)
	assert.Equal(t, 500*time.Millisecond, c.ProbeTimeout)

	for _, bad := range []map[string]string{
		{EnvDriver: "glfs-subvol"}, {EnvDriver: "a/b/c"}, {EnvLog: "rel.log"}, {EnvState: "state"},
		{EnvTimeout: "soon"}, {EnvTimeout: "-1s"}, {EnvProbeTimeout: "x"}, {EnvFSGroup: "maybe"},
	} {
		_, err := ConfigFromEnv(get(bad))
		assert.Error(t, err, "%v", bad)
	}
}

var lineRE = regexp.MustCompile(`^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \[1505999412\.727592392\] `)

func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	lg := NewLog(&buf, time.Unix(1505999412, 727592392))
	lg.Args([]string{"mount", "/t", maskSecrets(`{"dir":"a","kubernetes.io/secret/key":"c2VjcmV0"}`)})
	h := lg.Handler()
	ctx := context.Background()
	logf := func(level int, msg string, args ...any) {
		require.NoError(t, slogHandle(ctx, h, level, msg, args...))
	}
	// What mount-utils logs through klog at verbosity 4, and the mount
	// package's own records.
	logf(-4, "Mounting cmd (mount) with arguments ( -t glusterfs -o log-file=/l,backup-volfile-servers=b:c a:/v /s/k)")
	logf(-4, "Mounting cmd (mount) with arguments (-o bind /s/k/00/01 /t)")
	logf(-4, "Unmounting /t")
	logf(0, "unmounted", "mountpoint", "/s/k", "source", "a:/v", "lazy", true)
	logf(0, "unmounted", "mountpoint", "/t", "source", "a:/v", "lazy", false)
	logf(8, "mount failed", "err", "mount failed: exit status 1\nOutput: x y")
	lg.Printf("volserver %s", "a")
	lg.Reply(0, `{"status":"Success"}`)

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for _, l := range lines {
		assert.Regexp(t, lineRE, l)
	}
	var got []string
	for _, l := range lines {
		got = append(got, lineRE.ReplaceAllString(l, ""))
	}
	assert.Equal(t, []string{
		`> mount /t {"dir":"a","kubernetes.io/secret/key":"<masked>"}`,
		`! mount -t glusterfs -o log-file=/l,backup-volfile-servers=b:c a:/v /s/k`,
		`! mount -o bind /s/k/00/01 /t`,
		`! umount /t`,
		`! umount -l /s/k`,
		`unmounted mountpoint=/t source=a:/v lazy=false`,
		`ERROR mount failed err="mount failed: exit status 1\nOutput: x y"`,
		`volserver a`,
		`< 0 {"status":"Success"}`,
	}, got)
	assert.NotContains(t, buf.String(), "c2VjcmV0")

	// Off: nothing is written, and the handler says so.
	off := NewLog(nil, time.Now())
	off.Args([]string{"init"})
	assert.False(t, off.Handler().Enabled(ctx, 0))
}

func TestMaskSecrets(t *testing.T) {
	assert.Equal(t, `{"a":"b"}`, maskSecrets(`{"a":"b"}`), "unchanged without secrets")
	assert.Equal(t, `not json`, maskSecrets(`not json`))
	assert.NotContains(t, maskSecrets(`{"kubernetes.io/secret/k": "s3cr3t"`), "s3cr3t", "broken JSON with a secret is not logged")
}

func TestMainRepliesAndLog(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log", "flex.log")
	vars := map[string]string{
		EnvLog: logFile, EnvState: filepath.Join(dir, "state"), EnvGlusterLogDir: filepath.Join(dir, "glog"),
	}
	getenv := func(k string) string { return vars[k] }
	run := func(args ...string) (map[string]any, int) {
		var out bytes.Buffer
		code := Main(args, getenv, &out)
		var m map[string]any
		dec := json.NewDecoder(&out)
		require.NoError(t, dec.Decode(&m), out.String())
		assert.False(t, dec.More(), "one JSON object")
		return m, code
	}
	m, code := run("init")
	assert.Equal(t, 0, code)
	assert.Equal(t, map[string]any{"status": "Success", "capabilities": map[string]any{"attach": false, "selinuxRelabel": false, "fsGroup": false}}, m)
	m, code = run("attach", "{}", "node")
	assert.Equal(t, 0, code)
	assert.Equal(t, "Not supported", m["status"])
	m, code = run("mount", filepath.Join(dir, "t"), `{"cluster":"h","volume":"v","dir":"../x"}`)
	assert.Equal(t, 1, code)
	assert.Equal(t, "Failure", m["status"])

	vars[EnvTimeout] = "never"
	m, code = run("init")
	assert.Equal(t, 1, code)
	assert.Contains(t, m["message"], EnvTimeout)

	b, err := os.ReadFile(logFile)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	stamps := map[string]bool{}
	var kinds []string
	for _, l := range lines {
		m := regexp.MustCompile(`^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} (\[\d+\.\d{9}\]) (.*)$`).FindStringSubmatch(l)
		require.NotNil(t, m, "%q", l)
		stamps[m[1]] = true
		if k := m[2][:1]; k == ">" || k == "<" {
			kinds = append(kinds, m[2][:2]+strings.Fields(m[2])[1])
		}
	}
	assert.Len(t, stamps, 4, "one timestamp per invocation")
	assert.Equal(t, []string{"> init", "< 0", "> attach", "< 0", "> mount", "< 1", "> init", "< 1"}, kinds)

	vars[EnvTimeout] = ""
	vars[EnvLog] = "off"
	_, code = run("init")
	assert.Equal(t, 0, code)
	b2, _ := os.ReadFile(logFile)
	assert.Equal(t, b, b2, "logging off writes nothing")
}

func optValue(opts []string, key string) (string, bool) {
	i := slices.IndexFunc(opts, func(o string) bool { return strings.HasPrefix(o, key+"=") })
	if i < 0 {
		return "", false
	}
	return strings.TrimPrefix(opts[i], key+"="), true
}

func slogHandle(ctx context.Context, h slog.Handler, level int, msg string, args ...any) error {
	r := slog.NewRecord(time.Now(), slog.Level(level), msg, 0)
	r.Add(args...)
	return h.Handle(ctx, r)
}
