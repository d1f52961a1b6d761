// Package fsutil holds file-system helpers the backends share.
package fsutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// CopyOptions say what CopyTree keeps besides content, file types and
// permission bits (always kept, setuid/setgid/sticky included).
type CopyOptions struct {
	// Owner keeps user and group ids (needs CAP_CHOWN).
	Owner bool
	// Xattrs keeps extended attributes, except those SkipXattr rejects.
	Xattrs    bool
	SkipXattr func(name string) bool
	// Times keeps access and modification times.
	Times bool
	// Special allows device nodes, FIFOs and sockets (made with mknod);
	// without it they are an error.
	Special bool
}

// CopyTree copies the content of the directory src into the existing
// directory dst. Symbolic links are copied, not followed; hard links become
// separate files. dst's own owner and mode are left alone, but src's
// extended attributes are copied onto it when opts.Xattrs is set.
// Directory metadata is applied last, deepest first, so that a read-only
// directory is still filled. CopyTree checks ctx between entries.
func CopyTree(ctx context.Context, src, dst string, opts *CopyOptions) error {
	if opts == nil {
		opts = &CopyOptions{}
	}
	type dirMeta struct {
		src, dst string
		fi       fs.FileInfo
	}
	var dirs []dirMeta
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
		if rel == "." {
			if opts.Xattrs {
				return copyXattrs(path, target, opts.SkipXattr)
			}
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch mode := fi.Mode(); {
		case mode.IsDir():
			// Writable while we fill it; its metadata is set at the end.
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{path, target, fi})
			return nil
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			if opts.Owner {
				st := fi.Sys().(*syscall.Stat_t)
				return os.Lchown(target, int(st.Uid), int(st.Gid))
			}
			return nil
		case mode.IsRegular():
			if err := copyFile(path, target); err != nil {
				return err
			}
		default:
			if !opts.Special {
				return fmt.Errorf("%s: cannot copy a file of type %v", path, mode.Type())
			}
			st := fi.Sys().(*syscall.Stat_t)
			if err := syscall.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return &os.PathError{Op: "mknod", Path: target, Err: err}
			}
		}
		return copyMeta(path, target, fi, opts)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := copyMeta(dirs[i].src, dirs[i].dst, dirs[i].fi, opts); err != nil {
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

// copyMeta copies owner, xattrs, mode and times of a non-symlink.
func copyMeta(src, dst string, fi fs.FileInfo, opts *CopyOptions) error {
	st := fi.Sys().(*syscall.Stat_t)
	if opts.Owner {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if opts.Xattrs {
		if err := copyXattrs(src, dst, opts.SkipXattr); err != nil {
			return err
		}
	}
	// chmod after chown: chown clears the setuid and setgid bits.
	if err := syscall.Chmod(dst, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: dst, Err: err}
	}
	if opts.Times {
		return os.Chtimes(dst, time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
	}
	return nil
}

func copyXattrs(src, dst string, skip func(string) bool) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if skip != nil && skip(n) {
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
			return &os.PathError{Op: "setxattr " + n, Path: dst, Err: err}
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
			return nil, &os.PathError{Op: "listxattr", Path: path, Err: err}
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
			return nil, &os.PathError{Op: "getxattr " + name, Path: path, Err: err}
		}
		return buf[:n], nil
	}
}
