package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
)

// The driver binary is run exactly as kubelet runs it (see kubelet's
// pkg/volume/flexvolume/driver-call.go): arguments only, the environment,
// combined stdout and stderr parsed as one JSON object, the exit status
// checked; on real GlusterFS.

// reply is what kubelet unmarshals (its DriverStatus, the fields we use).
type reply struct {
	Status       string `json:"status"`
	Message      string `json:"message"`
	Capabilities *struct {
		Attach         *bool `json:"attach"`
		SELinuxRelabel *bool `json:"selinuxRelabel"`
		FSGroup        *bool `json:"fsGroup"`
	} `json:"capabilities"`
}

type flexEnv struct {
	bin     string
	env     []string
	dir     string // everything the driver makes lives here
	state   string
	logFile string
}

// buildDriver builds the driver binary, as an administrator would.
func buildDriver(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "glfs-subvol")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// run runs the driver like kubelet: arguments, environment, combined
// stdout and stderr.
func (f *flexEnv) run(ctx context.Context, args ...string) (out []byte, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Env = f.env
	cmd.WaitDelay = 5 * time.Second // a FUSE daemon holding our pipe would show here
	out, err = cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode(), nil
	}
	return out, 0, err
}

// parseReply checks the reply's form: one JSON object and nothing else on
// stdout+stderr, a known status, exit 1 for Failure and 0 otherwise.
func parseReply(out []byte, code int) (reply, error) {
	var r reply
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("output is not JSON: %w: %q", err, out)
	}
	if _, err := dec.Token(); !errors.Is(err, errEOF) {
		return r, fmt.Errorf("output has more than one JSON object: %q", out)
	}
	want := 0
	switch r.Status {
	case "Success", "Not supported":
	case "Failure":
		want = 1
	default:
		return r, fmt.Errorf("unknown status %q", r.Status)
	}
	if code != want {
		return r, fmt.Errorf("exit code %d for %s: %s", code, r.Status, out)
	}
	return r, nil
}

// call runs the driver and checks the reply's form.
func (f *flexEnv) call(t *testing.T, args ...string) reply {
	t.Helper()
	out, code, err := f.run(t.Context(), args...)
	require.NoError(t, err, "running %q: %s", args, out)
	r, err := parseReply(out, code)
	require.NoError(t, err, "%q", args)
	return r
}

var errEOF = func() error { _, err := json.NewDecoder(strings.NewReader("")).Token(); return err }()

// options builds the JSON kubelet passes: the PV's flexVolume options and
// its own kubernetes.io/* keys.
func options(t *testing.T, cluster, volume, dir, podUID string, extra ...string) string {
	t.Helper()
	m := map[string]string{
		"kubernetes.io/fsGroup": "1000090000", "kubernetes.io/fsType": "",
		"kubernetes.io/pod.name": "pod-" + podUID, "kubernetes.io/pod.namespace": "testproj",
		"kubernetes.io/pod.uid": podUID, "kubernetes.io/pvOrVolumeName": "pv-" + strings.ReplaceAll(dir, "/", "-"),
		"kubernetes.io/readwrite": "rw", "kubernetes.io/serviceAccount.name": "default",
	}
	if cluster != "" {
		m["cluster"] = cluster
	}
	if volume != "" {
		m["volume"] = volume
	}
	if dir != "" {
		m["dir"] = dir
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

// podDir creates a pod's mount dir the way kubelet does before "mount".
func (f *flexEnv) podDir(t *testing.T, uid string) string {
	t.Helper()
	p := filepath.Join(f.dir, "pods", uid, "volumes", "rht~glfs-subvol", "pv")
	require.NoError(t, os.MkdirAll(p, 0o750))
	return p
}

// mountsUnder lists the mount points at or below dir, from mountinfo.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescape(s string) string {
	r := regexp.MustCompile(`\\[0-7]{3}`)
	return r.ReplaceAllStringFunc(s, func(m string) string {
		v, _ := strconv.ParseUint(m[1:], 8, 8)
		return string([]byte{byte(v)})
	})
}

// fuseClient is a glusterfs FUSE client process.
type fuseClient struct {
	pid        int
	servers    []string
	volume     string
	mountPoint string
}

// fuseClients lists the live glusterfs FUSE clients whose mount point is
// below dir (zombies have an empty cmdline and are not listed).
func fuseClients(dir string) []fuseClient {
	ents, _ := os.ReadDir("/proc")
	var out []fuseClient
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, ok := readClient(pid); ok && strings.HasPrefix(c.mountPoint, dir+"/") {
			out = append(out, c)
		}
	}
	return out
}

