// Package fsutil holds file-system helpers the backends share.
package fsutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
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
	// Workers is how many files are copied at once; 0 means a default
	// (8). The walk itself is sequential.
	Workers int
	// Progress, when set, is called with the running totals after each
	// copied entry (directories too, unchanged totals then) and after each
	// chunk (at most 64 MiB) of a file's content, so that a long copy shows
	// it moves. Calls are
	// serialized but come from CopyTree's goroutines.
	Progress func(CopyProgress)
}

// CopyProgress is the running total CopyTree reports.
type CopyProgress struct {
	// Entries counts copied non-directory entries (files, links, symlinks,
	// special files).
	Entries int64
	// Bytes counts copied file content (holes of sparse files excluded).
	Bytes int64
}

const (
	defaultWorkers = 8
	copyBufSize    = 1 << 20
	// copyChunk bounds one copy_file_range call, so that Progress hears
	// of a big file's copy at least every 64 MiB.
	copyChunk = 64 << 20
)

// CopyTree copies the content of the directory src into the existing
// directory dst. Symbolic links are copied, not followed; hard links inside
// src stay hard links; holes of sparse files stay holes. dst's own owner and
// mode are left alone, but src's extended attributes are copied onto it when
// opts.Xattrs is set. Directory metadata is applied last, deepest first, so
// that a read-only directory is still filled. Regular files are copied by
// opts.Workers goroutines, each file with as few calls as the kernel allows
// (created with its final mode, owner, attributes and times set on the open
// descriptor, copy_file_range where supported, no fsync: the caller syncs if
// it must). CopyTree checks ctx between entries; on error or cancellation
// dst is left partly filled.
func CopyTree(ctx context.Context, src, dst string, opts *CopyOptions) error {
	if opts == nil {
		opts = &CopyOptions{}
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &copier{
		parent: parent, ctx: ctx, cancel: cancel, opts: opts,
		umask: readUmask(), euid: os.Geteuid(), egid: os.Getegid(),
		inodes: map[devIno]string{},
		bufs:   sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }},
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWorkers
	}
	jobs := make(chan fileJob, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if c.stopped() {
					continue
				}
				if err := c.copyRegular(j); err != nil {
					cancel(err)
				}
			}
		})
	}
	walkErr := c.walk(src, dst, jobs)
	close(jobs)
	wg.Wait()
	if err := firstErr(walkErr, context.Cause(ctx)); err != nil {
		return err
	}
	// Later names of hard-linked files, once their first name is complete.
	for _, l := range c.links {
		if err := os.Link(l.old, l.new); err != nil {
			return err
		}
		c.report(1, 0)
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if err := c.copyPathMeta(c.dirs[i].src, c.dirs[i].dst, c.dirs[i].st); err != nil {
			return err
		}
		c.report(0, 0) // a directory is no entry of the count, but it moves
	}
	return nil
}

type devIno struct{ dev, ino uint64 }

type fileJob struct {
	src, dst string
	st       *syscall.Stat_t
}

type dirMeta struct {
	src, dst string
	st       *syscall.Stat_t
}

type copier struct {
	parent context.Context // the caller's, asked directly between entries
	ctx    context.Context
	cancel context.CancelCauseFunc
	opts   *CopyOptions
	umask  int // -1 if unknown
	euid   int
	egid   int
	bufs   sync.Pool

	mu       sync.Mutex // guards the fields below
	inodes   map[devIno]string
	links    []struct{ old, new string }
	dirs     []dirMeta
	progress CopyProgress
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
	}
	return nil
}

var errStop = errors.New("stopped")

// stopped reports whether the copy must stop: an error elsewhere, or the
// caller's context done. The caller's Err is asked directly, not only
// through Done, so any context implementation is honoured.
func (c *copier) stopped() bool {
	if c.ctx.Err() != nil {
		return true
	}
	if err := c.parent.Err(); err != nil {
		c.cancel(err)
		return true
	}
	return false
}

