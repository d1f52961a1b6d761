package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
)

// goldenFile holds what the original glfs-subvol (gluster/gluster-subvol,
// glfs-subvol/glfs-subvol at 4289f67) answered to dropInSequence on real
// GlusterFS. Rerecord it with
//
//	FLEX_RECORD_ORIGINAL=/path/to/glfs-subvol go test -run TestFlexDropIn ./flexvolume/
//
// (as root, with jq and flock installed; the script is run from a temporary
// driver directory, without systemd-run, and writes its own log to
// /var/log/glusterfs/glfs-subdir.log and its locks to /var/lock/glfs-subvol).
const goldenFile = "testdata/glfs-subvol.golden.json"

// dropInStep is one call of glfs-subvol's documented sequence.
type dropInStep struct {
	Name string   `json:"name"`
	Args []string `json:"args"` // with {POD:x}, {SERVER}, {VOLUME} placeholders
}

// dropInResult is what a driver answered to a step and what it left.
type dropInResult struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message,omitempty"` // normalised
	// NotJSON is set when the output was more than the JSON reply (the
	// original lets mount's error text through, which kubelet cannot
	// parse: the call fails for kubelet whatever the status says).
	NotJSON bool `json:"not_json,omitempty"`
	// Mounted says whether the step's pod dir is a mount point afterwards.
	Mounted *bool `json:"mounted,omitempty"`
	// Sees lists what the pod dir shows afterwards, when mounted.
	Sees []string `json:"sees,omitempty"`
}

type golden struct {
	Driver  string         `json:"driver"`
	Results []dropInResult `json:"results"`
}