func readClient(pid int) (fuseClient, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return fuseClient{}, false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if filepath.Base(args[0]) != "glusterfs" || !slices.Contains(args, "fuse") {
		return fuseClient{}, false
	}
	c := fuseClient{pid: pid, mountPoint: args[len(args)-1]}
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--volfile-server="); ok {
			c.servers = append(c.servers, v)
		}
		if v, ok := strings.CutPrefix(a, "--volfile-id="); ok {
			c.volume = strings.TrimPrefix(v, "/")
		}
	}
	return c, true
}

// clientsOf returns the FUSE clients below dir of volume whose first
// volfile server is server.
func clientsOf(dir, server, volume string) []fuseClient {
	var out []fuseClient
	for _, c := range fuseClients(dir) {
		if len(c.servers) > 0 && c.servers[0] == server && c.volume == volume {
			out = append(out, c)
		}
	}
	return out
}

// eventually polls cond every 50 ms for up to d.
func eventually(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statfsErr runs statfs on p with a bound (a dead FUSE mount answers at
// once, an unreachable one may not).
func statfsErr(p string) error {
	ch := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		ch <- syscall.Statfs(p, &st)
	}()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("statfs timed out")
	}
}

// killClient SIGKILLs the FUSE client c through a pidfd, after checking that
// the PID still is that client.
func killClient(t *testing.T, c fuseClient) {
	t.Helper()
	p, err := os.FindProcess(c.pid) // a pidfd on Linux: immune to PID reuse from here on
	require.NoError(t, err)
	defer p.Release()
	again, ok := readClient(c.pid)
	require.True(t, ok && again.mountPoint == c.mountPoint, "PID %d is no longer the FUSE client of %s", c.pid, c.mountPoint)
	require.NoError(t, p.Kill())
}

