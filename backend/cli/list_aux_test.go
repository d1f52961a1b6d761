package cli_test

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// usedByCLI is the used space `quota list <path> --xml` reports for name,
// the baseline the aux mount's answers are checked against.
func usedByCLI(ctx context.Context, t *testing.T, c *glustertest.Cluster, name string) int64 {
	t.Helper()
	out, err := c.Gluster(ctx, "--xml", "volume", "quota", c.Volume(), "list", "/"+name)
	require.NoError(t, err)
	var doc struct {
		Used string `xml:"volQuota>limit>used_space"`
	}
	i := strings.Index(out, "<cliOutput")
	require.GreaterOrEqual(t, i, 0, out)
	require.NoError(t, xml.Unmarshal([]byte(out[i:]), &doc), out)
	n, err := strconv.ParseInt(doc.Used, 10, 64)
	require.NoError(t, err, out)
	return n
}

// listUsage is Pool.ListPage with usage, as a map by name.
func listUsage(ctx context.Context, t *testing.T, pool *subvol.Pool) map[string]*subvol.Subvol {
	t.Helper()
	page, err := pool.ListPage(ctx, &subvol.ListOptions{WithUsage: true})
	require.NoError(t, err)
	m := map[string]*subvol.Subvol{}
	for _, sv := range page.Subvols {
		require.NotNil(t, sv.Usage, "usage of %s", sv.Name)
		m[sv.Name] = sv
	}
	return m
}

// TestListUsageFresh: a List with usage reads markers and quota sizes
// through the list mount's cache, which one ReadDir fills. What changed
// just before a List or a Usage — a resize through this process, bytes
// written and accounted, a clone — shows in it, even when a List a moment
// earlier cached the old values.
func TestListUsageFresh(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	for _, n := range []string{"fa", "fb", "fc"} {
		_, err := e.pool.Allocate(ctx, n, 8*quota.MiB, nil)
		require.NoError(t, err)
	}
	before := listUsage(ctx, t, e.pool)
	require.Len(t, before, 3)
	assert.Equal(t, int64(8*quota.MiB), before["fb"].SizeBytes)
	assert.Equal(t, int64(8*quota.MiB), before["fb"].Usage.Limit)

	// A resize right after the List: the next List says the new size.
	_, err := e.pool.Resize(ctx, "fb", 16*quota.MiB)
	require.NoError(t, err)
	after := listUsage(ctx, t, e.pool)
	assert.Equal(t, int64(16*quota.MiB), after["fb"].SizeBytes, "size after a resize")
	assert.Equal(t, int64(16*quota.MiB), after["fb"].Usage.Limit, "limit after a resize")

	// Bytes written: once the bricks account them (quota list says so),
	// the very next List says so too, though the one before cached 0.
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "fc", "data"), make([]byte, 3*quota.MiB), 0o644))
	_ = listUsage(ctx, t, e.pool)
	var used int64
	for deadline := time.Now().Add(30 * time.Second); used < 3*quota.MiB; {
		require.True(t, time.Now().Before(deadline), "quota list never accounted the write (used %d)", used)
		time.Sleep(20 * time.Millisecond)
		used = usedByCLI(ctx, t, e.c, "fc")
	}
	got := listUsage(ctx, t, e.pool)
	assert.GreaterOrEqual(t, got["fc"].Usage.Used, used, "List right after quota list accounted the write")
	assert.Equal(t, int64(0), got["fa"].Usage.Used)

	// A clone's usage right after the clone is its content's, not the
	// empty directory's (the aux client saw it in the staging area).
	_, err = e.pool.Clone(ctx, "fc", "fd", nil)
	require.NoError(t, err)
	u, err := e.pool.Usage(ctx, "fd")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, u.Used, int64(3*quota.MiB), "Usage right after a clone")
	got = listUsage(ctx, t, e.pool)
	assert.GreaterOrEqual(t, got["fd"].Usage.Used, int64(3*quota.MiB), "List right after a clone")
}

// TestListUsageWithoutMetadataCache: on a volume whose md-cache
// translator is off (performance.stat-prefetch off), the aux mount's cache
// options have nothing to apply to; Open and List with usage still work.
func TestListUsageWithoutMetadataCache(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{VolumeOptions: map[string]string{"performance.stat-prefetch": "off"}})
	b := openBackend(t, c, nil)
	pool := subvol.NewPool(b, nil)
	defer func() { assert.NoError(t, pool.Close()) }()
	ctx := ctxT(t)
	for _, n := range []string{"na", "nb"} {
		_, err := pool.Allocate(ctx, n, 4*quota.MiB, nil)
		require.NoError(t, err)
	}
	got := listUsage(ctx, t, pool)
	require.Len(t, got, 2)
	assert.Equal(t, int64(4*quota.MiB), got["na"].Usage.Limit)
	u, err := pool.Usage(ctx, "nb")
	require.NoError(t, err)
	assert.Equal(t, int64(4*quota.MiB), u.Limit)
}