// walk creates directories, symlinks and special files itself and hands
// regular files to the workers.
func (c *copier) walk(src, dst string, jobs chan<- fileJob) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if c.stopped() {
			return errStop
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if rel == "." {
			if c.opts.Xattrs {
				return c.copyXattrsPath(path, target)
			}
			return nil
		}
		st := new(syscall.Stat_t)
		if err := syscall.Lstat(path, st); err != nil {
			return &os.PathError{Op: "lstat", Path: path, Err: err}
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			// Writable while we fill it; its metadata is set at the end.
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			c.mu.Lock()
			c.dirs = append(c.dirs, dirMeta{path, target, st})
			c.mu.Unlock()
			c.report(0, 0)
			return nil
		case syscall.S_IFLNK:
			return c.copySymlink(path, target, st)
		case syscall.S_IFREG:
			if st.Nlink > 1 {
				key := devIno{uint64(st.Dev), st.Ino}
				c.mu.Lock()
				first, seen := c.inodes[key]
				if seen {
					c.links = append(c.links, struct{ old, new string }{first, target})
				} else {
					c.inodes[key] = target
				}
				c.mu.Unlock()
				if seen {
					return nil
				}
			}
			select {
			case jobs <- fileJob{path, target, st}:
				return nil
			case <-c.ctx.Done():
				return errStop
			}
		default:
			if !c.opts.Special {
				return fmt.Errorf("%s: cannot copy a file of type %v", path, fs.FileMode(st.Mode&syscall.S_IFMT))
			}
			if err := syscall.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return &os.PathError{Op: "mknod", Path: target, Err: err}
			}
			if err := c.copyPathMeta(path, target, st); err != nil {
				return err
			}
			c.report(1, 0)
			return nil
		}
	})
}

// report adds entries and bytes to the running totals and calls
// Progress with them.
func (c *copier) report(entries, bytes int64) {
	if c.opts.Progress == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress.Entries += entries
	c.progress.Bytes += bytes
	c.opts.Progress(c.progress)
}

func (c *copier) copySymlink(src, dst string, st *syscall.Stat_t) error {
	link, err := os.Readlink(src)
	if err != nil {
		return err
	}
	if err := os.Symlink(link, dst); err != nil {
		return err
	}
	if c.opts.Owner && (int(st.Uid) != c.euid || int(st.Gid) != c.egid) {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if c.opts.Times {
		ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lutimes", Path: dst, Err: err}
		}
	}
	c.report(1, 0)
	return nil
}

// copyRegular copies one regular file: open, create with the final
// permission bits, content, then owner, attributes, special bits and times
// on the open descriptor.
func (c *copier) copyRegular(j fileJob) error {
	in, err := os.OpenFile(j.src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	perm := j.st.Mode & 0o777
	out, err := os.OpenFile(j.dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(perm))
	if err != nil {
		return err
	}
	err = c.copyContent(in, out, j.st) // its bytes are reported as they are copied
	if err == nil {
		err = c.fdMeta(in, out, j.st)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c.report(1, 0)
	return nil
}

func (c *copier) fdMeta(in, out *os.File, st *syscall.Stat_t) error {
	fd := int(out.Fd())
	if c.opts.Owner && (int(st.Uid) != c.euid || int(st.Gid) != c.egid) {
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return &os.PathError{Op: "fchown", Path: out.Name(), Err: err}
		}
	}
	if c.opts.Xattrs {
		if err := c.copyXattrsFd(int(in.Fd()), fd, in.Name(), out.Name()); err != nil {
			return err
		}
	}
	// The create already gave perm &^ umask; chmod only where that is not
	// the mode, or for setuid/setgid/sticky (after chown, which clears them).
	mode := st.Mode & 0o7777
	if mode&0o7000 != 0 || c.umask < 0 || int(mode)&c.umask != 0 {
		if err := unix.Fchmod(fd, mode); err != nil {
			return &os.PathError{Op: "fchmod", Path: out.Name(), Err: err}
		}
	}
	if c.opts.Times {
		ts := [2]unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
		// futimens(fd, ts): utimensat with a NULL path acts on fd.
		if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
			return &os.PathError{Op: "futimens", Path: out.Name(), Err: e}
		}
	}
	return nil
}

