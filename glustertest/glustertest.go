// Package glustertest starts real GlusterFS 10.x nodes on the local host for
// tests.
//
// Every node is a glusterd in its own network namespace (svk<k>n<n>, address
// 10.215.<k>.<n>, reachable from the root namespace through the bridge
// svkb<k>; no default route) and its own mount namespace, where the node's
// directories are bind-mounted over the paths glusterfs hard-codes
// (/run/gluster, /var/lib/glusterd, /var/log/glusterfs) and the python
// geo-replication helper gsyncd is hidden (it costs ~3 s per glusterd start).
// Each cluster owns a slot k, an exclusive flock on SlotDir/<k>.lock held for
// its whole life, so concurrent test processes never collide; a crashed
// earlier holder's leftovers are swept when the slot is taken again.
//
// All network traffic stays on the loopback or inside these namespaces.
// Processes are only ever signalled through a pidfd opened before checking
// that the process is in one of the cluster's namespaces (or is a glusterfs
// client of the cluster's addresses), so recycled PIDs are never hit.
//
// Typical use:
//
//	c := glustertest.StartT(t, nil) // 1 node, volume "svkvol", strict quota
//	mnt := c.MountT(t, "")          // FUSE mount in the root namespace
//	out, err := c.Gluster(ctx, "volume", "info", c.Volume())
//	r := c.Runner(1)                // gluster CLI inside node 1's namespaces
//	stdout, stderr, err := r.Run(ctx, "--mode=script", "--xml", "volume", "quota", c.Volume(), "list")
//
// Requirements (see Prereqs): root, glusterd/gluster/glusterfs/mount.glusterfs,
// iproute2 ip, nsenter, mount and /dev/fuse. StartT skips the test when they
// are missing, or fails it when the CI environment variable is set.
package glustertest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// Options configure Start. The zero value (or nil) means one node, volume
// "svkvol", quota enabled with strict (0 s) timeouts.
type Options struct {
	// Nodes is the number of glusterd nodes, 1..3 (default 1). One node gives
	// a distribute volume with one brick; N >= 2 gives replica N with one
	// brick per node.
	Nodes int
	// Volume is the volume name (default "svkvol").
	Volume string
	// Quota enables quota on the volume (default true).
	Quota *bool
	// StrictQuota sets features.hard-timeout 0 and features.soft-timeout 0
	// (default true) so limits are enforced at once instead of after up to
	// 60 s of stale usage. Ignored when quota is off.
	StrictQuota *bool
	// VolumeOptions are extra `volume set` options applied before the volume
	// is started (in key order).
	VolumeOptions map[string]string
	// Logf, if set, receives progress messages (for example t.Logf).
	Logf func(format string, args ...any)
}

// Bool returns a pointer to b, for Options.Quota and Options.StrictQuota.
func Bool(b bool) *bool { return &b }

// tools are the absolute paths of the programs the harness runs.
var tools struct {
	ip, nsenter, mount, glusterd, gluster, glusterfs, mountGlusterfs, sh string
}

var (
	toolsOnce sync.Once
	toolsErr  string
)

// lookTool finds name in PATH, then in the usual sbin directories (go test
// may run with a PATH that lacks them).
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func findTools() string {
	toolsOnce.Do(func() {
		var missing []string
		set := func(dst *string, name string) {
			if *dst = lookTool(name); *dst == "" {
				missing = append(missing, name)
			}
		}
		set(&tools.ip, "ip")
		set(&tools.nsenter, "nsenter")
		set(&tools.mount, "mount")
		set(&tools.glusterd, "glusterd")
		set(&tools.gluster, "gluster")
		set(&tools.glusterfs, "glusterfs")
		set(&tools.mountGlusterfs, "mount.glusterfs")
		tools.sh = "/bin/sh"
		if _, err := os.Stat(tools.sh); err != nil {
			missing = append(missing, "/bin/sh")
		}
		if len(missing) > 0 {
			toolsErr = "missing programs: " + strings.Join(missing, ", ")
		}
	})
	return toolsErr
}

// Prereqs reports why real-GlusterFS tests cannot run here ("" if they can):
// they need root, the GlusterFS server and client programs (glusterd,
// gluster, glusterfs, mount.glusterfs), iproute2's ip, nsenter, mount and
// /dev/fuse.
func Prereqs() string {
	var why []string
	if os.Geteuid() != 0 {
		why = append(why, "not running as root")
	}
	if t := findTools(); t != "" {
		why = append(why, t)
	}
	if st, err := os.Stat("/dev/fuse"); err != nil {
		why = append(why, "no /dev/fuse")
	} else if st.Mode()&os.ModeCharDevice == 0 {
		why = append(why, "/dev/fuse is not a character device")
	}
	return strings.Join(why, "; ")
}

// RequirePrereqs stops the test unless real-GlusterFS tests can run here: if
// Prereqs reports a reason, it calls t.Fatalf when the CI environment
// variable is non-empty and t.Skipf otherwise, naming the reason either way.
func RequirePrereqs(t testing.TB) {
	t.Helper()
	why := Prereqs()
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("glustertest: cannot run real-GlusterFS test: %s (CI is set, so this is fatal)", why)
	}
	t.Skipf("glustertest: SKIPPING real-GlusterFS test: %s (set CI=1 to make this fatal)", why)
}

