package glustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// Names and addresses. Slot k (1..MaxSlots) owns subnet 10.215.k.0/24, the
// bridge svkb<k> (10.215.k.254), netns svk<k>n<n> and root-side veths
// svk<k>v<n>; node n has 10.215.k.n on its eth0. Nothing else on the host
// uses these names, so whatever carries them belongs to this harness.
const (
	// SlotDir holds one lock file per slot; a cluster holds an exclusive
	// flock on its slot's file for its whole life.
	SlotDir = "/run/subvolkit-glustertest/slots"
	// MaxSlots is the number of clusters that can run at once on one host.
	MaxSlots = 200
	// netnsDir is where `ip netns add` pins named namespaces.
	netnsDir = "/run/netns"
	// baseDirPrefix is the prefix of every cluster's base directory.
	baseDirPrefix = "svk-gluster-"
	// baseDirParent is where base directories are created. /tmp rather than
	// $TMPDIR keeps unix socket paths short (108-byte limit).
	baseDirParent = "/tmp"
)

func netnsName(k, n int) string { return fmt.Sprintf("svk%dn%d", k, n) }
func vethName(k, n int) string  { return fmt.Sprintf("svk%dv%d", k, n) }
func bridgeName(k int) string   { return fmt.Sprintf("svkb%d", k) }
func nodeIP(k, n int) string    { return fmt.Sprintf("10.215.%d.%d", k, n) }
func bridgeIP(k int) string     { return fmt.Sprintf("10.215.%d.254", k) }

// slotLock is the held flock of one slot.
type slotLock struct {
	k int
	f *os.File
}

// errSlotBusy is returned by lockSlot when another cluster holds the slot.
var errSlotBusy = errors.New("slot busy")

// lockSlot tries to take slot k (non-blocking).
func lockSlot(k int) (*slotLock, error) {
	if err := os.MkdirAll(SlotDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(SlotDir, strconv.Itoa(k)+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errSlotBusy
		}
		return nil, fmt.Errorf("flock slot %d: %w", k, err)
	}
	return &slotLock{k: k, f: f}, nil
}

// acquireSlot takes the first free slot (non-blocking flock on each file).
// The descriptor is close-on-exec, so no child (glusterd!) inherits the lock:
// if the test process dies, the slot becomes free and the next user sweeps
// whatever was left behind.
func acquireSlot() (*slotLock, error) {
	for k := 1; k <= MaxSlots; k++ {
		s, err := lockSlot(k)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errSlotBusy) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("all %d slots in %s are busy", MaxSlots, SlotDir)
}

// sweepIfDirty cleans what a crashed earlier holder of the slot left behind
// (its lock is free, but its netns, links, mounts, clients or base dir are
// still there). Only this harness uses the slot's names and subnet, and we
// hold the lock, so all of it is ours to remove.
func (s *slotLock) sweepIfDirty(logf func(string, ...any)) error {
	pb := s.previousBase()
	if pb == "" && !slotInUse(s.k) {
		return nil
	}
	logf("glustertest: slot %d: sweeping leftovers of a crashed run (base %q)", s.k, pb)
	if err := sweepSlot(s.k, pb, logf); err != nil {
		return err
	}
	if pb != "" {
		if mountedUnder(pb) {
			return fmt.Errorf("%s still has mounts below it", pb)
		}
		if err := os.RemoveAll(pb); err != nil {
			return err
		}
	}
	return s.f.Truncate(0)
}

// record writes the base dir of the current holder into the lock file so a
// later sweep of a crashed run can remove it.
func (s *slotLock) record(base string) error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.WriteAt([]byte(base+"\n"), 0)
	return err
}

// previousBase returns the base dir recorded by the previous holder, if it
// looks like one of ours.
func (s *slotLock) previousBase() string {
	b := make([]byte, 4096)
	n, _ := s.f.ReadAt(b, 0)
	p := strings.TrimSpace(string(b[:n]))
	if p == "" || filepath.Dir(p) != baseDirParent || !strings.HasPrefix(filepath.Base(p), baseDirPrefix) {
		return ""
	}
	return p
}

