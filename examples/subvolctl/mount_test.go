package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/mount"
	"github.com/subvolkit/subvolkit/quota"
)

// TestSubvolctlMount mounts a subvolume on real GlusterFS with subvolctl,
// deep and shared, and checks that the mount shows the subvolume's limit,
// then unmounts it.
func TestSubvolctlMount(t *testing.T) {
	e := newGlusterEnv(t)
	out, code := e.subvolctl(t, "allocate", "data", "--size", "8Mi")
	require.Equal(t, exitOK, code, out)
	for _, mode := range []string{"deep", "shared"} {
		target := filepath.Join(e.dir, "target-"+mode)
		require.NoError(t, os.MkdirAll(target, 0o755))
		dirs := []string{"--state-dir", filepath.Join(e.dir, "state"), "--log-dir", filepath.Join(e.dir, "logs")}

		out, code = e.subvolctl(t, append([]string{"mount", "data", target, "--mode", mode}, dirs...)...)
		require.Equal(t, exitOK, code, out)
		assert.Contains(t, out, "mounted data on "+target)
		st, err := mount.Stats(context.Background(), target)
		require.NoError(t, err)
		assert.Equal(t, int64(8*quota.MiB), st.CapacityBytes, "%s mount shows the limit", mode)
		require.NoError(t, os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644))

		out, code = e.subvolctl(t, append([]string{"umount", target}, dirs...)...)
		require.Equal(t, exitOK, code, out)
		_, err = os.Stat(filepath.Join(target, "f"))
		assert.True(t, os.IsNotExist(err), "%s: unmounted: %v", mode, err)
	}
}