// ErrPrereq is wrapped by Start's error when Prereqs fails.
var ErrPrereq = errors.New("glustertest: prerequisites missing")

// node is one glusterd.
type node struct {
	n    int
	ns   string // netns name
	nsID nsID   // its inode, to verify PIDs
	ip   string
	dir  string // <base>/n<n>
}

func (nd *node) sock() string    { return filepath.Join(nd.dir, "gd.sock") }
func (nd *node) pidFile() string { return filepath.Join(nd.dir, "glusterd.pid") }
func (nd *node) logDir() string  { return filepath.Join(nd.dir, "log") }
func (nd *node) gdLog() string   { return filepath.Join(nd.dir, "log", "glusterd.log") }
func (nd *node) brick(vol string) string {
	return filepath.Join(nd.dir, "bricks", vol)
}

// Cluster is a running set of glusterd nodes with one started volume. All
// methods are safe for concurrent use.
type Cluster struct {
	opts  Options
	quota bool
	slot  *slotLock
	base  string
	nodes []*node
	hide  string // shell snippet hiding gsyncd ("" if not needed)
	logf  func(string, ...any)

	mu       sync.Mutex
	mounts   []string // our mount points, oldest first
	nmounts  int
	closed   bool
	closeErr error
	closing  sync.Mutex
}

// Start brings up the cluster: a netns per node, a glusterd per node (private
// mount namespace with bind mounts over /run/gluster, /var/lib/glusterd and
// /var/log/glusterfs, gsyncd hidden for speed), the trusted pool (peer probe),
// the volume (created with force, options set, started) and quota. It waits
// until every brick is online. Everything it starts is stopped by Close; on
// error it cleans up what it started. It does not mount the volume.
func Start(ctx context.Context, opts *Options) (*Cluster, error) {
	t0 := time.Now()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Nodes < 1 || o.Nodes > 3 {
		return nil, fmt.Errorf("glustertest: Nodes must be 1..3, got %d", o.Nodes)
	}
	if o.Volume == "" {
		o.Volume = "svkvol"
	}
	if why := Prereqs(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrPrereq, why)
	}
	c := &Cluster{opts: o, quota: o.Quota == nil || *o.Quota, logf: o.Logf}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	slot, err := acquireSlot()
	if err != nil {
		return nil, fmt.Errorf("glustertest: %w", err)
	}
	c.slot = slot
	k := slot.k
	if err := slot.sweepIfDirty(c.logf); err != nil {
		// Keep the record: the next holder tries again.
		_ = syscall.Flock(int(slot.f.Fd()), syscall.LOCK_UN)
		_ = slot.f.Close()
		return nil, fmt.Errorf("glustertest: slot %d is dirty and could not be cleaned: %w", k, err)
	}
	if err := c.start(ctx); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, cerr)
		}
		return nil, err
	}
	c.logf("glustertest: cluster up: %d node(s), volume %s, slot %d, %s in %v",
		o.Nodes, o.Volume, k, c.base, time.Since(t0).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	t0 := time.Now()
	k := c.slot.k
	base, err := os.MkdirTemp(baseDirParent, baseDirPrefix)
	if err != nil {
		return err
	}
	c.base = base
	if err := c.slot.record(base); err != nil {
		return err
	}
	c.logf("glustertest: slot %d, base dir %s", k, base)
	for _, d := range []string{"/run/gluster", "/var/lib/glusterd", "/var/log/glusterfs"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"log", "mnt"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return err
		}
	}
	if c.hide, err = c.prepareGsyncdHiding(); err != nil {
		return err
	}

	// Network.
	if err := setupBridge(ctx, k); err != nil {
		return err
	}
	for n := 1; n <= c.opts.Nodes; n++ {
		nd := &node{n: n, ns: netnsName(k, n), ip: nodeIP(k, n), dir: filepath.Join(base, "n"+strconv.Itoa(n))}
		c.nodes = append(c.nodes, nd)
		if err := setupNode(ctx, k, n); err != nil {
			return err
		}
		if nd.nsID, err = nsOf(filepath.Join(netnsDir, nd.ns)); err != nil {
			return err
		}
	}
	c.logf("glustertest: network of slot %d ready (%v)", k, time.Since(t0).Round(time.Millisecond))

	// glusterds, in parallel: each one's parent returns only after init.
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startGlusterd(ctx, nd)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.logf("glustertest: %d glusterd(s) answering (%v)", len(c.nodes), time.Since(t0).Round(time.Millisecond))

	// Trusted pool.
	if len(c.nodes) > 1 {
		for _, nd := range c.nodes[1:] {
			if _, err := c.mustGluster(ctx, 1, "peer", "probe", nd.ip); err != nil {
				return err
			}
		}
		if err := c.waitPeers(ctx); err != nil {
			return err
		}
		c.logf("glustertest: pool formed (%v)", time.Since(t0).Round(time.Millisecond))
	}

	// Volume.
	vol := c.opts.Volume
	args := []string{"volume", "create", vol}
	if len(c.nodes) > 1 {
		args = append(args, "replica", strconv.Itoa(len(c.nodes)))
	}
	for _, nd := range c.nodes {
		if err := os.MkdirAll(filepath.Join(nd.dir, "bricks"), 0o755); err != nil {
			return err
		}
		args = append(args, nd.ip+":"+nd.brick(vol))
	}
	args = append(args, "force")
	if _, err := c.mustGluster(ctx, 1, args...); err != nil {
		return err
	}
	keys := make([]string, 0, len(c.opts.VolumeOptions))
	for key := range c.opts.VolumeOptions {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if _, err := c.mustGluster(ctx, 1, "volume", "set", vol, key, c.opts.VolumeOptions[key]); err != nil {
			return err
		}
	}
	if _, err := c.mustGluster(ctx, 1, "volume", "start", vol); err != nil {
		return err
	}
	c.logf("glustertest: volume %s started (%v)", vol, time.Since(t0).Round(time.Millisecond))

	// Quota.
	if c.quota {
		if _, err := c.mustGluster(ctx, 1, "volume", "quota", vol, "enable"); err != nil {
			return err
		}
		if c.opts.StrictQuota == nil || *c.opts.StrictQuota {
			for _, what := range []string{"hard-timeout", "soft-timeout"} {
				if _, err := c.mustGluster(ctx, 1, "volume", "quota", vol, what, "0"); err != nil {
					return err
				}
			}
		}
		c.logf("glustertest: quota enabled (%v)", time.Since(t0).Round(time.Millisecond))
	}
	return c.waitBricksOnline(ctx, c.nodes, 1, 60*time.Second)
}