// opt builds kubelet's options for a pod, with the PV's options in pv.
func opt(pod string, pv map[string]string) string {
	m := map[string]string{
		"kubernetes.io/fsType": "", "kubernetes.io/pod.name": pod, "kubernetes.io/pod.namespace": "testproj",
		"kubernetes.io/pod.uid": "uid-" + pod, "kubernetes.io/pvOrVolumeName": "pv-" + pod,
		"kubernetes.io/readwrite": "rw", "kubernetes.io/serviceAccount.name": "default",
	}
	for k, v := range pv {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func pv(dir string, kv ...string) map[string]string {
	m := map[string]string{"cluster": "{SERVER}", "volume": "{VOLUME}", "dir": dir}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// dropInSequence is glfs-subvol's documented use (init, mounts of two
// directories for three pods, their unmounts), the volume definitions the
// original accepts, and the error cases.
func dropInSequence() []dropInStep {
	mount := func(name, pod string, p map[string]string) dropInStep {
		return dropInStep{name, []string{"mount", "{POD:" + pod + "}", opt(pod, p)}}
	}
	unmount := func(pod string) dropInStep {
		return dropInStep{"unmount " + pod, []string{"unmount", "{POD:" + pod + "}"}}
	}
	steps := []dropInStep{
		{"init", []string{"init"}},
		mount("mount pod a on pvs/01", "a", pv("pvs/01")),
		mount("mount pod b on pvs/02", "b", pv("pvs/02")),
		mount("mount pod c on pvs/01", "c", pv("pvs/01")),
		unmount("a"), unmount("b"), unmount("c"),
	}
	for i, v := range []struct {
		name string
		pv   map[string]string
	}{
		{"absolute dir", pv("/pvs/01")},
		{"trailing slash", pv("pvs/01/")},
		{"dot first", pv("./pvs/01")},
		{"double slash", pv("pvs//01")},
		{"trailing colon in cluster", pv("pvs/02", "cluster", "{SERVER}:")},
		{"extra option key", pv("pvs/02", "size", "1Gi")},
		{"readwrite RO", pv("pvs/02", "kubernetes.io/readwrite", "RO")},
	} {
		pod := fmt.Sprintf("v%d", i)
		steps = append(steps, mount("mount "+v.name, pod, v.pv), unmount(pod))
	}
	return append(steps,
		mount("mount a missing dir", "e1", pv("pvs/nope")),
		mount("mount a missing volume", "e2", pv("pvs/01", "volume", "nosuchvol")),
		mount("mount a dir with ..", "e3", pv("pvs/../../etc")),
		unmount("never-mounted"),
		dropInStep{"unsupported call", []string{"attach", opt("x", pv("pvs/01")), "node1"}},
	)
}

// differences are the steps where this driver deliberately answers
// otherwise than glfs-subvol, with the reason; the test checks this
// driver's answer instead.
var differences = map[string]struct {
	reason string
	want   dropInResult
}{
	"unmount never-mounted": {
		"glfs-subvol (since 4289f67) runs umount on a dir that is not mounted and fails; FlexVolume's unmount is idempotent, kubelet retries a failed one for ever",
		dropInResult{Status: "Success", Code: 0, Mounted: new(bool)},
	},
}

// driverRun runs a driver binary the way kubelet does, in dir.
type driverRun struct {
	bin    string
	env    []string
	dir    string
	server string
	volume string
	// lenient accepts output that is not only the JSON reply (the
	// original's), instead of failing.
	lenient bool
}

func (d *driverRun) podDir(pod string) string {
	return filepath.Join(d.dir, "pods", pod, "volumes", "rht~glfs-subvol", "pv")
}

func (d *driverRun) expand(s string) string {
	s = strings.ReplaceAll(s, "{SERVER}", d.server)
	s = strings.ReplaceAll(s, "{VOLUME}", d.volume)
	if strings.HasPrefix(s, "{POD:") && strings.HasSuffix(s, "}") {
		s = d.podDir(strings.TrimSuffix(strings.TrimPrefix(s, "{POD:"), "}"))
	}
	return s
}

// normalise replaces what differs between runs in a message.
func (d *driverRun) normalise(msg string) string {
	msg = strings.ReplaceAll(msg, d.dir, "{DIR}")
	msg = strings.ReplaceAll(msg, d.server, "{SERVER}")
	return strings.ReplaceAll(msg, d.volume, "{VOLUME}")
}

func (d *driverRun) step(t *testing.T, s dropInStep) dropInResult {
	t.Helper()
	args := make([]string, len(s.Args))
	for i, a := range s.Args {
		args[i] = d.expand(a)
	}
	var pod string
	if (args[0] == "mount" || args[0] == "unmount") && len(args) > 1 {
		pod = args[1]
		if args[0] == "mount" {
			require.NoError(t, os.MkdirAll(pod, 0o750), "kubelet makes the pod dir")
		}
	}
	f := &flexEnv{bin: d.bin, env: d.env}
	out, code, err := f.run(t.Context(), args...)
	require.NoError(t, err, "%s: %s", s.Name, out)
	r, err := parseReply(out, code)
	notJSON := false
	if err != nil && d.lenient {
		// The reply is the last line; what comes before is not JSON.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &r), "%s: %q", s.Name, out)
		notJSON = true
	} else {
		require.NoError(t, err, s.Name)
	}
	res := dropInResult{Name: s.Name, Status: r.Status, Code: code, Message: d.normalise(r.Message), NotJSON: notJSON}
	if pod != "" {
		m := slices.Contains(mountsUnder(t, pod), pod)
		res.Mounted = &m
		if m {
			ents, err := os.ReadDir(pod)
			require.NoError(t, err)
			for _, e := range ents {
				res.Sees = append(res.Sees, e.Name())
			}
		}
	}
	return res
}

// TestFlexDropIn runs glfs-subvol's documented call sequence with this
// driver on real GlusterFS and compares every answer with the original's,
// recorded in testdata; then checks what makes it a drop-in on a live node:
// init returns within a second whatever the servers do, mounts made by the
// original are adopted, a missing volume is named, and the log and client
// logs are where the original's log shipping looks.
func TestFlexDropIn(t *testing.T) {
	cluster := glustertest.StartT(t, &glustertest.Options{Nodes: 1, Quota: glustertest.Bool(false)})
	server, vol := cluster.Servers()[0], cluster.Volume()
	admin := cluster.MountT(t, "")
	for d, file := range map[string]string{"pvs/01": "in-01", "pvs/02": "in-02"} {
		require.NoError(t, os.MkdirAll(filepath.Join(admin, d), 0o777))
		require.NoError(t, os.WriteFile(filepath.Join(admin, d, file), nil, 0o644))
	}
	base := t.TempDir()
	base, err := filepath.EvalSymlinks(base)
	require.NoError(t, err)
	t.Cleanup(func() {
		mps := mountsUnder(t, base)
		for i := len(mps) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
		}
	})

	if orig := os.Getenv("FLEX_RECORD_ORIGINAL"); orig != "" {
		recordOriginal(t, orig, filepath.Join(base, "orig"), server, vol)
		return
	}

	// This driver, installed where kubelet looks, with its state and logs
	// in the test's directory.
	dir := filepath.Join(base, "ours")
	drvDir := filepath.Join(dir, "exec", "rht~glfs-subvol")
	require.NoError(t, os.MkdirAll(drvDir, 0o755))
	bin := buildDriver(t, drvDir)
	logDir := filepath.Join(dir, "var-log-glusterfs")
	d := &driverRun{bin: bin, dir: dir, server: server, volume: vol, env: append(cleanEnv(),
		"SUBVOLKIT_FLEX_LOG="+filepath.Join(logDir, "glfs-subdir.log"),
		"SUBVOLKIT_FLEX_STATE="+filepath.Join(dir, "state"),
		"SUBVOLKIT_FLEX_GLUSTER_LOG_DIR="+logDir,
		"SUBVOLKIT_FLEX_LEGACY_LOCKS="+filepath.Join(dir, "lock"),
		"SUBVOLKIT_FLEX_TIMEOUT=60s",
	)}

	gb, err := os.ReadFile(goldenFile)
	require.NoError(t, err)
	var want golden
	require.NoError(t, json.Unmarshal(gb, &want))
	steps := dropInSequence()
	require.Len(t, want.Results, len(steps), "%s does not match the sequence: rerecord it", goldenFile)
	for i, s := range steps {
		got := d.step(t, s)
		w := want.Results[i]
		require.Equal(t, s.Name, w.Name)
		if diff, ok := differences[s.Name]; ok {
			t.Logf("%s: glfs-subvol answered %s (%d); this driver differs on purpose: %s", s.Name, w.Status, w.Code, diff.reason)
			w = diff.want
		}
		if w.NotJSON {
			t.Logf("%s: glfs-subvol's output was not only JSON (kubelet fails the call); this driver: %s", s.Name, got.Status)
		}
		assert.Equal(t, w.Status, got.Status, "%s: %s", s.Name, got.Message)
		assert.Equal(t, w.Code, got.Code, s.Name)
		assert.Equal(t, w.Mounted, got.Mounted, "%s: mounted afterwards", s.Name)
		assert.Equal(t, w.Sees, got.Sees, "%s: what the pod sees", s.Name)
		if got.Status == "Success" && s.Args[0] == "mount" {
			// glfs-subvol's message fields, in its order.
			for _, field := range strings.Fields(w.Message) {
				if k, _, _ := strings.Cut(field, "="); k == "volserver" || k == "backup" || k == "volume" {
					assert.Contains(t, got.Message, field, s.Name)
				}
			}
			assert.Contains(t, got.Message, "bindto="+d.normalise(d.expand(s.Args[1])), s.Name)
		}
		if s.Name == "mount a missing volume" {
			assert.Contains(t, got.Message, `the servers do not serve volume "nosuchvol"`)
			assert.NotContains(t, got.Message, "could be reached")
		}
		if s.Name == "mount readwrite RO" {
			assert.ErrorIs(t, os.WriteFile(filepath.Join(d.podDir("v6"), "x"), nil, 0o644), syscall.EROFS,
				"RO is read-only here (glfs-subvol ignores the option and mounts read-write)")
		}
	}
	assert.Empty(t, mountsUnder(t, dir), "the sequence leaves nothing mounted")

	t.Run("log format and locations", func(t *testing.T) {
		logb, err := os.ReadFile(filepath.Join(logDir, "glfs-subdir.log"))
		require.NoError(t, err)
		for _, l := range strings.Split(strings.TrimSpace(string(logb)), "\n") {
			require.Regexp(t, `^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \[\d+\.\d{9}\] `, l, "glfs-subvol's date \"+%%b %%d %%T\" [time]")
		}
		logs, err := filepath.Glob(filepath.Join(logDir, "*.log"))
		require.NoError(t, err)
		assert.Greater(t, len(logs), 1, "the glusterfs client logs sit next to it, where a tail of /var/log/glusterfs/*.log finds them: %v", logs)
	})

	t.Run("init returns at once whatever the servers do", func(t *testing.T) {
		for _, p := range []string{"i1", "i2"} {
			r := d.step(t, dropInStep{"mount " + p, []string{"mount", "{POD:" + p + "}", opt(p, pv("pvs/01"))}})
			require.Equal(t, "Success", r.Status, r.Message)
		}
		clients := clientsOf(filepath.Join(dir, "state"), server, vol)
		require.Len(t, clients, 1)
		killClient(t, clients[0])
		eventually(t, 10*time.Second, func() bool { return errors.Is(statfsErr(d.podDir("i1")), syscall.ENOTCONN) }, "the mount did not go stale")
		// The servers are gone too: a restore would wait for them.
		require.NoError(t, cluster.KillNode(1))
		t0 := time.Now()
		r := d.step(t, dropInStep{"init", []string{"init"}})
		took := time.Since(t0)
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Less(t, took, time.Second, "init with a dead mount and dead servers")
		t.Logf("init with dead servers: %v", took.Round(time.Millisecond))

		require.NoError(t, cluster.StartNode(t.Context(), 1))
		t0 = time.Now()
		r = d.step(t, dropInStep{"init", []string{"init"}})
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Less(t, time.Since(t0), time.Second)
		eventually(t, 60*time.Second, func() bool {
			return statfsErr(d.podDir("i1")) == nil && statfsErr(d.podDir("i2")) == nil
		}, "the detached restore did not bring the binds back")
		t.Logf("restored in the background %v after init", time.Since(t0).Round(time.Millisecond))
		// The bricks may come up after the client: a bounded wait.
		eventually(t, 30*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(d.podDir("i2"), "in-01"))
			return err == nil
		}, "pod i2 does not see its directory again")
		// The detached runs end by themselves (bounded by the timeout).
		eventually(t, 70*time.Second, func() bool { return len(running(bin, "heal-shared-mounts")) == 0 },
			"detached restores still running: %v", running(bin, "heal-shared-mounts"))
		for _, p := range []string{"i1", "i2"} {
			r := d.step(t, dropInStep{"unmount " + p, []string{"unmount", "{POD:" + p + "}"}})
			require.Equal(t, "Success", r.Status, r.Message)
		}
		assert.Empty(t, mountsUnder(t, dir))
	})

	t.Run("adopts the original's shared mounts", func(t *testing.T) {
		// The node as glfs-subvol left it: <driver dir>/.mnt/<server>-<volume>
		// and two pods bound from it.
		legacy := filepath.Join(drvDir, ".mnt", server+"-"+vol)
		require.NoError(t, os.MkdirAll(legacy, 0o755))
		out, err := exec.CommandContext(t.Context(), "mount", "-t", "glusterfs",
			"-o", "log-file="+filepath.Join(logDir, server+"-"+vol+".log"), server+":/"+vol, legacy).CombinedOutput()
		require.NoError(t, err, "%s", out)
		for _, p := range []string{"o1", "o2"} {
			require.NoError(t, os.MkdirAll(d.podDir(p), 0o750))
			out, err := exec.CommandContext(t.Context(), "mount", "--bind", legacy+"/pvs/02", d.podDir(p)).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}
		require.Len(t, clientsOf(drvDir, server, vol), 1)

		// A new pod meanwhile: this driver's own shared mount.
		r := d.step(t, dropInStep{"mount n1", []string{"mount", "{POD:n1}", opt("n1", pv("pvs/01"))}})
		require.Equal(t, "Success", r.Status, r.Message)

		r = d.step(t, dropInStep{"unmount o1", []string{"unmount", "{POD:o1}"}})
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "glfs-subvol's shared mount")
		assert.Contains(t, mountsUnder(t, drvDir), legacy, "o2 still uses it")
		require.NoError(t, os.WriteFile(filepath.Join(d.podDir("o2"), "still"), nil, 0o644))

		r = d.step(t, dropInStep{"unmount o2", []string{"unmount", "{POD:o2}"}})
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Contains(t, r.Message, "the shared mount is unmounted")
		assert.Empty(t, mountsUnder(t, drvDir), "glfs-subvol's shared mount is gone, not leaked")
		assert.NoDirExists(t, legacy)
		eventually(t, 10*time.Second, func() bool { return len(clientsOf(drvDir, server, vol)) == 0 },
			"glfs-subvol's FUSE client is still running")

		r = d.step(t, dropInStep{"unmount n1", []string{"unmount", "{POD:n1}"}})
		require.Equal(t, "Success", r.Status, r.Message)
		assert.Empty(t, mountsUnder(t, dir))
	})
}

