package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
)

// Quota extended attributes, readable only through a mount made with an
// internal client pid (a normal mount answers "No such attribute").
const (
	xattrLimitSet = "trusted.glusterfs.quota.limit-set" // hard limit, soft limit: 2 × int64 BE
	xattrSize     = "trusted.glusterfs.quota.size"      // used bytes, files, dirs: 3 × int64 BE
)

// quotaClientPID is the client pid glusterd's own quota aux mounts use
// (GF_CLIENT_PID_QUOTA_MOUNT). Such a mount may read the quota xattrs. It
// is used for reading only: limits are set through the CLI, so glusterd's
// quota.conf stays true.
const quotaClientPID = "-5"

// auxCacheOptions are the client options of the aux mounts: they let one
// ReadDir of a directory fetch, with its entries, their owner markers (the
// metadata cache asks the bricks for the listed extended attributes in
// READDIRPLUS and look-ups), so that List's marker reads need no round
// trip each; with sizes, the quota sizes too. The cache keeps a value for
// at most md-cache-timeout (1 s, set here whatever the volume says). The
// options apply to the volume's md-cache translator
// (performance.stat-prefetch, on by default); without it they change
// nothing.
//
// Only the list mount caches sizes (see listMount). On the quota aux
// mount, which reads limits back after Create, Clone and Resize, a cached
// size stayed with an entry looked up in the staging area after its rename,
// so that a Usage right after a clone showed the empty directory's.
func auxCacheOptions(volume string, sizes bool) []string {
	list := markerXattr
	if sizes {
		list += "," + xattrSize
	}
	return []string{
		"--xlator-option=" + volume + "-md-cache.xattr-cache-list=" + list,
		"--xlator-option=" + volume + "-md-cache.md-cache-timeout=1",
	}
}