// prepareGsyncdHiding builds <base>/.libexec/view: symlinks to every entry of
// the glusterfs libexec directory except gsyncd, pointing into
// <base>/.libexec/orig. Inside a node's mount namespace the real directory is
// bound onto orig and the view over the real directory, so glusterd finds no
// gsyncd ("geo-replication module not installed") and skips ~12 python runs.
func (c *Cluster) prepareGsyncdHiding() (string, error) {
	libexec := ""
	for _, d := range append([]string{"/usr/lib/x86_64-linux-gnu/glusterfs", "/usr/libexec/glusterfs"}, globDirs("/usr/lib*/glusterfs", "/usr/lib/*/glusterfs")...) {
		if st, err := os.Stat(filepath.Join(d, "gsyncd")); err == nil && !st.IsDir() {
			libexec = d
			break
		}
	}
	if libexec == "" {
		return "", nil // nothing to hide
	}
	orig := filepath.Join(c.base, ".libexec", "orig")
	view := filepath.Join(c.base, ".libexec", "view")
	if err := os.MkdirAll(orig, 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(view, 0o755); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(libexec)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if e.Name() == "gsyncd" {
			continue
		}
		if err := os.Symlink(filepath.Join(orig, e.Name()), filepath.Join(view, e.Name())); err != nil {
			return "", err
		}
	}
	m := shq(tools.mount)
	return fmt.Sprintf("%s --bind %s %s && %s --bind %s %s", m, shq(libexec), shq(orig), m, shq(view), shq(libexec)), nil
}

func globDirs(patterns ...string) []string {
	var out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}

// shq quotes s for /bin/sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startGlusterd starts node nd's glusterd inside its netns and a fresh mount
// namespace (`ip netns exec` creates one, slave of the root) and waits until
// it answers the CLI.
func (c *Cluster) startGlusterd(ctx context.Context, nd *node) error {
	for _, d := range []string{"work", "run", "log", "bricks"} {
		if err := os.MkdirAll(filepath.Join(nd.dir, d), 0o755); err != nil {
			return err
		}
	}
	copyGroups(filepath.Join(nd.dir, "work"))
	_ = os.Remove(nd.sock())
	_ = os.Remove(nd.pidFile())
	c.clearStalePidfiles(nd)
	bind := shq(tools.mount) + " --bind "
	binds := []string{
		bind + shq(filepath.Join(nd.dir, "run")) + " /run/gluster",
		bind + shq(filepath.Join(nd.dir, "work")) + " /var/lib/glusterd",
		bind + shq(nd.logDir()) + " /var/log/glusterfs",
	}
	if real, err := filepath.EvalSymlinks("/var/run/gluster"); err == nil && real != "/run/gluster" {
		binds = append(binds, bind+shq(filepath.Join(nd.dir, "run"))+" /var/run/gluster")
	}
	if c.hide != "" {
		binds = append(binds, c.hide)
	}
	x := func(k, v string) string { return "--xlator-option " + shq("management."+k+"="+v) }
	script := strings.Join(binds, " && ") + " && exec " + shq(tools.glusterd) +
		" -p " + shq(nd.pidFile()) +
		" --log-file=" + shq(nd.gdLog()) +
		" " + x("working-directory", filepath.Join(nd.dir, "work")) +
		" " + x("run-directory", filepath.Join(nd.dir, "run")) +
		" " + x("logging-directory", nd.logDir()) +
		" " + x("glusterd-sockfile", nd.sock()) +
		" " + x("transport.socket.bind-address", nd.ip)
	outPath := filepath.Join(nd.dir, "glusterd.start.log")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, tools.ip, "netns", "exec", nd.ns, tools.sh, "-c", script)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("glustertest: start glusterd of node %d: %v\n--- %s:\n%s\n--- %s:\n%s",
			nd.n, err, outPath, tailFile(outPath, 2048), nd.gdLog(), tailFile(nd.gdLog(), 4096))
	}
	return c.waitGlusterd(ctx, nd, 30*time.Second)
}

