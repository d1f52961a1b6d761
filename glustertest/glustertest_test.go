package glustertest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// volInfo is the part of `volume info --xml` the tests read.
type volInfo struct {
	OpRet   int `xml:"opRet"`
	Volumes []struct {
		Name       string `xml:"name"`
		StatusStr  string `xml:"statusStr"`
		BrickCount int    `xml:"brickCount"`
		TypeStr    string `xml:"typeStr"`
		Options    []struct {
			Name  string `xml:"name"`
			Value string `xml:"value"`
		} `xml:"options>option"`
	} `xml:"volInfo>volumes>volume"`
}

func (v *volInfo) option(name string) string {
	for _, o := range v.Volumes[0].Options {
		if o.Name == name {
			return o.Value
		}
	}
	return ""
}

// quotaList is the part of `volume quota VOL list --xml` the tests read.
type quotaList struct {
	OpRet  int `xml:"opRet"`
	Limits []struct {
		Path      string `xml:"path"`
		HardLimit string `xml:"hard_limit"`
	} `xml:"volQuota>limit"`
}

// runXML runs the CLI through r with --mode=script --xml and decodes stdout.
func runXML(t *testing.T, r *Runner, v any, args ...string) {
	t.Helper()
	stdout, stderr, err := r.Run(t.Context(), append([]string{"--mode=script", "--xml"}, args...)...)
	if err != nil {
		t.Fatalf("gluster %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	if err := xml.Unmarshal(stdout, v); err != nil {
		t.Fatalf("gluster %s: bad XML: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// snapshot records what a cluster owns, to check after Close that it is gone.
type snapshot struct {
	slot  int
	netns []string
	links []string
	base  string
	ips   []string
	procs []*os.Process
	pids  []int
}

func takeSnapshot(t *testing.T, c *Cluster) *snapshot {
	t.Helper()
	s := &snapshot{slot: c.Slot(), base: c.BaseDir(), ips: c.Servers(), links: []string{c.Bridge()}}
	for n := 1; n <= c.NumNodes(); n++ {
		s.netns = append(s.netns, c.Netns(n))
		s.links = append(s.links, vethName(c.Slot(), n))
	}
	s.pids = c.PIDs()
	for _, p := range s.pids {
		pr, err := os.FindProcess(p) // pidfd: immune to PID reuse
		if err != nil {
			t.Fatal(err)
		}
		s.procs = append(s.procs, pr)
	}
	return s
}

// assertGone checks that nothing of the snapshot's cluster is left.
func (s *snapshot) assertGone(t *testing.T) {
	t.Helper()
	for _, ns := range s.netns {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
			t.Errorf("netns %s still exists", ns)
		}
	}
	for _, l := range s.links {
		if linkExists(l) {
			t.Errorf("link %s still exists", l)
		}
	}
	if _, err := os.Stat(s.base); err == nil {
		t.Errorf("base dir %s still exists", s.base)
	}
	for _, p := range s.procs {
		o := &owned{p: p}
		if o.alive() {
			t.Errorf("process %d (%s) still alive", p.Pid, procComm(p.Pid))
		}
		_ = p.Release()
	}
	ms, _ := fsutil.ReadMountinfo()
	for _, m := range ms {
		if slices.Contains(s.ips, hostOf(m.Source)) || strings.HasPrefix(m.MountPoint, s.base+"/") {
			t.Errorf("mount %s (%s) still exists", m.MountPoint, m.Source)
		}
	}
	if slotInUse(s.slot) {
		t.Errorf("slot %d still in use after Close", s.slot)
	}
}

func TestPrereqs(t *testing.T) {
	why := Prereqs()
	t.Logf("Prereqs() = %q", why)
	if os.Geteuid() != 0 && why == "" {
		t.Fatal("Prereqs() is empty although we are not root")
	}
}

func TestSingleNode(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	c := StartT(t, nil)
	t.Logf("Start 1 node: %v", time.Since(t0))
	ctx := t.Context()
	vol := c.Volume()
	if vol != "svkvol" || c.NumNodes() != 1 || len(c.Servers()) != 1 {
		t.Fatalf("Volume %q NumNodes %d Servers %v", vol, c.NumNodes(), c.Servers())
	}
	if c.GlusterdPID(1) == 0 {
		t.Fatal("GlusterdPID(1) = 0")
	}

	var vi volInfo
	runXML(t, c.Runner(1), &vi, "volume", "info", vol)
	if vi.OpRet != 0 || len(vi.Volumes) != 1 {
		t.Fatalf("volume info: %+v", vi)
	}
	if got := vi.Volumes[0].StatusStr; got != "Started" {
		t.Errorf("volume status %q, want Started", got)
	}
	for opt, want := range map[string]string{"features.quota": "on", "features.hard-timeout": "0", "features.soft-timeout": "0"} {
		if got := vi.option(opt); got != want {
			t.Errorf("option %s = %q, want %q", opt, got, want)
		}
	}

	mnt := c.MountT(t, "")
	data := []byte("hello from subvolkit\n")
	if err := os.WriteFile(filepath.Join(mnt, "f.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "f.txt"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	// It really went through gluster to the brick.
	if b, err := os.ReadFile(filepath.Join(c.BrickPath(1), "f.txt")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("brick copy %q, %v", b, err)
	}

	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// glusterd sets the limit through an aux mount of its own, which
	// WaitAuxMounts recognizes and waits out.
	sawAux := make(chan bool, 1)
	quotaDone := make(chan struct{})
	go func() {
		saw := false
		for !saw {
			for _, p := range c.PIDs() {
				saw = saw || isAuxMount(procCmdline(p))
			}
			select {
			case <-quotaDone:
				sawAux <- saw
				return
			case <-time.After(time.Millisecond):
			}
		}
		sawAux <- saw
	}()
	stdout, stderr, err := c.Runner(1).Run(ctx, "--mode=script", "volume", "quota", vol, "limit-usage", "/d", "1MB")
	close(quotaDone)
	if err != nil {
		t.Fatalf("limit-usage: %v\n%s%s", err, stdout, stderr)
	}
	if !<-sawAux {
		t.Error("no aux mount of glusterd (glusterfs --client-pid -5) was seen during limit-usage")
	}
	if err := c.WaitAuxMounts(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.PIDs() {
		if isAuxMount(procCmdline(p)) {
			t.Errorf("aux mount %d still runs after WaitAuxMounts: %q", p, procCmdline(p))
		}
	}
	var ql quotaList
	runXML(t, c.Runner(1), &ql, "volume", "quota", vol, "list")
	if ql.OpRet != 0 || len(ql.Limits) != 1 || ql.Limits[0].Path != "/d" || ql.Limits[0].HardLimit != "1048576" {
		t.Fatalf("quota list: %+v", ql)
	}

	// A non-zero exit is an *exec.ExitError.
	if _, _, err := c.Runner(1).Run(ctx, "--mode=script", "volume", "info", "nosuchvol"); err == nil {
		t.Error("volume info nosuchvol succeeded")
	} else if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) {
		t.Errorf("error %T is not an exit error", err)
	}
	// The context bounds the CLI: a 5 ms deadline kills it.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	t2 := time.Now()
	_, _, err = c.Runner(1).Run(cctx, "--mode=script", "volume", "status", vol, "detail")
	cancel()
	if err == nil || time.Since(t2) > 3*time.Second {
		t.Errorf("Run with a 5 ms deadline: err %v after %v", err, time.Since(t2))
	}
	if out, err := c.Gluster(ctx, "volume", "list"); err != nil || strings.TrimSpace(out) != vol {
		t.Errorf("Gluster(volume list) = %q, %v", out, err)
	}

	// Subdir mount, then Close with it still mounted.
	sub, err := c.Mount(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(sub, &st); err != nil {
		t.Fatal(err)
	}
	if size := st.Blocks * uint64(st.Bsize); size != 1<<20 {
		t.Errorf("df of quota-limited subdir mount = %d bytes, want 1 MiB (quota-deem-statfs)", size)
	}
	// A mount of a missing subdir fails although mount.glusterfs exits 0.
	if mp, err := c.Mount(ctx, "/nonexistent"); err == nil {
		t.Errorf("mount of a missing subdir succeeded: %s", mp)
	} else {
		t.Logf("expected mount failure: %.200s", err)
	}

	snap := takeSnapshot(t, c)
	if len(snap.pids) < 3 { // glusterd, brick, quotad (+ FUSE clients)
		t.Errorf("only %d processes recorded: %v", len(snap.pids), snap.pids)
	}
	t1 := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close 1 node (2 mounts): %v", time.Since(t1))
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	snap.assertGone(t)
	if _, err := c.Mount(ctx, ""); err == nil {
		t.Error("Mount after Close succeeded")
	}
}

func TestIsAuxMount(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{"/usr/sbin/glusterfs", "--volfile-server", "10.215.1.1", "--volfile-id", "svkvol", "-l", "/x.log", "-p", "/run/gluster/svkvol_quota_limit.pid", "--client-pid", "-5", "/run/gluster/svkvol_quota_limit/"}, true},
		{[]string{"glusterfs", "--client-pid=-5", "/mnt"}, true},
		{[]string{"/usr/sbin/glusterfs", "--process-name", "fuse", "--volfile-server=10.215.1.1", "--volfile-id=/svkvol", "/mnt"}, false},
		{[]string{"/usr/sbin/glusterfs", "-s", "10.215.1.1", "--volfile-id", "gluster/quotad", "--client-pid", "-100"}, false},
		{[]string{"/usr/sbin/glusterfsd", "--client-pid", "-5"}, false},
		{[]string{"/usr/sbin/glusterfs", "--client-pid"}, false},
		{nil, false},
	} {
		if got := isAuxMount(tc.argv); got != tc.want {
			t.Errorf("isAuxMount(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestTwoClustersConcurrently(t *testing.T) {
	t.Parallel()
	names := []string{"svkA", "svkB"}
	cs := make([]*Cluster, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs[i], errs[i] = Start(t.Context(), &Options{Volume: names[i], Quota: Bool(false), Logf: t.Logf})
		}()
	}
	wg.Wait()
	t.Logf("two concurrent 1-node starts (no quota): %v", time.Since(t0))
	for i, c := range cs {
		if c != nil {
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatalf("Start %s: %v", names[i], errs[i])
		}
	}
	a, b := cs[0], cs[1]
	if a.Slot() == b.Slot() || a.Servers()[0] == b.Servers()[0] || a.BaseDir() == b.BaseDir() {
		t.Fatalf("clusters share a slot: %d/%d %v/%v", a.Slot(), b.Slot(), a.Servers(), b.Servers())
	}
	for i, c := range cs {
		out, err := c.Gluster(t.Context(), "volume", "list")
		if err != nil || strings.TrimSpace(out) != names[i] {
			t.Errorf("cluster %d: volume list = %q, %v; want only %s", i, out, err, names[i])
		}
		var vi volInfo
		runXML(t, c.Runner(1), &vi, "volume", "info", "all")
		if len(vi.Volumes) != 1 || vi.Volumes[0].Name != names[i] {
			t.Errorf("cluster %d: volume info all = %+v", i, vi.Volumes)
		}
		if got := vi.option("features.quota"); got == "on" {
			t.Errorf("cluster %d: quota on although Quota=false", i)
		}
	}
	ma, mb := a.MountT(t, ""), b.MountT(t, "")
	if err := os.WriteFile(filepath.Join(ma, "only-in-a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mb, "only-in-b"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mnt, has, hasNot string }{{ma, "only-in-a", "only-in-b"}, {mb, "only-in-b", "only-in-a"}} {
		if _, err := os.Stat(filepath.Join(tc.mnt, tc.has)); err != nil {
			t.Errorf("%s: %v", tc.mnt, err)
		}
		if _, err := os.Stat(filepath.Join(tc.mnt, tc.hasNot)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s sees %s of the other cluster (err %v)", tc.mnt, tc.hasNot, err)
		}
	}
	// Close one while the other keeps working.
	snap := takeSnapshot(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	snap.assertGone(t)
	if b, err := os.ReadFile(filepath.Join(mb, "only-in-b")); err != nil || string(b) != "b" {
		t.Errorf("cluster B broken after closing A: %q %v", b, err)
	}
}

func TestThreeNodeFailover(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	c := StartT(t, &Options{Nodes: 3})
	t.Logf("Start 3 nodes: %v", time.Since(t0))
	ctx := t.Context()
	var vi volInfo
	runXML(t, c.Runner(2), &vi, "volume", "info", c.Volume())
	if len(vi.Volumes) != 1 || vi.Volumes[0].TypeStr != "Replicate" || vi.Volumes[0].BrickCount != 3 {
		t.Fatalf("volume info from node 2: %+v", vi.Volumes)
	}
	mnt := c.MountT(t, "")
	if !strings.Contains(strings.Join(procCmdline(clientOf(t, c, mnt)), " "), "--volfile-server="+c.Servers()[1]) {
		t.Errorf("mount has no backup volfile server")
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if err := os.WriteFile(filepath.Join(mnt, "before"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	old := c.GlusterdPID(2)
	t1 := time.Now()
	if err := c.KillNode(2); err != nil {
		t.Fatal(err)
	}
	t.Logf("KillNode(2): %v", time.Since(t1))
	if c.GlusterdPID(2) != 0 || procState(old) == 'S' && mustNetns(old) == c.nodes[1].nsID {
		t.Fatalf("glusterd of node 2 still running")
	}
	if p := pidsInNetns(map[nsID]bool{c.nodes[1].nsID: true}); len(p) != 0 {
		t.Fatalf("processes left in node 2: %v", p)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "before")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with node 2 down: %d bytes, %v", len(got), err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "during"), data, 0o644); err != nil {
		t.Fatalf("write with node 2 down: %v", err)
	}
	if _, _, err := c.Runner(2).Run(ctx, "--mode=script", "volume", "list"); err == nil {
		t.Error("Runner(2) worked with node 2 down")
	}

	t2 := time.Now()
	if err := c.StartNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("StartNode(2): %v", time.Since(t2))
	if c.GlusterdPID(2) == 0 || c.GlusterdPID(2) == old {
		t.Fatalf("GlusterdPID(2) = %d after restart (old %d)", c.GlusterdPID(2), old)
	}
	out, err := c.xmlOn(ctx, 1, "volume", "status", c.Volume())
	if err != nil {
		t.Fatal(err)
	}
	online := 0
	for _, v := range out.VolStatus.Volumes {
		for _, n := range v.Nodes {
			if n.Path == c.BrickPath(2) && n.Hostname == c.Servers()[1] && n.Status == 1 {
				online++
			}
		}
	}
	if online != 1 {
		t.Errorf("brick of node 2 not online per node 1: %+v", out.VolStatus.Volumes)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "during")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after restart: %d bytes, %v", len(got), err)
	}

	// LinkDown/LinkUp toggle node 3's interface.
	if err := c.LinkDown(3); err != nil {
		t.Fatal(err)
	}
	if err := c.LinkUp(3); err != nil {
		t.Fatal(err)
	}
	snap := takeSnapshot(t, c)
	t3 := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close 3 nodes (1 mount): %v", time.Since(t3))
	snap.assertGone(t)
}

// TestCloseAfterKill checks that Close works after KillNode.
func TestCloseAfterKill(t *testing.T) {
	t.Parallel()
	RequirePrereqs(t)
	c, err := Start(t.Context(), &Options{Quota: Bool(false), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.MountT(t, "")
	if err := c.KillNode(1); err != nil {
		t.Fatal(err)
	}
	if c.GlusterdPID(1) != 0 {
		t.Fatal("glusterd still running after KillNode")
	}
	snap := takeSnapshot(t, c) // now only the FUSE client
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	snap.assertGone(t)
}

// TestStartFailureCleansUp checks that a Start that fails half-way (glusterd
// running, volume created, then a bad option) removes everything it made.
func TestStartFailureCleansUp(t *testing.T) {
	t.Parallel()
	RequirePrereqs(t)
	var mu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
	}
	c, err := Start(t.Context(), &Options{Quota: Bool(false), VolumeOptions: map[string]string{"no.such.option": "1"}, Logf: logf})
	if err == nil {
		c.Close()
		t.Fatal("Start with a bad volume option succeeded")
	}
	t.Logf("expected error: %.400s", err)
	if !strings.Contains(err.Error(), "no.such.option") || !strings.Contains(err.Error(), "glusterd.log") {
		t.Errorf("error does not name the option and quote glusterd.log: %v", err)
	}
	var k int
	var base string
	mu.Lock()
	for _, l := range logs {
		if n, _ := fmt.Sscanf(l, "glustertest: slot %d, base dir %s", &k, &base); n == 2 {
			break
		}
	}
	mu.Unlock()
	if base == "" {
		t.Fatalf("no slot/base in the log: %q", logs)
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("base dir %s left behind (%v)", base, err)
	}
	// Unless a concurrent test took the slot meanwhile, nothing of it remains.
	if s, err := lockSlot(k); err == nil {
		defer s.release()
		if slotInUse(k) || s.previousBase() != "" {
			t.Errorf("slot %d left dirty (previous base %q)", k, s.previousBase())
		}
	}
}

// TestStaleSlotSweep simulates a crashed run (slot lock free, netns, veth,
// bridge, a process in the netns and the base dir left behind) and checks
// that the next holder of the slot sweeps it exactly as Start does.
func TestStaleSlotSweep(t *testing.T) {
	t.Parallel()
	RequirePrereqs(t)
	ctx := t.Context()
	// Use a high slot: Start allocates from 1 upwards.
	var slot *slotLock
	for k := MaxSlots; k > MaxSlots-20 && slot == nil; k-- {
		slot, _ = lockSlot(k)
	}
	if slot == nil {
		t.Fatal("no free high slot")
	}
	k := slot.k
	base, err := os.MkdirTemp(baseDirParent, baseDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := slot.record(base); err != nil {
		t.Fatal(err)
	}
	if err := setupBridge(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := setupNode(ctx, k, 1); err != nil {
		t.Fatal(err)
	}
	if err := runIP(ctx, "netns", "exec", netnsName(k, 1), "/bin/sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	id, err := nsOf(filepath.Join(netnsDir, netnsName(k, 1)))
	if err != nil {
		t.Fatal(err)
	}
	stale := pidsInNetns(map[nsID]bool{id: true})
	if len(stale) != 1 || procComm(stale[0]) != "sleep" {
		t.Fatalf("stale pids %v", stale)
	}
	// The "crashed" holder never cleaned up. We keep holding the lock (closing
	// and re-taking it would let a concurrent test process grab the slot in
	// between) and run what Start runs right after taking a slot.
	defer slot.release()
	if slot.previousBase() != base || !slotInUse(k) {
		t.Fatalf("stale slot not detected: previousBase %q inUse %v", slot.previousBase(), slotInUse(k))
	}
	if err := slot.sweepIfDirty(t.Logf); err != nil {
		t.Fatal(err)
	}
	if slotInUse(k) || slot.previousBase() != "" {
		t.Fatal("slot still dirty after sweep")
	}
	if _, err := os.Stat(base); err == nil {
		t.Errorf("stale base dir %s not removed", base)
	}
	if st := procState(stale[0]); st != 0 && st != 'Z' {
		t.Errorf("stale process %d still alive (%c)", stale[0], st)
	}
}

func clientOf(t *testing.T, c *Cluster, mnt string) int {
	t.Helper()
	root, _ := nsOf("/proc/self/ns/net")
	for _, p := range slotClientPIDs(root, slotIPRe(c.Slot())) {
		if args := procCmdline(p); len(args) > 0 && args[len(args)-1] == mnt {
			return p
		}
	}
	t.Fatalf("no glusterfs client for %s", mnt)
	return 0
}

func mustNetns(pid int) nsID {
	id, _ := netnsOfPID(pid)
	return id
}