// mountAux mounts the volume a second time, on dir, with the quota client
// pid, so that limits and usage can be read with a getxattr (well under a
// millisecond) instead of a `quota list` CLI call (about 50 ms, and
// serialized with every other quota call on the volume). With sizes, its
// client caches quota sizes too (the list mount). It reuses a live aux
// mount there and reports whether it mounted one itself.
func (b *Backend) mountAux(ctx context.Context, dir string, sizes bool) (mounted bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil && !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		return false, err
	}
	if ok, err := b.mounter.IsMountPoint(dir); err == nil && ok {
		if _, err := b.auxLimit(dir, "."); err == nil || errors.Is(err, syscall.ENODATA) {
			return false, nil // a live aux mount of an earlier Open
		}
		_ = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	args := []string{"--client-pid=" + quotaClientPID, "--process-name=fuse.subvolkit-quota",
		"--log-file=" + dir + ".log"}
	args = append(args, auxCacheOptions(b.opts.Volume, sizes)...)
	for _, s := range b.opts.Servers {
		args = append(args, "--volfile-server="+s)
	}
	args = append(args, "--volfile-id="+b.opts.Volume, dir)
	cmd := exec.CommandContext(ctx, b.opts.GlusterfsPath, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("%s %v: %w: %s", b.opts.GlusterfsPath, args, err, out)
	}
	// glusterfs daemonizes before the mount is up: wait for it (bounded).
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ok, _ := b.mounter.IsMountPoint(dir); ok {
			if _, err := b.auxLimit(dir, "."); err == nil || errors.Is(err, syscall.ENODATA) {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			_ = b.mounter.Unmount(dir)
			return false, fmt.Errorf("quota aux mount on %s did not come up", dir)
		}
		select {
		case <-ctx.Done():
			_ = b.mounter.Unmount(dir)
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// auxLimit reads the hard limit of path (relative to dir) from its xattr.
func (b *Backend) auxLimit(dir, path string) (int64, error) {
	buf := make([]byte, 32)
	n, err := syscall.Getxattr(filepath.Join(dir, path), xattrLimitSet, buf)
	if err != nil {
		return 0, err
	}
	if n < 8 {
		return 0, fmt.Errorf("%s of %s: %d bytes", xattrLimitSet, path, n)
	}
	return int64(binary.BigEndian.Uint64(buf[:8])), nil
}

// auxUsage reads the accounted size, files and directories of path
// (relative to dir, an aux mount).
func (b *Backend) auxUsage(dir, path string) (used, files, dirs int64, err error) {
	buf := make([]byte, 32)
	n, err := syscall.Getxattr(filepath.Join(dir, path), xattrSize, buf)
	if err != nil {
		return 0, 0, 0, err
	}
	files, dirs = -1, -1
	switch {
	case n >= 24:
		files = int64(binary.BigEndian.Uint64(buf[8:16]))
		dirs = int64(binary.BigEndian.Uint64(buf[16:24]))
		fallthrough
	case n >= 8:
		used = int64(binary.BigEndian.Uint64(buf[:8]))
	default:
		return 0, 0, 0, fmt.Errorf("%s of %s: %d bytes", xattrSize, path, n)
	}
	if used < 0 {
		used = 0 // the marker can briefly go negative while a delete is accounted
	}
	return used, files, dirs, nil
}

// readLimitAux reads name's limit and (if usage) usage through the aux mount. A path
// missing or without a limit is retried briefly (a lookup through a second
// mount can trail the first by a moment) and then reported as the CLI would:
// NotFound, or Hard -1.
func (b *Backend) readLimitAux(ctx context.Context, name string, usage bool) (quotaLimit, error) {
	delay := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		hard, err := b.auxLimit(b.aux, name)
		if err == nil {
			l := quotaLimit{Path: volPath(name), Hard: hard, Files: -1, Dirs: -1}
			if !usage {
				return l, nil
			}
			if used, files, dirs, uerr := b.auxUsage(b.aux, name); uerr == nil {
				l.Used, l.Files, l.Dirs = used, files, dirs
			}
			return l, nil
		}
		transient := errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENODATA)
		if !transient || attempt == 6 {
			switch {
			case errors.Is(err, syscall.ENOENT):
				return quotaLimit{}, subvolkit.Errorf(subvolkit.NotFound, "", "", "%s: no such path on volume %s", volPath(name), b.opts.Volume)
			case errors.Is(err, syscall.ENODATA):
				return quotaLimit{Path: volPath(name), Hard: -1}, nil
			}
			return quotaLimit{}, subvolkit.E(subvolkit.Unavailable, "", "", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return quotaLimit{}, subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
		case <-t.C:
		}
		delay *= 2
	}
}

// listMount returns the mount List reads through, mounting it on first
// use: a third client of the volume, on MountDir/list, made like the quota
// aux mount but caching quota sizes with the markers (auxCacheOptions), so
// that one ReadDir of the root brings every entry's usage along. Only List
// reads through it, and only the root and its entries: every entry its
// client knows it has seen at the root, where each ReadDir renews the
// cached values, so a List's usage is as fresh as its ReadDir. A list mount
// found dead is mounted again. Without an aux mount, or if the list mount
// cannot be made, it returns the aux mount ("" if there is none).
func (b *Backend) listMount(ctx context.Context) string {
	if b.aux == "" {
		return ""
	}
	b.listMu.Lock()
	defer b.listMu.Unlock()
	if b.listDir != "" {
		if _, err := b.auxLimit(b.listDir, "."); err == nil || errors.Is(err, syscall.ENODATA) {
			return b.listDir
		}
		_ = syscall.Unmount(b.listDir, syscall.MNT_DETACH)
	}
	dir := filepath.Join(b.ownDir, "list")
	mounted, err := b.mountAux(ctx, dir, true)
	if err != nil {
		b.log.WarnContext(ctx, "no list mount; listing through the quota aux mount", "err", err)
		return b.aux
	}
	b.listDir = dir
	if mounted {
		b.listMounted.Store(true)
	}
	return dir
}
