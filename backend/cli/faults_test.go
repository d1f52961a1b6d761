package cli_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// hookRunner runs f once, before the first CLI call whose arguments
// contain match.
type hookRunner struct {
	inner cli.Runner
	match string
	once  sync.Once
	f     func()
	armed atomic.Bool
}

func (r *hookRunner) Run(ctx context.Context, args ...string) ([]byte, []byte, error) {
	if r.armed.Load() && strings.Contains(strings.Join(args, " "), r.match) {
		r.once.Do(r.f)
	}
	return r.inner.Run(ctx, args...)
}

// documented is the set of kinds the README promises for failures.
func documented(err error) bool {
	switch subvolkit.KindOf(err) {
	case subvolkit.NotFound, subvolkit.AlreadyExists, subvolkit.InvalidArgument, subvolkit.QuotaExceeded,
		subvolkit.Unavailable, subvolkit.FailedPrecondition, subvolkit.Canceled, subvolkit.DeadlineExceeded:
		return true
	}
	return false
}

// fill writes a few files into a subvolume and returns their checksum.
func fill(t *testing.T, dir string, seed int) string {
	t.Helper()
	for i := range 5 {
		b := make([]byte, 64*1024)
		r := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), b, 0o644))
	}
	return treeSum(t, dir)
}

func TestFaults(t *testing.T) {
	t.Run("GlusterdKilledMidOperation", func(t *testing.T) {
		c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
		e := &env{c: c, root: c.MountT(t, "")}
		ctx := ctxT(t)
		hr := &hookRunner{inner: c.Runner(1), match: "limit-usage"}
		hr.f = func() { _ = syscall.Kill(c.GlusterdPID(1), syscall.SIGKILL); waitGone(t, c) }
		e.b = openBackend(t, c, hr)
		e.pool = subvol.NewPool(e.b, nil)
		keep, err := e.pool.Allocate(ctx, "keep", 4*quota.MiB, nil)
		require.NoError(t, err)
		sum := fill(t, filepath.Join(e.root, keep.Path), 1)
		_, err = e.pool.Allocate(ctx, "doomed", 4*quota.MiB, nil)
		require.NoError(t, err)

		hr.armed.Store(true)
		_, err = e.pool.Allocate(ctx, "mid", 4*quota.MiB, nil)
		require.Error(t, err)
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "glusterd down: %v", err)
		// Delete needs no CLI call: it works while glusterd is down; the
		// purge waits for it, the data bounded by the limit meanwhile.
		require.NoError(t, e.pool.Delete(ctx, "doomed", nil))
		_, err = e.pool.Resize(ctx, "keep", 5*quota.MiB)
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)

		require.NoError(t, c.StartNode(ctx, 1))
		_, err = e.pool.Allocate(ctx, "mid", 4*quota.MiB, nil)
		require.NoError(t, err)
		_, err = e.pool.Resize(ctx, "keep", 5*quota.MiB)
		require.NoError(t, err)
		rep, err := e.pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
		require.NoError(t, err, "%+v", rep)
		e.checkClean(t, e.b, e.pool)
		assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, keep.Path)), "data intact")
	})

	t.Run("ReplicaNodeKilled", func(t *testing.T) {
		c := glustertest.StartT(t, &glustertest.Options{Nodes: 3})
		e := &env{c: c, root: c.MountT(t, "")}
		ctx := ctxT(t)
		e.b = openBackend(t, c, nil)
		e.pool = subvol.NewPool(e.b, nil)
		src, err := e.pool.Allocate(ctx, "src", 8*quota.MiB, nil)
		require.NoError(t, err)
		sum := fill(t, filepath.Join(e.root, src.Path), 2)
		_, err = e.pool.Allocate(ctx, "del", 4*quota.MiB, nil)
		require.NoError(t, err)

		for _, op := range []string{"allocate", "clone", "mount", "delete"} {
			t.Run(op, func(t *testing.T) {
				require.NoError(t, c.KillNode(2))
				defer func() { require.NoError(t, c.StartNode(ctx, 2)) }()
				var err error
				switch op {
				case "allocate":
					_, err = e.pool.Allocate(ctx, "new", 4*quota.MiB, nil)
				case "clone":
					var cl *subvol.Subvol
					cl, err = e.pool.Clone(ctx, "src", "cl", nil)
					if err == nil {
						assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, cl.Path)))
					}
				case "mount":
					var mnt string
					mnt, err = c.Mount(ctx, src.Path)
					if err == nil {
						assert.Equal(t, sum, treeSum(t, mnt))
						assert.NoError(t, c.Unmount(mnt))
					}
				case "delete":
					err = e.pool.Delete(ctx, "del", nil)
				}
				if err != nil {
					assert.True(t, documented(err), "undocumented kind: %v", err)
				}
				t.Logf("%s with node 2 down: %v", op, err)
			})
		}
		rep, err := e.pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
		require.NoError(t, err, "%+v", rep)
		e.checkClean(t, e.b, e.pool)
		assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, src.Path)), "data intact")
	})

	t.Run("BricksFullDuringClone", func(t *testing.T) {
		c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
		ctx := ctxT(t)
		smallBrick(t, c, "40m")
		e := &env{c: c, root: c.MountT(t, "")}
		e.b = openBackend(t, c, nil)
		e.pool = subvol.NewPool(e.b, nil)
		src, err := e.pool.Allocate(ctx, "src", 32*quota.MiB, nil)
		require.NoError(t, err)
		srcDir := filepath.Join(e.root, src.Path)
		fill(t, srcDir, 4)
		big := make([]byte, 24*quota.MiB)
		for i := range big {
			big[i] = byte(i * 7)
		}
		require.NoError(t, os.WriteFile(filepath.Join(srcDir, "big"), big, 0o644))
		sum := treeSum(t, srcDir)
		before := e.state(t)
		// 24 MiB used of a 40 MiB brick: the copy runs out of space midway.
		_, err = e.pool.Clone(ctx, "src", "cl", nil)
		require.Error(t, err)
		assert.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
		assert.ErrorIs(t, err, syscall.ENOSPC)
		e.checkClean(t, e.b, e.pool)
		assert.Equal(t, before, e.state(t), "the failed clone left nothing")
		assert.Equal(t, sum, treeSum(t, srcDir), "data intact")
		// Space back (the source shrinks): the clone works.
		require.NoError(t, os.Remove(filepath.Join(srcDir, "big")))
		sum = treeSum(t, srcDir)
		require.Eventually(t, func() bool {
			_, err := e.pool.Clone(ctx, "src", "cl", nil)
			return err == nil
		}, 30*time.Second, time.Second)
		assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, "cl")))
		e.checkClean(t, e.b, e.pool)
	})

	t.Run("TwoProcessesConcurrent", func(t *testing.T) {
		c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
		e := &env{c: c, root: c.MountT(t, "")}
		ctx := ctxT(t)
		e.b = openBackend(t, c, nil)
		e.pool = subvol.NewPool(e.b, nil)
		other := subvol.NewPool(openBackend(t, c, nil), nil)
		pools := []*subvol.Pool{e.pool, other}
		src, err := e.pool.Allocate(ctx, "src", 4*quota.MiB, nil)
		require.NoError(t, err)
		sum := fill(t, filepath.Join(e.root, src.Path), 3)
		var wg sync.WaitGroup
		var mu sync.Mutex
		kinds := map[string]int{}
		sem := make(chan struct{}, 8)
		for i := range 100 {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				p := pools[i%2]
				name := fmt.Sprintf("n%d", i%7)
				var err error
				switch i % 3 {
				case 0:
					_, err = p.Allocate(ctx, name, 2*quota.MiB, nil)
				case 1:
					_, err = p.Clone(ctx, "src", name, nil)
				case 2:
					err = p.Delete(ctx, name, nil)
				}
				mu.Lock()
				defer mu.Unlock()
				kinds[subvolkit.KindOf(err).String()+fmt.Sprint(err == nil)]++
				if err != nil {
					assert.True(t, documented(err), "undocumented kind: %v", err)
					assert.NotEqual(t, subvolkit.Unknown, subvolkit.KindOf(err), "%v", err)
				}
			}(i)
		}
		wg.Wait()
		t.Logf("outcomes: %v", kinds)
		rep, err := e.pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
		require.NoError(t, err, "%+v", rep)
		for _, it := range rep.Items {
			assert.Equal(t, "trash", it.Problem, "only purges were left: %+v", it)
		}
		e.checkClean(t, e.b, e.pool)
		assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, src.Path)), "data intact")
		// Every clone that survived has the source's content.
		svs, err := e.pool.List(ctx)
		require.NoError(t, err)
		for _, sv := range svs {
			if sv.Source == "src" {
				assert.Equal(t, sum, treeSum(t, filepath.Join(e.root, sv.Path)), "clone %s", sv.Name)
			}
		}
		// Concurrent deletes of one name: NotFound or success, never Unknown.
		for range 3 {
			_, err := e.pool.Allocate(ctx, "dd", quota.MiB, nil)
			require.NoError(t, err)
			var dwg sync.WaitGroup
			for j := range 6 {
				dwg.Add(1)
				go func(j int) {
					defer dwg.Done()
					err := pools[j%2].Delete(ctx, "dd", nil)
					assert.NoError(t, err)
					_, gerr := pools[(j+1)%2].Get(ctx, "dd")
					if gerr != nil {
						assert.True(t, errors.Is(gerr, subvolkit.ErrNotFound), "%v", gerr)
					}
				}(j)
			}
			dwg.Wait()
		}
		e.checkClean(t, e.b, e.pool)
	})
}

