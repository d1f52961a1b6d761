package fsutil_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// skipGluster rejects Gluster's own attributes, as backend/cli does.
func skipGluster(name string) bool {
	return strings.HasPrefix(name, "trusted.") || strings.HasPrefix(name, "glusterfs.") ||
		strings.HasPrefix(name, "security.")
}

var fullOpts = fsutil.CopyOptions{Owner: true, Xattrs: true, SkipXattr: skipGluster, Times: true, Special: true}

// makeEveryKindTree fills dir with every kind of entry CopyTree handles.
func makeEveryKindTree(t *testing.T, dir string, big int64) {
	t.Helper()
	w := func(p string, data []byte, mode os.FileMode) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), data, 0o600))
		require.NoError(t, os.Chmod(filepath.Join(dir, p), mode))
	}
	rnd := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	w("regular", rnd(5000), 0o644)
	w("empty", nil, 0o600)
	w("readonly", []byte("ro"), 0o444)
	w("exec", []byte("#!/bin/sh\n"), 0o755)
	w("setuid", []byte("su"), 0o4755)
	w("setgid-file", []byte("sg"), 0o2755)
	w("owned", []byte("owned"), 0o640)
	require.NoError(t, os.Lchown(filepath.Join(dir, "owned"), 1234, 5678))
	w("owned-setgid", []byte("x"), 0o2750)
	require.NoError(t, os.Lchown(filepath.Join(dir, "owned-setgid"), 1000, 1000))
	require.NoError(t, syscall.Chmod(filepath.Join(dir, "owned-setgid"), 0o2750))
	w("odd names/sp ace\tand\nnewline é ☃", []byte("odd"), 0o644)
	w("odd names/-dash", []byte("d"), 0o644)
	w("odd names/"+strings.Repeat("l", 255), []byte("long"), 0o644)
	// big, and sparse: data, a hole, data, a trailing hole
	w("big", rnd(int(big)), 0o644)
	f, err := os.Create(filepath.Join(dir, "sparse"))
	require.NoError(t, err)
	_, err = f.WriteAt(rnd(4096), 0)
	require.NoError(t, err)
	_, err = f.WriteAt(rnd(4096), 8<<20)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(16<<20))
	require.NoError(t, f.Close())
	// hard links, one across directories
	w("links/a", []byte("linked"), 0o640)
	require.NoError(t, os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "links/b")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "links/sub"), 0o755))
	require.NoError(t, os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "links/sub/c")))
	// symlinks: relative, absolute, dangling, to a directory
	require.NoError(t, os.Symlink("regular", filepath.Join(dir, "sym-rel")))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "sym-abs")))
	require.NoError(t, os.Symlink("does/not/exist", filepath.Join(dir, "sym-dangling")))
	require.NoError(t, os.Symlink("links", filepath.Join(dir, "sym-dir")))
	require.NoError(t, os.Lchown(filepath.Join(dir, "sym-rel"), 42, 43))
	// xattrs
	require.NoError(t, unix.Lsetxattr(filepath.Join(dir, "regular"), "user.one", []byte("1"), 0))
	require.NoError(t, unix.Lsetxattr(filepath.Join(dir, "regular"), "user.big", rnd(2000), 0))
	require.NoError(t, unix.Lsetxattr(filepath.Join(dir, "links/a"), "user.l", []byte("L"), 0))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "xdir"), 0o755))
	require.NoError(t, unix.Lsetxattr(filepath.Join(dir, "xdir"), "user.d", []byte("D"), 0))
	// FIFO
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	// directories: setgid, sticky, read-only with content, owned, deep
	w("setgid-dir/f", []byte("f"), 0o644)
	require.NoError(t, syscall.Chmod(filepath.Join(dir, "setgid-dir"), 0o2775))
	w("sticky/f", []byte("f"), 0o644)
	require.NoError(t, syscall.Chmod(filepath.Join(dir, "sticky"), 0o1777))
	w("deep/a/b/c/d/e/f", []byte("deep"), 0o644)
	require.NoError(t, os.Lchown(filepath.Join(dir, "deep/a"), 7, 8))
	w("rodir/sub/f", []byte("inside read-only"), 0o644)
	// times: distinct, old, with nanoseconds
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		old = old.Add(time.Hour + 1)
		ts := []unix.Timespec{unix.NsecToTimespec(old.Add(time.Minute).UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
	// read-only directories last (their times were set above)
	require.NoError(t, os.Chmod(filepath.Join(dir, "rodir/sub"), 0o555))
	require.NoError(t, os.Chmod(filepath.Join(dir, "rodir"), 0o500))
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "rodir"), 0o755) })
}