// clearStalePidfiles removes the pid files (bricks, quotad, shd, quota aux
// mounts) under node nd's run directory whose process is no longer running in
// the node's netns. glusterd trusts a pid file whose PID has a
// /proc/PID/cmdline, so after KillNode a not-yet-reaped zombie (pid 1 reaps
// only every ~2 s here) or a recycled PID would make the restarted glusterd
// believe the brick still runs and never start it.
func (c *Cluster) clearStalePidfiles(nd *node) {
	_ = filepath.WalkDir(filepath.Join(nd.dir, "run"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".pid") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 {
			if st := procState(pid); st != 0 && st != 'Z' && st != 'X' {
				if id, err := netnsOfPID(pid); err == nil && id == nd.nsID {
					return nil // still ours and running
				}
			}
		}
		_ = os.Remove(path)
		return nil
	})
}

// copyGroups copies /var/lib/glusterd/groups (the `volume set VOL group X`
// profiles) into a node's working directory, which hides the real one.
func copyGroups(work string) {
	src := "/var/lib/glusterd/groups"
	dst := filepath.Join(work, "groups")
	if _, err := os.Stat(dst); err == nil {
		return
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(src, e.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
	}
}

// waitGlusterd polls (100 ms) until node nd's glusterd runs in its netns and
// answers `volume list`, failing early if it died.
func (c *Cluster) waitGlusterd(ctx context.Context, nd *node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		pid := c.GlusterdPID(nd.n)
		if pid == 0 {
			last = "no glusterd pid in its netns yet"
			if b, err := os.ReadFile(nd.pidFile()); err == nil {
				if p, _ := strconv.Atoi(strings.TrimSpace(string(b))); p > 0 && procState(p) == 0 {
					return fmt.Errorf("glustertest: glusterd of node %d (pid %d) exited\n--- %s:\n%s",
						nd.n, p, nd.gdLog(), tailFile(nd.gdLog(), 4096))
				}
			}
		} else if _, err := os.Stat(nd.sock()); err != nil {
			last = "no " + nd.sock() + " yet"
		} else {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, stderr, err := c.Runner(nd.n).Run(cctx, "--mode=script", "volume", "list")
			cancel()
			if err == nil {
				return nil
			}
			last = fmt.Sprintf("volume list: %v: %s", err, bytes.TrimSpace(stderr))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("glustertest: glusterd of node %d did not answer within %v (%s)\n--- %s:\n%s",
				nd.n, timeout, last, nd.gdLog(), tailFile(nd.gdLog(), 4096))
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cliOutput is the part of the gluster CLI's XML the harness reads.
type cliOutput struct {
	OpRet      int    `xml:"opRet"`
	OpErrno    int    `xml:"opErrno"`
	OpErrstr   string `xml:"opErrstr"`
	PeerStatus struct {
		Peers []struct {
			Hostname  string `xml:"hostname"`
			Connected int    `xml:"connected"`
			StateStr  string `xml:"stateStr"`
		} `xml:"peer"`
	} `xml:"peerStatus"`
	VolStatus struct {
		Volumes []struct {
			VolName string `xml:"volName"`
			Nodes   []struct {
				Hostname string `xml:"hostname"`
				Path     string `xml:"path"`
				Status   int    `xml:"status"`
				PID      int    `xml:"pid"`
			} `xml:"node"`
		} `xml:"volumes>volume"`
	} `xml:"volStatus"`
}

// xmlOn runs `gluster --mode=script --xml args` on node n and parses it.
func (c *Cluster) xmlOn(ctx context.Context, n int, args ...string) (*cliOutput, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stdout, stderr, err := c.Runner(n).Run(cctx, append([]string{"--mode=script", "--xml"}, args...)...)
	var out cliOutput
	if xerr := xml.Unmarshal(stdout, &out); xerr != nil {
		if err == nil {
			err = xerr
		}
		return nil, fmt.Errorf("gluster %s on node %d: %v: %s", strings.Join(args, " "), n, err, bytes.TrimSpace(append(stdout, stderr...)))
	}
	if out.OpRet != 0 {
		return &out, fmt.Errorf("gluster %s on node %d: opRet %d opErrno %d: %s", strings.Join(args, " "), n, out.OpRet, out.OpErrno, out.OpErrstr)
	}
	return &out, nil
}

// waitPeers polls until every node sees all others as connected peers.
func (c *Cluster) waitPeers(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	want := len(c.nodes) - 1
	var last string
	for {
		ok := true
		for _, nd := range c.nodes {
			out, err := c.xmlOn(ctx, nd.n, "peer", "status")
			if err != nil {
				ok, last = false, err.Error()
				break
			}
			conn := 0
			for _, p := range out.PeerStatus.Peers {
				if p.Connected == 1 && p.StateStr == "Peer in Cluster" {
					conn++
				}
			}
			if conn != want {
				ok, last = false, fmt.Sprintf("node %d sees %d/%d peers in cluster: %+v", nd.n, conn, want, out.PeerStatus.Peers)
				break
			}
		}
		if ok {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("glustertest: peers not all connected after 30 s: %s\n--- %s:\n%s",
				last, c.nodes[0].gdLog(), tailFile(c.nodes[0].gdLog(), 4096))
		}
	}
}

// waitBricksOnline polls `volume status VOL --xml` on node `on` until the
// bricks of nodes nds are all online.
func (c *Cluster) waitBricksOnline(ctx context.Context, nds []*node, on int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	vol := c.opts.Volume
	var last string
	var lastNode *node
	for {
		out, err := c.xmlOn(ctx, on, "volume", "status", vol)
		if err != nil {
			last, lastNode = err.Error(), c.nodes[on-1]
		} else {
			last, lastNode = "", nil
			for _, nd := range nds {
				online := false
				for _, v := range out.VolStatus.Volumes {
					for _, b := range v.Nodes {
						if b.Hostname == nd.ip && b.Path == nd.brick(vol) && b.Status == 1 {
							online = true
						}
					}
				}
				if !online {
					last, lastNode = fmt.Sprintf("brick %s:%s not online", nd.ip, nd.brick(vol)), nd
					break
				}
			}
			if lastNode == nil {
				return nil
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			nd := lastNode
			bl := filepath.Join(nd.logDir(), "bricks", strings.ReplaceAll(strings.TrimPrefix(nd.brick(vol), "/"), "/", "-")+".log")
			return fmt.Errorf("glustertest: %s after %v\n--- %s:\n%s\n--- %s:\n%s", last, timeout,
				nd.gdLog(), tailFile(nd.gdLog(), 4096), bl, tailFile(bl, 4096))
		}
	}
}

// mustGluster runs `gluster --mode=script args` on node n; error on non-zero exit.
func (c *Cluster) mustGluster(ctx context.Context, n int, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stdout, stderr, err := c.Runner(n).Run(cctx, append([]string{"--mode=script"}, args...)...)
	out := string(append(stdout, stderr...))
	if err != nil {
		nd := c.nodes[n-1]
		return out, fmt.Errorf("glustertest: gluster %s on node %d: %v: %s\n--- %s:\n%s", strings.Join(args, " "), n, err,
			strings.TrimSpace(out), nd.gdLog(), tailFile(nd.gdLog(), 4096))
	}
	return out, nil
}

// StartT calls Start with t's context and registers t.Cleanup(Close). If the
// prerequisites are missing (see Prereqs) it calls t.Fatalf when the CI
// environment variable is non-empty and t.Skipf otherwise, naming the reason.
// Any other start failure is fatal and quotes the relevant glusterd log.
func StartT(t testing.TB, opts *Options) *Cluster {
	t.Helper()
	RequirePrereqs(t)
	if opts == nil {
		opts = &Options{}
	}
	if opts.Logf == nil {
		o := *opts
		o.Logf = t.Logf
		opts = &o
	}
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("glustertest: start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("glustertest: close: %v", err)
		}
	})
	return c
}

// Close stops the cluster; it is idempotent and safe after a partial Start or
// KillNode. It unmounts every FUSE mount served by the cluster's addresses
// (newest first, lazily if busy), sends SIGTERM at once to every process in
// the cluster's network namespaces and to every root-namespace glusterfs
// client naming its addresses, waits up to 3 s, SIGKILLs what is left, deletes
// the veths, namespaces and bridge, removes BaseDir and releases the slot.
func (c *Cluster) Close() error {
	c.closing.Lock()
	defer c.closing.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closeErr
	}
	c.closed = true
	c.mu.Unlock()

	t0 := time.Now()
	var errs []error
	if c.slot != nil {
		if err := sweepSlot(c.slot.k, c.base, c.logf); err != nil {
			errs = append(errs, err)
		}
	}
	if c.base != "" {
		if mountedUnder(c.base) {
			errs = append(errs, fmt.Errorf("glustertest: %s still has mounts below it; not removing it", c.base))
		} else if err := os.RemoveAll(c.base); err != nil {
			errs = append(errs, err)
		}
	}
	if c.slot != nil && len(errs) == 0 {
		if err := c.slot.release(); err != nil {
			errs = append(errs, err)
		}
	} else if c.slot != nil {
		// Keep the record of the base dir so the next holder sweeps again.
		_ = syscall.Flock(int(c.slot.f.Fd()), syscall.LOCK_UN)
		_ = c.slot.f.Close()
	}
	c.mu.Lock()
	c.closeErr = errors.Join(errs...)
	c.mounts = nil
	c.mu.Unlock()
	if c.slot != nil {
		c.logf("glustertest: slot %d closed in %v", c.slot.k, time.Since(t0).Round(time.Millisecond))
	}
	return c.closeErr
}

// mountedUnder reports whether any mount point lies below dir.
func mountedUnder(dir string) bool {
	ms, err := fsutil.ReadMountinfo()
	if err != nil {
		return true
	}
	for _, m := range ms {
		if m.MountPoint == dir || strings.HasPrefix(m.MountPoint, dir+"/") {
			return true
		}
	}
	return false
}

// Volume returns the volume name.
func (c *Cluster) Volume() string { return c.opts.Volume }

// Servers returns the node addresses, node 1 first.
func (c *Cluster) Servers() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.ip
	}
	return out
}

