package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCopyTreeKeepsModesLinksAndReadOnlyDirs(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "ro", "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "ro", "sub", "f"), []byte("data"), 0o640))
	require.NoError(t, os.Symlink("ro/sub/f", filepath.Join(src, "link")))
	require.NoError(t, syscall.Chmod(filepath.Join(src, "ro", "sub"), 0o2750))
	require.NoError(t, os.Chmod(filepath.Join(src, "ro"), 0o555)) // read-only: children must still be copied
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755); _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })

	require.NoError(t, CopyTree(context.Background(), src, dst, &CopyOptions{Owner: true, Times: true}))

	b, err := os.ReadFile(filepath.Join(dst, "ro", "sub", "f"))
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
	for p, want := range map[string]uint32{"ro": 0o555, "ro/sub": 0o2750, "ro/sub/f": 0o640} {
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(filepath.Join(dst, p), &st))
		assert.Equal(t, want, st.Mode&0o7777, p)
	}
	link, err := os.Readlink(filepath.Join(dst, "link"))
	require.NoError(t, err)
	assert.Equal(t, "ro/sub/f", link)
	si, _ := os.Stat(filepath.Join(src, "ro", "sub", "f"))
	di, _ := os.Stat(filepath.Join(dst, "ro", "sub", "f"))
	assert.Equal(t, si.ModTime().Unix(), di.ModTime().Unix(), "times kept")
}

func TestCopyTreeRefusesSpecialFilesUnlessAllowed(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	err := CopyTree(context.Background(), src, t.TempDir(), nil)
	assert.ErrorContains(t, err, "cannot copy a file of type")
	dst := t.TempDir()
	require.NoError(t, CopyTree(context.Background(), src, dst, &CopyOptions{Special: true}))
	fi, err := os.Lstat(filepath.Join(dst, "fifo"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeNamedPipe)
}

func TestCopyTreeXattrsAndCancel(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	f := filepath.Join(src, "f")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	if err := syscall.Setxattr(f, "user.keep", []byte("1"), 0); err != nil {
		t.Skipf("user xattrs not supported on %s: %v", src, err)
	}
	require.NoError(t, syscall.Setxattr(f, "user.skip", []byte("2"), 0))
	require.NoError(t, CopyTree(context.Background(), src, dst, &CopyOptions{
		Xattrs: true, SkipXattr: func(n string) bool { return n == "user.skip" },
	}))
	v, err := getXattr(filepath.Join(dst, "f"), "user.keep")
	require.NoError(t, err)
	assert.Equal(t, "1", string(v))
	_, err = getXattr(filepath.Join(dst, "f"), "user.skip")
	assert.True(t, errors.Is(err, syscall.ENODATA), "%v", err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, CopyTree(ctx, src, t.TempDir(), nil), context.Canceled)
}
