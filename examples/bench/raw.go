package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The raw baseline: what a script without subvolkit does, through the same
// gluster CLI runner and the same FUSE mount of the volume root.

// gluster runs the gluster CLI in script mode and returns its stdout. Like
// a careful script (and like the cli backend), it retries while glusterd's
// volume lock is taken by another transaction ("Another transaction is in
// progress") or glusterd's own quota aux mount is not connected ("Failed to
// find the directory /var/run/gluster/VOL_quota_limit/…: Transport endpoint
// is not connected", seen with quota calls back to back), doubling a 50 ms
// delay up to 2 s, for at most a minute.
func (t *target) gluster(ctx context.Context, args ...string) ([]byte, error) {
	delay := 50 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := t.glusterOnce(ctx, args...)
		if err == nil || !transient(err.Error()) || time.Now().After(deadline) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// transient reports a gluster CLI failure that the same call may not meet
// again (see gluster).
func transient(msg string) bool {
	return strings.Contains(msg, "Another transaction is in progress") ||
		strings.Contains(msg, "_quota_limit") && strings.Contains(msg, "not connected")
}

// glusterOnce runs the gluster CLI once, as a naive script does.
func (t *target) glusterOnce(ctx context.Context, args ...string) ([]byte, error) {
	out, errOut, err := t.runner.Run(ctx, append([]string{"--mode=script"}, args...)...)
	if err != nil {
		return out, fmt.Errorf("gluster %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)+" "+string(errOut)))
	}
	return out, nil
}

// rawAllocate is mkdir + `volume quota VOL limit-usage /name SIZE`,
// retried while the volume lock is busy.
func (t *target) rawAllocate(ctx context.Context, name string, size int64) error {
	return t.rawAllocateWith(ctx, t.gluster, name, size)
}

// rawAllocateWith is rawAllocate through run (gluster or glusterOnce).
func (t *target) rawAllocateWith(ctx context.Context, run func(context.Context, ...string) ([]byte, error), name string, size int64) error {
	if err := os.Mkdir(filepath.Join(t.root, name), 0o755); err != nil {
		return err
	}
	_, err := run(ctx, "volume", "quota", t.volume, "limit-usage", "/"+name, strconv.FormatInt(size, 10))
	return err
}

// rawDelete is `volume quota VOL remove /name` + rm -rf. A directory
// without a limit (a failed rawAllocate) is removed all the same.
func (t *target) rawDelete(ctx context.Context, name string) error {
	// Keep the directory while its limit may still be set: removing it
	// would leave a stale entry in the volume's quota.conf.
	if _, err := t.gluster(ctx, "volume", "quota", t.volume, "remove", "/"+name); err != nil && !noLimit(err) {
		return err
	}
	return os.RemoveAll(filepath.Join(t.root, name))
}

// noLimit reports whether err is `quota remove`'s answer for a directory
// without a limit (glusterd 10: "removexattr failed … No data available").
func noLimit(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No data available") || strings.Contains(msg, "No limit") ||
		strings.Contains(msg, "No such file")
}

// rawQuotaList is `volume quota VOL list --xml`: every limit and its usage.
func (t *target) rawQuotaList(ctx context.Context) ([]byte, error) {
	return t.gluster(ctx, "--xml", "volume", "quota", t.volume, "list")
}

// cpA is `cp -a src/. dst/`.
func cpA(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", src+"/.", dst+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}