// NumNodes returns the number of nodes.
func (c *Cluster) NumNodes() int { return c.opts.Nodes }

// BaseDir returns the cluster's private directory under /tmp (node dirs
// n<N>/{work,run,log,bricks}, gd.sock and glusterd.pid per node; mnt/ and
// log/ for the FUSE mounts). Close removes it.
func (c *Cluster) BaseDir() string { return c.base }

// Slot returns the cluster's slot k (subnet 10.215.k.0/24).
func (c *Cluster) Slot() int { return c.slot.k }

// Netns returns the network namespace name of node n (1-based).
func (c *Cluster) Netns(n int) string { return c.node(n).ns }

// Bridge returns the name of the cluster's bridge in the root namespace.
func (c *Cluster) Bridge() string { return bridgeName(c.slot.k) }

// GlusterdSocket returns the glusterd unix socket of node n; it is only
// usable from inside the node's mount namespace (use Runner).
func (c *Cluster) GlusterdSocket(n int) string { return c.node(n).sock() }

// BrickPath returns node n's brick directory of the volume.
func (c *Cluster) BrickPath(n int) string { return c.node(n).brick(c.opts.Volume) }

// LogDir returns node n's log directory (glusterd.log, bricks/, cli.log...).
func (c *Cluster) LogDir(n int) string { return c.node(n).logDir() }

