package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mountutils "k8s.io/mount-utils"
)

// glfs-subvol, the shell driver this one replaces, keeps one shared FUSE
// mount per (first server, volume) at <driver dir>/.mnt/<server>-<volume>
// and binds pods' mount dirs from it, guarded by the lock file
// /var/lock/glfs-subvol/<server>-<volume>.lock. A node can swap drivers with
// pods running: their mount dirs stay binds of those legacy mounts. This
// driver adopts them on unmount: it removes the bind and, when it was the
// last, the legacy shared mount and its directory, under the same lock, as
// glfs-subvol would. New pods get this driver's own shared mounts.

// mountRow is one line of the mount table, as far as the legacy logic needs.
type mountRow struct {
	path, dev, fstype string
}

// table reads the mount table: mountinfo on a real node (dev is
// major:minor), else the Interface's list (a fake's, in tests), where each
// glusterfs mount is a device and a bind has the device of the glusterfs
// mount holding its source.
func (d *Driver) table() ([]mountRow, error) {
	if d.iface != nil {
		mps, err := d.iface.List()
		if err != nil {
			return nil, err
		}
		rows := make([]mountRow, 0, len(mps))
		for _, mp := range mps {
			r := mountRow{path: mp.Path, dev: mp.Device, fstype: mp.Type}
			if isGlusterFS(mp.Type) {
				r.dev = "fuse " + mp.Path // each FUSE mount is a device of its own
			} else if filepath.IsAbs(mp.Device) {
				// A bind: /proc/mounts shows the source of the
				// glusterfs mount that holds the directory.
				best := ""
				for _, o := range rows {
					if isGlusterFS(o.fstype) && mountutils.PathWithinBase(mp.Device, o.path) && len(o.path) > len(best) {
						best, r.dev, r.fstype = o.path, o.dev, o.fstype
					}
				}
			}
			rows = append(rows, r)
		}
		return rows, nil
	}
	infos, err := mountutils.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	rows := make([]mountRow, 0, len(infos))
	for _, mi := range infos {
		rows = append(rows, mountRow{
			path: unescapeOctal(mi.MountPoint), dev: fmt.Sprintf("%d:%d", mi.Major, mi.Minor), fstype: mi.FsType,
		})
	}
	return rows, nil
}

func isGlusterFS(fstype string) bool { return fstype == "fuse.glusterfs" || fstype == "glusterfs" }

// legacyOf returns glfs-subvol's shared mount that target is a bind of.
func (d *Driver) legacyOf(target string) (string, bool) {
	if d.cfg.LegacyMountDir == "" {
		return "", false
	}
	rows, err := d.table()
	if err != nil {
		return "", false
	}
	canon := target
	if r, err := filepath.EvalSymlinks(target); err == nil {
		canon = r
	}
	var dev string
	for _, r := range rows {
		if (r.path == target || r.path == canon) && isGlusterFS(r.fstype) {
			dev = r.dev // the last one: the top of the stack
		}
	}
	if dev == "" {
		return "", false
	}
	for _, r := range rows {
		if r.dev == dev && isGlusterFS(r.fstype) && filepath.Dir(r.path) == filepath.Clean(d.cfg.LegacyMountDir) {
			return r.path, true
		}
	}
	return "", false
}

// releaseLegacy unmounts glfs-subvol's shared mount mp and removes its
// directory if nothing else shows it any more, under glfs-subvol's lock.
// It reports whether it did.
func (d *Driver) releaseLegacy(ctx context.Context, mp string) (bool, error) {
	unlock, err := lockFile(ctx, filepath.Join(d.legacyLockDir(), filepath.Base(mp)+".lock"))
	if err != nil {
		return false, err
	}
	defer unlock()
	rows, err := d.table()
	if err != nil {
		return false, err
	}
	var dev string
	for _, r := range rows {
		if r.path == mp && isGlusterFS(r.fstype) {
			dev = r.dev
		}
	}
	if dev == "" {
		return false, nil // gone already
	}
	for _, r := range rows {
		if r.dev == dev && r.path != mp {
			d.log.Printf("%s is still used by %s", mp, r.path)
			return false, nil
		}
	}
	d.log.Printf("We were last user of %s; unmounting it.", mp)
	d.log.Command("umount " + mp)
	iface := d.iface
	if iface == nil {
		iface = mountutils.New("")
	}
	if err := iface.Unmount(mp); err != nil {
		return false, fmt.Errorf("unmounting glfs-subvol's shared mount %s: %w", mp, err)
	}
	d.log.Command("rmdir " + mp)
	if err := os.Remove(mp); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Printf("WARN removing %s: %v", mp, err)
	}
	return true, nil
}

func (d *Driver) legacyLockDir() string {
	if d.cfg.LegacyLockDir != "" {
		return d.cfg.LegacyLockDir
	}
	return LegacyLockDir
}

// lockFile takes an flock(2) on path (created if needed), as flock(1) does
// in glfs-subvol, giving up when ctx is done.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// legacyName is glfs-subvol's name of the shared mount of volume from
// server: "<server>-<volume>" with '/' as '-'.
func legacyName(server, volume string) string {
	return strings.ReplaceAll(server+"-"+volume, "/", "-")
}