// smallBrick puts node 1's brick on a tmpfs of size, mounted inside the
// node's own mount namespace (it goes with the node's processes): the
// volume is stopped, the tmpfs mounted over the brick directory with the
// brick's volume-id, and the volume started again.
func smallBrick(t *testing.T, c *glustertest.Cluster, size string) {
	t.Helper()
	ctx := ctxT(t)
	brick := c.BrickPath(1)
	id, err := exec.CommandContext(ctx, "getfattr", "--absolute-names", "-e", "hex", "--only-values", "-n", "trusted.glusterfs.volume-id", brick).Output()
	require.NoError(t, err)
	hexID := "0x" + fmt.Sprintf("%x", id)
	out, err := c.Gluster(ctx, "volume", "stop", c.Volume(), "force")
	require.NoError(t, err, out)
	ns := []string{"-t", strconv.Itoa(c.GlusterdPID(1)), "-m", "--"}
	for _, args := range [][]string{
		{"mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", brick},
		{"setfattr", "-n", "trusted.glusterfs.volume-id", "-v", hexID, brick},
		{"mkdir", "-p", brick + "/.glusterfs/indices"},
		{"chmod", "755", brick},
	} {
		b, err := exec.CommandContext(ctx, "nsenter", append(ns, args...)...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, b)
	}
	out, err = c.Gluster(ctx, "volume", "start", c.Volume(), "force")
	require.NoError(t, err, out)
	require.NoError(t, c.StartNode(ctx, 1)) // waits for the brick to be online
}

// waitGone waits (bounded) until node 1's glusterd is no longer running.
func waitGone(t *testing.T, c *glustertest.Cluster) {
	deadline := time.Now().Add(10 * time.Second)
	for c.GlusterdPID(1) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}