func (c *Cluster) node(n int) *node {
	if n < 1 || n > len(c.nodes) {
		panic(fmt.Sprintf("glustertest: node %d out of range 1..%d", n, len(c.nodes)))
	}
	return c.nodes[n-1]
}

// GlusterdPID returns the PID of node n's glusterd, or 0 if it is not running.
// The PID is verified to be a glusterd inside the node's network namespace.
func (c *Cluster) GlusterdPID(n int) int {
	nd := c.node(n)
	b, err := os.ReadFile(nd.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if id, err := netnsOfPID(pid); err != nil || id != nd.nsID || procComm(pid) != "glusterd" {
		return 0
	}
	return pid
}

// PIDs returns the processes that belong to the cluster right now: every
// process in its network namespaces and every root-namespace glusterfs client
// naming its addresses.
func (c *Cluster) PIDs() []int {
	pids := pidsInNetns(c.netnsIDs())
	if root, err := nsOf("/proc/self/ns/net"); err == nil {
		pids = append(pids, slotClientPIDs(root, slotIPRe(c.slot.k))...)
	}
	sort.Ints(pids)
	return pids
}

// WaitAuxMounts waits until no auxiliary mount of glusterd runs on any
// node: the short-lived glusterfs clients (started with --client-pid -5)
// through which glusterd sets quota limits under /run/gluster. glusterd
// answers `volume quota ... limit-usage` before such a client has exited;
// its exit, and the brick's cleanup of the connection, then cost a few
// milliseconds of CPU that land on whatever runs next on the same machine.
// A benchmark that times a call right after a quota call calls this first
// (untimed), so that it measures the call rather than that teardown, as a
// client on another machine than the cluster would see it. It polls every
// 2 ms until ctx is done.
func (c *Cluster) WaitAuxMounts(ctx context.Context) error {
	ids := c.netnsIDs()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		busy := 0
		for _, p := range pidsInNetns(ids) {
			if isAuxMount(procCmdline(p)) {
				busy = p
				break
			}
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("glustertest: glusterd's auxiliary mount (pid %d) still runs: %w", busy, ctx.Err())
		case <-tick.C:
		}
	}
}

// isAuxMount reports whether argv is a glusterfs client glusterd started
// for itself (--client-pid -5, GF_CLIENT_PID_QUOTA_MOUNT).
func isAuxMount(argv []string) bool {
	if len(argv) == 0 || filepath.Base(argv[0]) != "glusterfs" {
		return false
	}
	for i, a := range argv {
		if a == "--client-pid=-5" || a == "--client-pid" && i+1 < len(argv) && argv[i+1] == "-5" {
			return true
		}
	}
	return false
}

// netnsIDs returns the network namespaces of the cluster's nodes.
func (c *Cluster) netnsIDs() map[nsID]bool {
	ids := map[nsID]bool{}
	for _, nd := range c.nodes {
		ids[nd.nsID] = true
	}
	return ids
}

// Runner runs the gluster CLI inside one node's mount and network namespace.
// It is safe for concurrent use.
type Runner struct {
	c *Cluster
	n int
}

// Runner returns a runner that executes the gluster CLI against node n
// (1-based) inside that node's mount+network namespace, i.e.
// nsenter -t <glusterd pid> -m -n -- gluster --glusterd-sock=<sock>
// --log-file=<node log dir>/cli.log <args...>. The caller passes
// --mode=script and --xml itself.
func (c *Cluster) Runner(n int) *Runner {
	c.node(n) // range check
	return &Runner{c: c, n: n}
}

// Node returns the node the runner talks to.
func (r *Runner) Node() int { return r.n }

// Run runs the gluster CLI with args and returns its stdout and stderr; err is
// an *exec.ExitError for a non-zero exit. Cancelling ctx kills the process.
// The node's mount namespace is entered through a descriptor opened from the
// verified glusterd PID, so a recycled PID can never be entered by mistake.
func (r *Runner) Run(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	cmd, err := r.Command(args...)
	if err != nil {
		return nil, nil, err
	}
	defer cmd.ExtraFiles[0].Close()
	run := exec.CommandContext(ctx, cmd.Path)
	run.Args, run.ExtraFiles = cmd.Args, cmd.ExtraFiles
	var so, se bytes.Buffer
	run.Stdout, run.Stderr = &so, &se
	run.WaitDelay = 2 * time.Second
	err = run.Run()
	return so.Bytes(), se.Bytes(), err
}

