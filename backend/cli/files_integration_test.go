package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
)

// TestFilesStayInMountDir checks that every file the backend writes (its
// mounts and the glusterfs client logs) is inside the MountDir the caller
// chose, and that Close removes them.
func TestFilesStayInMountDir(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	dir := filepath.Join(t.TempDir(), "backend")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "subvolkit-cli-*"))
	b, err := cli.Open(ctx, &cli.Options{Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1), MountDir: dir})
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			_ = b.Close()
		}
	}()
	assert.Equal(t, filepath.Join(dir, "volume"), b.MountPath())
	var names []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"volume", "volume.log", "quota", "quota.log"}, names)
	// The first List with usage makes the list mount.
	_, err = b.List(ctx, &backend.ListOptions{WithUsage: true})
	require.NoError(t, err)
	names = nil
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"volume", "volume.log", "quota", "quota.log", "list", "list.log"}, names)
	tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "subvolkit-cli-*"))
	assert.Equal(t, tmpBefore, tmpAfter, "nothing written to the temporary directory")

	require.NoError(t, b.Close())
	closed = true
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "Close removes the backend's directory: %v", err)
}