// copyContent copies the data of in to out, keeping holes: for a file with
// fewer blocks than its size it copies only the ranges SEEK_DATA finds.
func (c *copier) copyContent(in, out *os.File, st *syscall.Stat_t) error {
	size := st.Size
	if size == 0 {
		return nil
	}
	if st.Blocks*512 >= size {
		return c.copyRange(in, out, 0, size)
	}
	ifd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			// No SEEK_DATA here: copy the rest densely.
			return c.copyRange(in, out, off, size-off)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		hole = min(hole, size)
		if err := c.copyRange(in, out, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Truncate(size)
}

// Big ranges are copied as several parts side by side: over a GlusterFS
// FUSE mount each copy_file_range becomes one copy on the brick, and two to
// four of them at once copied a 200 MiB file 1.07–1.12× as fast as one (and
// as cp -a, which makes one); eight were slower again.
const (
	rangePartMin = 16 << 20 // no part is smaller
	rangeParts   = 4        // at most this many parts
	rangeAlign   = 1 << 20  // parts start at multiples of this
)

// copyRange copies length bytes at off, with copy_file_range where the file
// systems support it and read/write otherwise; a range of at least two
// parts' worth is copied as up to rangeParts parts at once.
func (c *copier) copyRange(in, out *os.File, off, length int64) error {
	parts := min(rangeParts, length/rangePartMin)
	if parts < 2 {
		return c.copyPart(in, out, off, length)
	}
	part := (length/parts + rangeAlign - 1) &^ (rangeAlign - 1)
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for i := range parts {
		poff := off + i*part
		plen := min(part, off+length-poff)
		if plen <= 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.copyPart(in, out, poff, plen)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil { // errStop too: the caller must not take the file as whole
			return err
		}
	}
	return nil
}

// copyPart copies length bytes at off, with copy_file_range where the file
// systems support it and read/write otherwise.
func (c *copier) copyPart(in, out *os.File, off, length int64) error {
	roff, woff := off, off
	var done int64
	for done < length {
		n, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(length-done, copyChunk)), 0)
		if err != nil {
			if done == 0 && (errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EOPNOTSUPP) ||
				errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL)) {
				return c.readWrite(in, out, off, length)
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return &os.PathError{Op: "copy_file_range", Path: out.Name(), Err: err}
		}
		if n == 0 {
			break // src shrank under us
		}
		done += int64(n)
		c.report(0, int64(n))
	}
	return nil
}

func (c *copier) readWrite(in, out *os.File, off, length int64) error {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	var done int64
	for done < length {
		if c.stopped() {
			return errStop // a big file stops between chunks too
		}
		n, err := in.ReadAt(buf[:min(int64(len(buf)), length-done)], off+done)
		if n > 0 {
			if _, werr := out.WriteAt(buf[:n], off+done); werr != nil {
				return werr
			}
			done += int64(n)
			c.report(0, int64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyPathMeta copies owner, xattrs, mode and times of a non-symlink by
// path (directories and special files).
func (c *copier) copyPathMeta(src, dst string, st *syscall.Stat_t) error {
	if c.opts.Owner {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if c.opts.Xattrs {
		if err := c.copyXattrsPath(src, dst); err != nil {
			return err
		}
	}
	// chmod after chown: chown clears the setuid and setgid bits.
	if err := syscall.Chmod(dst, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: dst, Err: err}
	}
	if c.opts.Times {
		ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: dst, Err: err}
		}
	}
	return nil
}

func (c *copier) copyXattrsPath(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if c.opts.SkipXattr != nil && c.opts.SkipXattr(n) {
			continue
		}
		val, err := getXattr(src, n)
		if errors.Is(err, syscall.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, n, val, 0); err != nil {
			return &os.PathError{Op: "setxattr " + n, Path: dst, Err: err}
		}
	}
	return nil
}

func (c *copier) copyXattrsFd(in, out int, src, dst string) error {
	names, err := xattrNames(func(b []byte) (int, error) { return unix.Flistxattr(in, b) }, src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if c.opts.SkipXattr != nil && c.opts.SkipXattr(n) {
			continue
		}
		val, err := xattrValue(func(b []byte) (int, error) { return unix.Fgetxattr(in, n, b) }, src, n)
		if errors.Is(err, syscall.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(out, n, val, 0); err != nil {
			return &os.PathError{Op: "setxattr " + n, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	return xattrNames(func(b []byte) (int, error) { return unix.Llistxattr(path, b) }, path)
}

func getXattr(path, name string) ([]byte, error) {
	return xattrValue(func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) }, path, name)
}

func xattrNames(list func([]byte) (int, error), path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := list(buf)
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

func xattrValue(get func([]byte) (int, error), path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := get(buf)
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

// readUmask reads the process umask from /proc/self/status without
// changing it (umask(2) would race with other goroutines); -1 if unknown.
func readUmask() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(m)
		}
	}
	return -1
}