// release clears the record and drops the lock.
func (s *slotLock) release() error {
	_ = s.f.Truncate(0)
	err := syscall.Flock(int(s.f.Fd()), syscall.LOCK_UN)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// slotNetns lists the named netns of slot k that exist now.
func slotNetns(k int) []string {
	re := regexp.MustCompile(fmt.Sprintf(`^svk%dn\d+$`, k))
	ents, _ := os.ReadDir(netnsDir)
	var out []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// slotLinks lists the root-namespace links of slot k (veths, then bridge).
func slotLinks(k int) []string {
	re := regexp.MustCompile(fmt.Sprintf(`^svk%dv\d+$`, k))
	ifs, _ := net.Interfaces()
	var out []string
	hasBridge := false
	for _, i := range ifs {
		switch {
		case re.MatchString(i.Name):
			out = append(out, i.Name)
		case i.Name == bridgeName(k):
			hasBridge = true
		}
	}
	if hasBridge {
		out = append(out, bridgeName(k))
	}
	return out
}

// runIP runs `ip args...` and returns an error quoting its output.
func runIP(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, tools.ip, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// setupBridge creates the slot's bridge with 10.215.k.254/24 in the root
// namespace (no forwarding, no default route is touched).
func setupBridge(ctx context.Context, k int) error {
	br := bridgeName(k)
	if err := runIP(ctx, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return err
	}
	if err := runIP(ctx, "addr", "add", bridgeIP(k)+"/24", "dev", br); err != nil {
		return err
	}
	return runIP(ctx, "link", "set", br, "up")
}

// setupNode creates node n's netns and its veth pair (eth0 inside with
// 10.215.k.n/24, svk<k>v<n> outside on the bridge). The namespace gets no
// default route: only its /24 and lo are reachable.
func setupNode(ctx context.Context, k, n int) error {
	ns, veth := netnsName(k, n), vethName(k, n)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", veth, "master", bridgeName(k), "up"},
		{"-n", ns, "addr", "add", nodeIP(k, n) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := runIP(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// sweepSlot removes everything that carries slot k's names or addresses:
// FUSE mounts served by 10.215.k.* (plus any mount under extraBase), newest
// first; every process in the slot's netns and every root-namespace glusterfs
// client naming a 10.215.k.* address (TERM all at once, up to 3 s, then
// KILL); the veths, the netns and the bridge. Only PIDs verified (through a
// pidfd opened before the check) to be in our namespaces or to be our clients
// are signalled. logf may be nil.
func sweepSlot(k int, extraBase string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var errs []error
	re := slotIPRe(k)
	hostRe := regexp.MustCompile(fmt.Sprintf(`^10\.215\.%d\.\d{1,3}$`, k))

	// 1) mounts, newest first.
	ms, err := fsutil.ReadMountinfo()
	if err != nil {
		errs = append(errs, err)
	}
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		ours := m.FSType == "fuse.glusterfs" && hostRe.MatchString(hostOf(m.Source))
		if !ours && extraBase != "" && strings.HasPrefix(m.MountPoint, extraBase+"/") {
			ours = true
		}
		if !ours {
			continue
		}
		logf("unmount %s (%s)", m.MountPoint, m.Source)
		if err := unmount(m.MountPoint); err != nil {
			errs = append(errs, err)
		}
	}

	// 2) processes.
	root, err := nsOf("/proc/self/ns/net")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	nsNames := slotNetns(k)
	ids := map[nsID]bool{}
	for _, ns := range nsNames {
		if id, err := nsOf(filepath.Join(netnsDir, ns)); err == nil {
			ids[id] = true
		}
	}
	inOurNetns := func(pid int) bool {
		id, err := netnsOfPID(pid)
		return err == nil && ids[id]
	}
	isClient := func(pid int) bool { return isSlotClient(pid, root, re) }
	var procs []*owned
	for _, p := range pidsInNetns(ids) {
		if o := grab(p, inOurNetns); o != nil {
			procs = append(procs, o)
		}
	}
	for _, p := range slotClientPIDs(root, re) {
		if o := grab(p, isClient); o != nil {
			procs = append(procs, o)
		}
	}
	if len(procs) > 0 {
		pids := make([]string, len(procs))
		for i, o := range procs {
			pids[i] = strconv.Itoa(o.p.Pid)
		}
		t0 := time.Now()
		left := stopAll(procs, syscall.SIGTERM, 3*time.Second, logf)
		logf("stopped pids %s in %v", strings.Join(pids, " "), time.Since(t0).Round(time.Millisecond))
		if len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes %v survived SIGKILL", left))
		}
	}
	// Processes forked while we were stopping the others (glusterd respawning
	// a brick): one more KILL round for anything still in our netns.
	for i := 0; i < 5; i++ {
		var more []*owned
		for _, p := range pidsInNetns(ids) {
			if o := grab(p, inOurNetns); o != nil {
				more = append(more, o)
			}
		}
		if len(more) == 0 {
			break
		}
		logf("late processes in the slot's netns: SIGKILL %d of them", len(more))
		if left := stopAll(more, syscall.SIGKILL, 2*time.Second, logf); len(left) > 0 && i == 4 {
			errs = append(errs, fmt.Errorf("processes %v survived SIGKILL", left))
		}
	}

	// 3) links and namespaces. Deleting the veth removes both ends at once
	// (deleting only the netns would free eth0 asynchronously).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	links := slotLinks(k)
	for _, l := range links {
		if l == bridgeName(k) {
			continue
		}
		if err := runIP(ctx, "link", "del", l); err != nil && linkExists(l) {
			errs = append(errs, err)
		}
	}
	for _, ns := range nsNames {
		if err := runIP(ctx, "netns", "del", ns); err != nil {
			if _, serr := os.Stat(filepath.Join(netnsDir, ns)); serr == nil {
				errs = append(errs, err)
			}
		}
	}
	if linkExists(bridgeName(k)) {
		if err := runIP(ctx, "link", "del", bridgeName(k)); err != nil && linkExists(bridgeName(k)) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// slotInUse reports whether anything of slot k exists (netns, links, mounts
// or clients), i.e. whether a crashed earlier run left debris.
func slotInUse(k int) bool {
	if len(slotNetns(k)) > 0 || len(slotLinks(k)) > 0 {
		return true
	}
	hostRe := regexp.MustCompile(fmt.Sprintf(`^10\.215\.%d\.\d{1,3}$`, k))
	if ms, err := fsutil.ReadMountinfo(); err == nil {
		for _, m := range ms {
			if m.FSType == "fuse.glusterfs" && hostRe.MatchString(hostOf(m.Source)) {
				return true
			}
		}
	}
	if root, err := nsOf("/proc/self/ns/net"); err == nil {
		if len(slotClientPIDs(root, slotIPRe(k))) > 0 {
			return true
		}
	}
	return false
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// hostOf returns the host part of a "host:/vol/sub" mount source.
func hostOf(source string) string {
	if i := strings.IndexByte(source, ':'); i >= 0 {
		return source[:i]
	}
	return source
}