// Command returns the command Run would run for args, not started: nsenter
// into the node's namespaces, then gluster. Its ExtraFiles hold the
// descriptor of the node's mount namespace, which the caller closes once
// the command started (cli.ShellRunner's Command hook does). With only
// options for args, it starts a gluster shell.
func (r *Runner) Command(args ...string) (*exec.Cmd, error) {
	nd := r.c.node(r.n)
	pid := r.c.GlusterdPID(r.n)
	if pid == 0 {
		return nil, fmt.Errorf("glustertest: glusterd of node %d is not running", r.n)
	}
	mnt, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("glustertest: glusterd of node %d: %w", r.n, err)
	}
	// Re-check after opening: the descriptor now pins the namespace of the
	// process we verified (any process in the node's netns shares it).
	if id, err := netnsOfPID(pid); err != nil || id != nd.nsID {
		mnt.Close()
		return nil, fmt.Errorf("glustertest: glusterd of node %d exited", r.n)
	}
	all := append([]string{
		"--mount=/proc/self/fd/3", "--net=" + filepath.Join(netnsDir, nd.ns), "--",
		tools.gluster, "--glusterd-sock=" + nd.sock(), "--log-file=" + filepath.Join(nd.logDir(), "cli.log"),
	}, args...)
	cmd := exec.Command(tools.nsenter, all...)
	cmd.ExtraFiles = []*os.File{mnt}
	return cmd, nil
}

// Gluster runs `gluster --mode=script <args>` on node 1 (or, if node 1's
// glusterd is down, on the first node whose glusterd runs) and returns the
// combined output; a non-zero exit is an error that quotes the output.
func (c *Cluster) Gluster(ctx context.Context, args ...string) (string, error) {
	n := 1
	for _, nd := range c.nodes {
		if c.GlusterdPID(nd.n) != 0 {
			n = nd.n
			break
		}
	}
	// glusterd's cluster-wide volume lock may be held by a transaction of
	// the code under test (a background purge dropping a limit, say): retry
	// "Another transaction is in progress" (opErrno 30802) with a bounded
	// backoff, as the backends do.
	delay := 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		stdout, stderr, err := c.Runner(n).Run(ctx, append([]string{"--mode=script"}, args...)...)
		out := string(append(stdout, stderr...))
		if err == nil {
			return out, nil
		}
		if !strings.Contains(out, "Another transaction is in progress") || time.Now().After(deadline) {
			return out, fmt.Errorf("gluster %s (node %d): %w: %s", strings.Join(args, " "), n, err, strings.TrimSpace(out))
		}
		if serr := sleepCtx(ctx, delay); serr != nil {
			return out, fmt.Errorf("gluster %s (node %d): %w: %s", strings.Join(args, " "), n, serr, strings.TrimSpace(out))
		}
		delay = min(2*delay, time.Second)
	}
}

// Mount FUSE-mounts <node>:/<volume><subpath> (subpath "" or "/dir") on a
// fresh directory under BaseDir (node 1, or the first node whose glusterd
// runs), in the caller's (root) mount and network
// namespace, with log-file=<BaseDir>/log/mnt-<i>.log and, for N >= 2,
// backup-volfile-servers naming the other nodes; extraOpts are appended to
// -o. mount.glusterfs returns 0 even when the mount failed, so the mount is
// verified in /proc/self/mountinfo and with statfs. It returns the mount path;
// Unmount or Close unmounts it.
func (c *Cluster) Mount(ctx context.Context, subpath string, extraOpts ...string) (string, error) {
	if subpath != "" && !strings.HasPrefix(subpath, "/") {
		return "", fmt.Errorf("glustertest: subpath %q must be empty or start with /", subpath)
	}
	subpath = strings.TrimRight(subpath, "/")
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", errors.New("glustertest: cluster is closed")
	}
	c.nmounts++
	i := c.nmounts
	c.mu.Unlock()
	mp := filepath.Join(c.base, "mnt", "m"+strconv.Itoa(i))
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return "", err
	}
	logFile := filepath.Join(c.base, "log", "mnt-"+strconv.Itoa(i)+".log")
	// Nodes whose glusterd runs first: backup-volfile-servers only fails over
	// quickly when the first server refuses the connection.
	var up, down []string
	for _, nd := range c.nodes {
		if c.GlusterdPID(nd.n) != 0 {
			up = append(up, nd.ip)
		} else {
			down = append(down, nd.ip)
		}
	}
	servers := append(up, down...)
	opts := []string{"log-file=" + logFile}
	if len(servers) > 1 {
		opts = append(opts, "backup-volfile-servers="+strings.Join(servers[1:], ":"))
	}
	opts = append(opts, extraOpts...)
	src := servers[0] + ":/" + c.opts.Volume + subpath
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, tools.mount, "-t", "glusterfs", "-o", strings.Join(opts, ","), src, mp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	runErr := cmd.Run()
	c.mu.Lock()
	c.mounts = append(c.mounts, mp)
	c.mu.Unlock()
	if runErr == nil {
		runErr = verifyFUSE(cctx, mp)
	}
	if runErr != nil {
		_ = c.Unmount(mp)
		return "", fmt.Errorf("glustertest: mount %s on %s: %v: %s\n--- %s:\n%s", src, mp, runErr,
			strings.TrimSpace(out.String()), logFile, tailFile(logFile, 4096))
	}
	c.logf("glustertest: mounted %s on %s", src, mp)
	return mp, nil
}

