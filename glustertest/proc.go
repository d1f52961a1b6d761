package glustertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// nsID identifies a namespace by the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

// nsOf returns the namespace behind path (/run/netns/X or /proc/PID/ns/net).
func nsOf(path string) (nsID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// netnsOfPID returns the network namespace of pid. Zombies and vanished
// processes give an error (the kernel drops a task's namespaces on exit).
func netnsOfPID(pid int) (nsID, error) {
	return nsOf("/proc/" + strconv.Itoa(pid) + "/ns/net")
}

// allPIDs lists the thread-group ids in /proc.
func allPIDs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if p, err := strconv.Atoi(n); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	sort.Ints(pids)
	return pids
}

// pidsInNetns returns every live (non-zombie) process whose network namespace
// is one of ids, like `ip netns pids` for several namespaces at once.
func pidsInNetns(ids map[nsID]bool) []int {
	if len(ids) == 0 {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, p := range allPIDs() {
		if p == self {
			continue
		}
		if id, err := netnsOfPID(p); err == nil && ids[id] {
			out = append(out, p)
		}
	}
	return out
}

// procState returns the state letter of pid from /proc/PID/stat (0 if gone).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// procComm returns /proc/PID/comm without the newline ("" if gone).
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procCmdline returns the argv of pid ("" entries removed; nil if gone).
func procCmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	var args []string
	for _, a := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		args = append(args, string(a))
	}
	return args
}

// slotIPRe matches an IPv4 address of slot k inside a longer string.
func slotIPRe(k int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`(?:^|[^0-9.])10\.215\.%d\.\d{1,3}(?:[^0-9.]|$)`, k))
}

// isSlotClient reports whether pid is a glusterfs client process in network
// namespace root whose command line names an address of slot k (re).
func isSlotClient(pid int, root nsID, re *regexp.Regexp) bool {
	args := procCmdline(pid)
	if len(args) == 0 || filepath.Base(args[0]) != "glusterfs" {
		return false
	}
	if id, err := netnsOfPID(pid); err != nil || id != root {
		return false
	}
	for _, a := range args[1:] {
		if re.MatchString(a) {
			return true
		}
	}
	return false
}

// slotClientPIDs lists the glusterfs clients (FUSE mounts, gfapi-less helper
// mounts) in network namespace root that talk to slot k's subnet.
func slotClientPIDs(root nsID, re *regexp.Regexp) []int {
	self := os.Getpid()
	var out []int
	for _, p := range allPIDs() {
		if p != self && isSlotClient(p, root, re) {
			out = append(out, p)
		}
	}
	return out
}

// owned is a process we are allowed to signal: a pidfd-backed handle that was
// opened BEFORE the ownership check, so a recycled PID can never be hit (the
// handle keeps pointing at the process that was checked, or at a dead one).
type owned struct {
	p     *os.Process
	check func(pid int) bool
}

// grab opens a handle on pid and keeps it if check(pid) still holds.
func grab(pid int, check func(int) bool) *owned {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	if !check(pid) {
		_ = p.Release()
		return nil
	}
	return &owned{p: p, check: check}
}

// alive reports whether the process still runs (zombies count as gone: they
// hold no sockets, files or namespaces any more; pid 1 reaps them).
func (o *owned) alive() bool {
	if err := o.p.Signal(syscall.Signal(0)); err != nil {
		return false
	}
	st := procState(o.p.Pid)
	return st != 0 && st != 'Z' && st != 'X'
}

// signal sends sig if the process is still alive and still ours.
func (o *owned) signal(sig syscall.Signal) {
	if !o.alive() || !o.check(o.p.Pid) {
		return
	}
	_ = o.p.Signal(sig)
}

// stopAll sends first to every process at once, waits up to grace for them to
// exit, then SIGKILLs the rest (telling logf) and waits up to 2 s more. It returns the PIDs
// that still run at the end (should be none).
func stopAll(procs []*owned, first syscall.Signal, grace time.Duration, logf func(string, ...any)) []int {
	defer func() {
		for _, o := range procs {
			_ = o.p.Release()
		}
	}()
	for _, o := range procs {
		o.signal(first)
	}
	left := waitGone(procs, grace)
	if len(left) > 0 && first != syscall.SIGKILL {
		var desc []string
		for _, o := range left {
			desc = append(desc, fmt.Sprintf("%d(%s)", o.p.Pid, procComm(o.p.Pid)))
		}
		logf("still running %v after signal %d, SIGKILL: %s", grace, first, strings.Join(desc, " "))
		for _, o := range left {
			o.signal(syscall.SIGKILL)
		}
		left = waitGone(left, 2*time.Second)
	}
	var pids []int
	for _, o := range left {
		pids = append(pids, o.p.Pid)
	}
	return pids
}

// waitGone polls every 50 ms until every process is gone or d has passed, and
// returns the ones still alive.
func waitGone(procs []*owned, d time.Duration) []*owned {
	deadline := time.Now().Add(d)
	for {
		var left []*owned
		for _, o := range procs {
			if o.alive() {
				left = append(left, o)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		procs = left
		time.Sleep(50 * time.Millisecond)
	}
}

// isMounted reports whether path is a mount point of type fsType ("" = any).
func isMounted(path, fsType string) bool {
	ms, err := fsutil.ReadMountinfo()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.MountPoint == path && (fsType == "" || m.FSType == fsType) {
			return true
		}
	}
	return false
}

// unmount unmounts path, falling back to a lazy (detaching) unmount.
func unmount(path string) error {
	err := syscall.Unmount(path, 0)
	if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err2 := syscall.Unmount(path, syscall.MNT_DETACH); err2 != nil &&
		!errors.Is(err2, syscall.EINVAL) && !errors.Is(err2, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %v; lazy unmount: %v", path, err, err2)
	}
	return nil
}

// tailFile returns the last max bytes of a file (whole lines), for errors.
func tailFile(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	buf = buf[:n]
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return strings.TrimRight(string(buf), "\n")
}