func TestFlexVolumeOnGluster(t *testing.T) {
	t0 := time.Now()
	cluster := glustertest.StartT(t, &glustertest.Options{Nodes: 1, Quota: glustertest.Bool(false)})
	server, vol := cluster.Servers()[0], cluster.Volume()
	t.Logf("cluster up in %v", time.Since(t0).Round(time.Millisecond))

	// The volume's directories, made through an admin mount.
	admin := cluster.MountT(t, "")
	for _, d := range []string{"pvs/01", "pvs/02"} {
		require.NoError(t, os.MkdirAll(filepath.Join(admin, d), 0o777))
	}

	dir := t.TempDir()
	dir, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	f := &flexEnv{dir: dir, state: filepath.Join(dir, "state"), logFile: filepath.Join(dir, "log", "glfs-subvol.log")}
	f.bin = buildDriver(t, dir)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUBVOLKIT_FLEX_") && !strings.HasPrefix(kv, "PATH=") {
			f.env = append(f.env, kv)
		}
	}
	f.env = append(f.env,
		"PATH="+os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin",
		"SUBVOLKIT_FLEX_LOG="+f.logFile,
		"SUBVOLKIT_FLEX_STATE="+f.state,
		"SUBVOLKIT_FLEX_GLUSTER_LOG_DIR="+filepath.Join(dir, "glusterlog"),
		"SUBVOLKIT_FLEX_TIMEOUT=80s",
	)
	// Whatever happens, nothing stays mounted below dir (this runs before
	// t.TempDir's removal and before the cluster's Close).
	t.Cleanup(func() {
		mps := mountsUnder(t, dir)
		for i := len(mps) - 1; i >= 0; i-- {
			if err := syscall.Unmount(mps[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("cleanup: umount -l %s: %v", mps[i], err)
			}
		}
	})
	cl := server

	// init, and an unsupported call.
	r := f.call(t, "init")
	require.Equal(t, "Success", r.Status, r.Message)
	require.NotNil(t, r.Capabilities)
	assert.False(t, *r.Capabilities.Attach)
	assert.False(t, *r.Capabilities.SELinuxRelabel)
	r = f.call(t, "attach", options(t, cl, vol, "pvs/01", "x"), "node1")
	assert.Equal(t, "Not supported", r.Status)

	t.Run("missing dir fails and leaves nothing", func(t *testing.T) {
		tg := f.podDir(t, "p-missing")
		t1 := time.Now()
		r := f.call(t, "mount", tg, options(t, cl, vol, "pvs/nope", "p-missing"))
		t.Logf("missing dir: %v: %s", time.Since(t1).Round(time.Millisecond), r.Message)
		assert.Equal(t, "Failure", r.Status)
		assert.Contains(t, r.Message, "does not exist")
		assert.Contains(t, r.Message, `"/pvs/nope"`)
		assert.Empty(t, mountsUnder(t, dir), "no mount left")
		eventually(t, 10*time.Second, func() bool { return len(fuseClients(dir)) == 0 }, "FUSE clients left: %v", fuseClients(dir))
		r = f.call(t, "mount", tg, options(t, cl, vol, "", "p-missing"))
		assert.Equal(t, "Failure", r.Status)
		assert.Contains(t, r.Message, `missing option "dir"`)
		r = f.call(t, "mount", tg, options(t, cl, vol, "pvs/../../etc", "p-missing"))
		assert.Equal(t, "Failure", r.Status)
		assert.Contains(t, r.Message, `".."`)
		assert.Empty(t, mountsUnder(t, dir))
	})

	unreachable := fmt.Sprintf("10.215.%d.99", cluster.Slot()) // on our bridge's subnet, no node there
	t.Run("unreachable server fails and leaves nothing", func(t *testing.T) {
		tg := f.podDir(t, "p-unreach")
		t1 := time.Now()
		r := f.call(t, "mount", tg, options(t, unreachable, vol, "pvs/01", "p-unreach"))
		t.Logf("unreachable: %v: %s", time.Since(t1).Round(time.Millisecond), r.Message)
		assert.Equal(t, "Failure", r.Status)
		assert.Contains(t, r.Message, unreachable)
		assert.Contains(t, r.Message, "no server of the cluster could be reached")
		assert.NotContains(t, r.Message, "\n", "one line")
		assert.Empty(t, mountsUnder(t, dir), "no mount left")
		eventually(t, 10*time.Second, func() bool { return len(fuseClients(dir)) == 0 }, "FUSE clients left: %v", fuseClients(dir))
	})

	// Two pods, one shared mount.
	a, b := f.podDir(t, "pod-a"), f.podDir(t, "pod-b")
	t1 := time.Now()
	r = f.call(t, "mount", a, options(t, cl, vol, "pvs/01", "pod-a"))
	require.Equal(t, "Success", r.Status, r.Message)
	t2 := time.Now()
	r = f.call(t, "mount", b, options(t, cl, vol, "pvs/02", "pod-b"))
	require.Equal(t, "Success", r.Status, r.Message)
	t.Logf("first mount (FUSE + bind) %v, second (bind) %v", t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	require.NoError(t, os.WriteFile(filepath.Join(a, "a.txt"), []byte("from pod a"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(b, "b.txt"), []byte("from pod b"), 0o644))
	got, err := os.ReadFile(filepath.Join(admin, "pvs/01/a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "from pod a", string(got), "pod a writes into pvs/01")
	got, err = os.ReadFile(filepath.Join(admin, "pvs/02/b.txt"))
	require.NoError(t, err)
	assert.Equal(t, "from pod b", string(got), "pod b writes into pvs/02")
	assert.NoFileExists(t, filepath.Join(a, "b.txt"), "pods see only their own directory")
	clients := clientsOf(f.state, server, vol)
	require.Len(t, clients, 1, "one FUSE process for %s:%s", server, vol)
	assert.Len(t, mountsUnder(t, dir), 3, "the shared mount and two binds")

	t.Run("read-only", func(t *testing.T) {
		ro := f.podDir(t, "pod-ro")
		r := f.call(t, "mount", ro, options(t, cl, vol, "pvs/01", "pod-ro", "kubernetes.io/readwrite", "ro"))
		require.Equal(t, "Success", r.Status, r.Message)
		got, err := os.ReadFile(filepath.Join(ro, "a.txt"))
		require.NoError(t, err)
		assert.Equal(t, "from pod a", string(got))
		err = os.WriteFile(filepath.Join(ro, "x"), []byte("x"), 0o644)
		assert.ErrorIs(t, err, syscall.EROFS)
		r = f.call(t, "unmount", ro)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Len(t, clientsOf(f.state, server, vol), 1)
	})

	t.Run("a killed FUSE client is healed by the next mount", func(t *testing.T) {
		old := clientsOf(f.state, server, vol)
		require.Len(t, old, 1)
		killClient(t, old[0])
		eventually(t, 10*time.Second, func() bool { return errors.Is(statfsErr(a), syscall.ENOTCONN) },
			"pod a's mount did not go stale: %v", statfsErr(a))

		c := f.podDir(t, "pod-c")
		t1 := time.Now()
		r := f.call(t, "mount", c, options(t, cl, vol, "pvs/02", "pod-c"))
		t.Logf("heal by mount: %v", time.Since(t1).Round(time.Millisecond))
		require.Equal(t, "Success", r.Status, r.Message)
		got, err := os.ReadFile(filepath.Join(a, "a.txt"))
		require.NoError(t, err, "pod a's existing mount dir works again")
		assert.Equal(t, "from pod a", string(got))
		require.NoError(t, os.WriteFile(filepath.Join(a, "a2.txt"), []byte("after heal"), 0o644))
		got, err = os.ReadFile(filepath.Join(c, "b.txt"))
		require.NoError(t, err)
		assert.Equal(t, "from pod b", string(got))
		now := clientsOf(f.state, server, vol)
		require.Len(t, now, 1)
		assert.NotEqual(t, old[0].pid, now[0].pid)

		// Killed again: kubelet's init (at its start) restores it too.
		killClient(t, now[0])
		eventually(t, 10*time.Second, func() bool { return errors.Is(statfsErr(b), syscall.ENOTCONN) },
			"pod b's mount did not go stale: %v", statfsErr(b))
		t1 = time.Now()
		r = f.call(t, "init")
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Less(t, time.Since(t1), time.Second, "init leaves the restore to a detached run")
		eventually(t, 30*time.Second, func() bool {
			return statfsErr(a) == nil && statfsErr(b) == nil && statfsErr(c) == nil
		}, "the binds were not restored after init")
		t.Logf("heal after init: %v", time.Since(t1).Round(time.Millisecond))
		got, err = os.ReadFile(filepath.Join(b, "b.txt"))
		require.NoError(t, err)
		assert.Equal(t, "from pod b", string(got))

		r = f.call(t, "unmount", c)
		require.Equal(t, "Success", r.Status, r.Message)
	})

	t.Run("unmount keeps the shared mount until its last user goes", func(t *testing.T) {
		r := f.call(t, "unmount", a)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "stays for 1 other mount")
		assert.Len(t, clientsOf(f.state, server, vol), 1, "shared mount stays")
		assert.Len(t, mountsUnder(t, dir), 2)
		require.NoError(t, os.WriteFile(filepath.Join(b, "b2.txt"), []byte("still here"), 0o644), "pod b unaffected")
		got, err := os.ReadFile(filepath.Join(admin, "pvs/02/b2.txt"))
		require.NoError(t, err)
		assert.Equal(t, "still here", string(got))

		r = f.call(t, "unmount", b)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "last one")
		assert.Empty(t, mountsUnder(t, dir), "shared mount gone")
		eventually(t, 10*time.Second, func() bool { return len(clientsOf(f.state, server, vol)) == 0 },
			"FUSE process still there: %v", clientsOf(f.state, server, vol))
		r = f.call(t, "unmount", b)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "was not mounted")
	})

	t.Run("concurrent calls from separate processes share one FUSE mount", func(t *testing.T) {
		const n = 6
		targets := make([]string, n)
		for i := range targets {
			targets[i] = f.podDir(t, fmt.Sprintf("pod-par-%d", i))
		}
		parallel := func(args func(i int) []string) []error {
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, code, err := f.run(t.Context(), args(i)...)
					if err == nil {
						var r reply
						if r, err = parseReply(out, code); err == nil && r.Status != "Success" {
							err = fmt.Errorf("%s: %s", r.Status, r.Message)
						}
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			return errs
		}
		t1 := time.Now()
		for i, err := range parallel(func(i int) []string {
			return []string{"mount", targets[i], options(t, cl, vol, fmt.Sprintf("pvs/0%d", i%2+1), fmt.Sprintf("pod-par-%d", i))}
		}) {
			require.NoError(t, err, "mount %d", i)
		}
		t.Logf("%d concurrent mounts: %v", n, time.Since(t1).Round(time.Millisecond))
		assert.Len(t, clientsOf(f.state, server, vol), 1, "one FUSE process")
		assert.Len(t, mountsUnder(t, dir), n+1)
		for i, tg := range targets {
			got, err := os.ReadFile(filepath.Join(tg, []string{"a.txt", "b.txt"}[i%2]))
			require.NoError(t, err)
			assert.Contains(t, string(got), "from pod")
		}
		for i, err := range parallel(func(i int) []string { return []string{"unmount", targets[i]} }) {
			require.NoError(t, err, "unmount %d", i)
		}
		assert.Empty(t, mountsUnder(t, dir), "the last unmount removed the shared mount")
		eventually(t, 10*time.Second, func() bool { return len(clientsOf(f.state, server, vol)) == 0 },
			"FUSE process still there: %v", clientsOf(f.state, server, vol))
	})

	t.Run("backup server takes over from an unreachable primary", func(t *testing.T) {
		d := f.podDir(t, "pod-d")
		t1 := time.Now()
		r := f.call(t, "mount", d, options(t, unreachable+":"+server, vol, "pvs/01", "pod-d"))
		t.Logf("failover mount: %v", time.Since(t1).Round(time.Millisecond))
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "source="+server+":/"+vol)
		got, err := os.ReadFile(filepath.Join(d, "a2.txt"))
		require.NoError(t, err)
		assert.Equal(t, "after heal", string(got))
		r = f.call(t, "unmount", d)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Empty(t, mountsUnder(t, dir))
	})

	// The log: glfs-subvol's format, the commands run.
	logb, err := os.ReadFile(f.logFile)
	require.NoError(t, err)
	lineRE := regexp.MustCompile(`^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \[\d+\.\d{9}\] `)
	for _, l := range strings.Split(strings.TrimSpace(string(logb)), "\n") {
		require.Regexp(t, lineRE, l)
	}
	log := string(logb)
	for _, want := range []string{
		"] > mount " + a + " {",
		"] ! mount -t glusterfs -o log-file=",
		" " + server + ":/" + vol + " " + f.state + "/shared/",
		"] ! mount -o bind " + f.state + "/shared/",
		"/pvs/01 " + a + "\n",
		"] ! umount " + a + "\n",
		"] ! umount -l " + f.state + "/shared/",
		`] < 0 {"status":"Success","message":"volserver=` + server,
		`] < 1 {"status":"Failure"`,
	} {
		assert.Contains(t, log, want)
	}
	t.Logf("total %v", time.Since(t0).Round(time.Millisecond))
	if os.Getenv("FLEX_DUMP_LOG") != "" {
		t.Logf("log:\n%s", log)
	}
}