type entry struct {
	mode, uid, gid uint32
	size, mtimeNs  int64
	link, sum      string
	nlink          uint64
	xattrs         string
	blocks         int64
}

// snapshotTree describes every entry under dir (relative names) for a
// byte-for-byte and metadata comparison.
func snapshotTree(t *testing.T, dir string) (map[string]entry, map[string][]string) {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64][]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || strings.HasPrefix(rel, ".trashcan") {
			return nil
		}
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		e := entry{mode: st.Mode, uid: st.Uid, gid: st.Gid, nlink: uint64(st.Nlink), blocks: st.Blocks}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			e.mtimeNs = st.Mtim.Nano()
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			e.size, e.sum = int64(len(b)), fmt.Sprintf("%x", b[:min(len(b), 64)])+fmt.Sprint(bytes.Count(b, []byte{0}))
			e.sum += string(b) // full content, byte for byte
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			e.link, _ = os.Readlink(p)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			buf := make([]byte, 64<<10)
			n, _ := unix.Llistxattr(p, buf)
			var kv []string
			for _, name := range strings.Split(string(buf[:n]), "\x00") {
				if strings.HasPrefix(name, "user.") {
					v := make([]byte, 64<<10)
					m, err := unix.Lgetxattr(p, name, v)
					require.NoError(t, err)
					kv = append(kv, name+"="+string(v[:m]))
				}
			}
			sort.Strings(kv)
			e.xattrs = strings.Join(kv, ";")
		}
		out[rel] = e
		return nil
	}))
	// directory times are checked after the walk (reading does not change mtime)
	links := map[string][]string{}
	for _, names := range inodes {
		sort.Strings(names)
		links[names[0]] = names
	}
	return out, links
}

func dirTimes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() && rel != "." && !strings.HasPrefix(rel, ".trashcan") {
			m[rel] = fi.ModTime().UnixNano()
		}
		return nil
	}))
	return m
}

func checkSameTree(t *testing.T, src, dst string) {
	t.Helper()
	wantTimes, gotTimes := dirTimes(t, src), dirTimes(t, dst)
	want, wantLinks := snapshotTree(t, src)
	got, gotLinks := snapshotTree(t, dst)
	assert.Equal(t, wantTimes, gotTimes, "directory times")
	require.Equal(t, len(want), len(got), "entry count")
	for name, w := range want {
		g, ok := got[name]
		if !assert.True(t, ok, "missing %q", name) {
			continue
		}
		gb, wb := g.blocks, w.blocks
		g.blocks, w.blocks = 0, 0
		if w.mode&unix.S_IFMT == unix.S_IFDIR {
			g.nlink, w.nlink = 0, 0 // Gluster may count directory links differently
		}
		assert.Equal(t, w, g, "entry %q", name)
		if name == "sparse" {
			assert.Less(t, gb, int64(16<<20)/512/2, "sparse file keeps its holes (%d blocks)", gb)
			_ = wb
		}
	}
	assert.Equal(t, wantLinks, gotLinks, "hard-link groups")
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (chown, mknod)")
		}
		t.Skip("needs root (chown, mknod)")
	}
}

func TestCopyTreeEveryKindOfEntryLocal(t *testing.T) {
	requireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	// 50 MiB and a bit: copied as three parts side by side, the last short.
	makeEveryKindTree(t, src, 50<<20+12345)
	var last fsutil.CopyProgress
	opts := fullOpts
	opts.Progress = func(p fsutil.CopyProgress) { last = p }
	require.NoError(t, fsutil.CopyTree(context.Background(), src, dst, &opts))
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "rodir"), 0o755) })
	checkSameTree(t, src, dst)
	assert.Positive(t, last.Entries)
	assert.GreaterOrEqual(t, last.Bytes, int64(50<<20+12345))
}

func TestCopyTreeEveryKindOfEntryGluster(t *testing.T) {
	requireRoot(t)
	c := glustertest.StartT(t, nil)
	mnt := c.MountT(t, "")
	src, dst := filepath.Join(mnt, "src"), filepath.Join(mnt, "dst")
	require.NoError(t, os.Mkdir(src, 0o755))
	require.NoError(t, os.Mkdir(dst, 0o755))
	makeEveryKindTree(t, src, 40<<20+12345) // two parts side by side
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "rodir"), 0o755) })
	require.NoError(t, fsutil.CopyTree(context.Background(), src, dst, &fullOpts))
	checkSameTree(t, src, dst)
	// And as another client sees it (no cache of ours).
	mnt2 := c.MountT(t, "")
	checkSameTree(t, filepath.Join(mnt2, "src"), filepath.Join(mnt2, "dst"))
}