// fuseSuperMagic is statfs.f_type of FUSE file systems.
const fuseSuperMagic = 0x65735546

// verifyFUSE checks that mp is a live glusterfs FUSE mount: listed in
// mountinfo, answering statfs as FUSE, and still listed afterwards (a client
// refused by the server exits shortly after mount.glusterfs returned 0).
func verifyFUSE(ctx context.Context, mp string) error {
	if !isMounted(mp, "fuse.glusterfs") {
		return errors.New("not mounted (mount.glusterfs exited 0 but nothing is in /proc/self/mountinfo)")
	}
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		err := syscall.Statfs(mp, &st)
		if err == nil && st.Type != fuseSuperMagic {
			err = fmt.Errorf("statfs type %#x is not FUSE", st.Type)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("statfs: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("statfs: %w", ctx.Err())
	}
	if !isMounted(mp, "fuse.glusterfs") {
		return errors.New("mount vanished right after mounting")
	}
	return nil
}

// Unmount unmounts a mount point returned by Mount (lazily if it is busy)
// and removes the directory. Unmounting something not mounted is not an error.
func (c *Cluster) Unmount(mp string) error {
	var err error
	if isMounted(mp, "") {
		err = unmount(mp)
	}
	c.mu.Lock()
	for i, m := range c.mounts {
		if m == mp {
			c.mounts = append(c.mounts[:i], c.mounts[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	if err == nil && !isMounted(mp, "") {
		_ = os.Remove(mp)
	}
	return err
}

// MountT is Mount for tests: it fails the test on error and unmounts in
// t.Cleanup.
func (c *Cluster) MountT(t testing.TB, subpath string, extraOpts ...string) string {
	t.Helper()
	mp, err := c.Mount(t.Context(), subpath, extraOpts...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := c.Unmount(mp); err != nil {
			t.Errorf("glustertest: %v", err)
		}
	})
	return mp
}

// KillNode sends SIGKILL to every process in node n's network namespace
// (glusterd, bricks, quotad, self-heal daemon, quota aux mounts) and waits
// until they are gone. FUSE clients in the root namespace are not touched.
func (c *Cluster) KillNode(n int) error {
	nd := c.node(n)
	ids := map[nsID]bool{nd.nsID: true}
	in := func(pid int) bool {
		id, err := netnsOfPID(pid)
		return err == nil && id == nd.nsID
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var procs []*owned
		for _, p := range pidsInNetns(ids) {
			if o := grab(p, in); o != nil {
				procs = append(procs, o)
			}
		}
		if len(procs) == 0 {
			c.logf("glustertest: node %d killed", n)
			return nil
		}
		pids := make([]int, len(procs))
		for i, o := range procs {
			pids[i] = o.p.Pid
		}
		c.logf("glustertest: node %d: SIGKILL %v", n, pids)
		left := stopAll(procs, syscall.SIGKILL, 5*time.Second, c.logf)
		if time.Now().After(deadline) {
			return fmt.Errorf("glustertest: node %d: processes %v still alive", n, left)
		}
	}
}

// StartNode (re)starts node n's glusterd if it is not running, waits until it
// answers and until every running glusterd reports its brick of the volume
// online (so the peers have reconnected too).
func (c *Cluster) StartNode(ctx context.Context, n int) error {
	nd := c.node(n)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("glustertest: cluster is closed")
	}
	t0 := time.Now()
	if c.GlusterdPID(n) == 0 {
		if err := c.startGlusterd(ctx, nd); err != nil {
			return err
		}
	}
	// Every running glusterd must see the brick online: the others only do so
	// once they have reconnected to the restarted peer.
	for _, m := range c.nodes {
		if m.n != n && c.GlusterdPID(m.n) == 0 {
			continue
		}
		if err := c.waitBricksOnline(ctx, []*node{nd}, m.n, 60*time.Second); err != nil {
			return err
		}
	}
	c.logf("glustertest: node %d up, brick online (%v)", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// LinkDown sets node n's eth0 down: the node becomes unreachable and packets
// to it are dropped (connections time out instead of being refused).
func (c *Cluster) LinkDown(n int) error {
	return runIP(context.Background(), "-n", c.node(n).ns, "link", "set", "eth0", "down")
}

// LinkUp sets node n's eth0 up again.
func (c *Cluster) LinkUp(n int) error {
	return runIP(context.Background(), "-n", c.node(n).ns, "link", "set", "eth0", "up")
}

// GlusterdLog returns the tail (up to max bytes) of node n's glusterd.log,
// for failure messages.
func (c *Cluster) GlusterdLog(n int, max int64) string {
	return tailFile(c.node(n).gdLog(), max)
}

var _ io.Closer = (*Cluster)(nil)
