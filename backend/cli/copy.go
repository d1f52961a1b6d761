package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// copyTree copies the content of src into the existing directory dst,
// preserving file types, ownership, permission bits (incl. setuid/setgid/
// sticky), timestamps, symlinks and extended attributes (except Gluster's
// and subvolkit's own). Hard links are copied as separate files. It checks
// ctx between files.
func copyTree(ctx context.Context, src, dst string) error {
	type dirTimes struct {
		path string
		fi   fs.FileInfo
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch mode := fi.Mode(); {
		case rel == ".":
			// dst exists; its owner and mode are the clone's own.
			if err := copyXattrs(path, target); err != nil {
				return err
			}
			return nil
		case mode.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, fi})
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := copyFile(path, target); err != nil {
				return err
			}
		default:
			st := fi.Sys().(*syscall.Stat_t)
			if err := syscall.Mknod(target, uint32(st.Mode), int(st.Rdev)); err != nil {
				return &pathErr{"mknod", target, err}
			}
		}
		return copyMeta(path, target, fi)
	})
	if err != nil {
		return err
	}
	// Directory times last, since filling a directory changes its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTimes(dirs[i].path, dirs[i].fi); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta copies owner, mode, xattrs and (for non-directories) times.
func copyMeta(src, dst string, fi fs.FileInfo) error {
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // symlinks keep their own times; their xattrs and modes are not settable
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err := syscall.Chmod(dst, uint32(st.Mode)&0o7777); err != nil {
		return &pathErr{"chmod", dst, err}
	}
	if fi.IsDir() {
		return nil
	}
	return setTimes(dst, fi)
}

func setTimes(path string, fi fs.FileInfo) error {
	st := fi.Sys().(*syscall.Stat_t)
	return os.Chtimes(path, time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
}

// skipXattr reports whether an attribute is Gluster's or ours, never copied.
func skipXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.glusterfs.") || strings.HasPrefix(name, "trusted.gfid") ||
		strings.HasPrefix(name, "trusted.afr.") || strings.HasPrefix(name, "trusted.ec.") ||
		strings.HasPrefix(name, "trusted.subvolkit.") || strings.HasPrefix(name, "glusterfs.")
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if skipXattr(n) {
			continue
		}
		val, err := getXattr(src, n)
		if errors.Is(err, syscall.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syscall.Setxattr(dst, n, val, 0); err != nil {
			return &pathErr{"setxattr " + n, dst, err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := syscall.Listxattr(path, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, syscall.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &pathErr{"listxattr", path, err}
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := syscall.Getxattr(path, name, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", path, name, err)
		}
		return buf[:n], nil
	}
}