// cleanEnv is the test's environment without SUBVOLKIT_FLEX_* settings,
// with the system directories in PATH.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUBVOLKIT_FLEX_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin")
}

// recordOriginal runs dropInSequence with the original script and writes
// the golden file.
func recordOriginal(t *testing.T, script, dir, server, vol string) {
	drvDir := filepath.Join(dir, "exec", "rht~glfs-subvol")
	require.NoError(t, os.MkdirAll(drvDir, 0o755))
	src, err := os.ReadFile(script)
	require.NoError(t, err)
	bin := filepath.Join(drvDir, "glfs-subvol")
	require.NoError(t, os.WriteFile(bin, src, 0o755))
	// A PATH without systemd-run, which cannot run here (no systemd).
	pathDir := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(pathDir, 0o755))
	for _, tool := range []string{"bash", "jq", "flock", "mountpoint", "mount", "umount", "sed", "grep", "awk",
		"date", "mkdir", "rmdir", "wc", "dirname", "which", "cat", "sleep"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err, tool)
		require.NoError(t, os.Symlink(p, filepath.Join(pathDir, tool)))
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+pathDir)
	d := &driverRun{bin: bin, env: env, dir: dir, server: server, volume: vol, lenient: true}
	g := golden{Driver: "glfs-subvol (gluster/gluster-subvol, glfs-subvol/glfs-subvol at 4289f67), recorded " + time.Now().UTC().Format("2006-01-02")}
	for _, s := range dropInSequence() {
		r := d.step(t, s)
		t.Logf("%s: %s %d %s", s.Name, r.Status, r.Code, r.Message)
		g.Results = append(g.Results, r)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(goldenFile), 0o755))
	require.NoError(t, os.WriteFile(goldenFile, append(b, '\n'), 0o644))
	t.Logf("wrote %s", goldenFile)
}

// running returns the PIDs of live processes running bin with arg.
func running(bin, arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if args[0] == bin && slices.Contains(args[1:], arg) {
			out = append(out, pid)
		}
	}
	return out
}
