package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

const crashEnv = "SUBVOLKIT_CRASH_CHILD"

// crashChild runs in the re-executed test binary: it opens a backend on the
// parent's cluster, arms the failpoint and runs one operation, which
// SIGKILLs the process at the step. Reaching the end is exit code 3.
func crashChild() {
	get := os.Getenv
	pid := get("SVK_GLUSTERD_PID")
	r := &cli.ExecRunner{Path: "nsenter", ExtraArgs: []string{"-t", pid, "-m", "-n", "--", "gluster", "--glusterd-sock=" + get("SVK_SOCK")}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := cli.Open(ctx, &cli.Options{Volume: get("SVK_VOLUME"), Servers: strings.Split(get("SVK_SERVERS"), ","),
		Runner: r, MountDir: get("SVK_MOUNTDIR"), NoQuotaAuxMount: true, PurgeBusyAge: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	step := get("SVK_STEP")
	cli.SetFailpointHook(b, func(s string) {
		if s == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	})
	name, src := get("SVK_NAME"), get("SVK_SRC")
	switch op := strings.SplitN(step, ":", 2)[0]; op {
	case "create":
		_, err = b.Create(ctx, &backend.CreateRequest{Name: name, SizeBytes: 3 * quota.MiB})
	case "clone":
		_, err = b.Clone(ctx, &backend.CloneRequest{Source: src, Name: name})
	case "resize":
		_, err = b.Resize(ctx, name, 4*quota.MiB)
	case "delete":
		err = b.Delete(ctx, name, nil)
	case "archive":
		err = b.Delete(ctx, name, &backend.DeleteOptions{Policy: backend.DeletePolicyArchive})
	case "purge":
		if err = b.Delete(ctx, name, nil); err == nil {
			_, err = b.Purge(ctx)
		}
	case "warm":
		err = b.Warm(ctx, 3*quota.MiB)
	case "take":
		if err = b.Warm(ctx, 3*quota.MiB); err == nil {
			_, _, err = b.TakeWarm(ctx, &backend.CreateRequest{Name: name, SizeBytes: 3 * quota.MiB,
				Owner: &backend.Ownership{UID: 1234, GID: 1234, Mode: 0o750}})
		}
	}
	fmt.Fprintln(os.Stderr, "child: step not reached:", step, err)
	os.Exit(3)
}

// treeSum is a checksum of the names, modes and contents under dir.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %o\n", rel, info.Mode())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// checkClean asserts the volume holds only complete subvolumes: every
// root entry is a ready subvolume whose limit is its size, every limit
// belongs to one, and staging and trash are empty. It waits (bounded) for
// the background purge.
func (e *env) checkClean(t *testing.T, b *cli.Backend, pool *subvol.Pool) {
	t.Helper()
	ctx := ctxT(t)
	require.Eventually(t, func() bool {
		st, err := b.Purge(ctx)
		return err == nil && st.Pending == 0
	}, 60*time.Second, 200*time.Millisecond, "trash not purged: %+v", b.PurgeStatus())
	ents, err := os.ReadDir(e.root)
	require.NoError(t, err)
	want := map[string]string{} // limit path → the subvolume's size
	for _, d := range ents {
		if d.Name() == ".subvolkit" {
			continue
		}
		sv, err := pool.Get(ctx, d.Name())
		if assert.NoError(t, err, "root entry %s is not a complete subvolume", d.Name()) {
			want["/"+d.Name()] = strconv.FormatInt(sv.SizeBytes, 10)
		}
	}
	lims := e.limitsSettled(t, func(lims map[string]string) bool {
		if len(lims) != len(want) {
			return false
		}
		for p, size := range want {
			if lims[p] != size {
				return false
			}
		}
		return true
	})
	for p, size := range want {
		assert.Equal(t, size, lims[p], "limit of %s", strings.TrimPrefix(p, "/"))
	}
	for p := range lims {
		_, ok := want[p]
		assert.True(t, ok, "limit on %s, which is not a subvolume", p)
	}
	for _, area := range []string{"staging", "trash"} {
		left, err := os.ReadDir(filepath.Join(e.root, ".subvolkit", area))
		require.NoError(t, err)
		assert.Empty(t, left, "%s not empty", area)
	}
}

func TestCrashAtEveryStep(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		crashChild()
		return
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	pool := e.pool
	// The clone source, with content.
	src, err := pool.Allocate(ctx, "src", 8*quota.MiB, nil)
	require.NoError(t, err)
	srcDir := filepath.Join(e.root, src.Path)
	require.NoError(t, os.MkdirAll(filepath.Join(srcDir, "d"), 0o755))
	for i := range 20 {
		require.NoError(t, os.WriteFile(filepath.Join(srcDir, "d", fmt.Sprint(i)), []byte(strings.Repeat(fmt.Sprint(i), 1000*i)), 0o644))
	}
	srcSum := treeSum(t, srcDir)

	steps := []string{
		"create:mkdir", "create:marker", "create:owner", "create:limit", "create:rename",
		"clone:mkdir", "clone:marker", "clone:owner", "clone:limit", "clone:copy", "clone:rename",
		"resize:intent", "resize:limit", "resize:done",
		"delete:start", "delete:renamed",
		"purge:emptied", "purge:unlimited",
		"archive:marked", "archive:renamed",
		"warm:mkdir", "warm:limit", "warm:rename",
		"take:marked", "take:owner", "take:rename",
	}
	for i, step := range steps {
		t.Run(strings.ReplaceAll(step, ":", "-"), func(t *testing.T) {
			op := strings.SplitN(step, ":", 2)[0]
			name := fmt.Sprintf("c%02d", i)
			if op != "create" && op != "clone" && op != "warm" && op != "take" {
				_, err := pool.Allocate(ctx, name, 2*quota.MiB, nil)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(e.root, name, "data"), []byte("precious"), 0o644))
			}
			mnt := filepath.Join(t.TempDir(), "child")
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashAtEveryStep$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"=1", "SVK_STEP="+step, "SVK_NAME="+name, "SVK_SRC=src",
				"SVK_VOLUME="+e.c.Volume(), "SVK_SERVERS="+strings.Join(e.c.Servers(), ","),
				"SVK_GLUSTERD_PID="+strconv.Itoa(e.c.GlusterdPID(1)), "SVK_SOCK="+e.c.GlusterdSocket(1), "SVK_MOUNTDIR="+mnt)
			out, err := cmd.CombinedOutput()
			// The child's FUSE clients outlive it: unmounting ends them
			// (before TempDir's cleanup could walk into a live mount).
			for _, sub := range []string{"volume", "quota"} {
				_ = syscall.Unmount(filepath.Join(mnt, sub), syscall.MNT_DETACH)
			}
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "child: %v\n%s", err, out)
			ws := ee.Sys().(syscall.WaitStatus)
			require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child did not die at %s: %v\n%s", step, err, out)

			// The next call on the name completes or removes what the
			// crash left.
			switch op {
			case "create", "take":
				_, err := pool.Get(ctx, name)
				if err != nil {
					assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
				}
				sv, err := pool.Allocate(ctx, name, 3*quota.MiB, nil)
				require.NoError(t, err)
				assert.Equal(t, int64(3*quota.MiB), sv.SizeBytes)
			case "clone":
				sv, err := pool.Clone(ctx, "src", name, nil)
				require.NoError(t, err)
				assert.Equal(t, srcSum, treeSum(t, filepath.Join(e.root, sv.Path)), "clone content")
			case "resize":
				sv, err := pool.Get(ctx, name)
				require.NoError(t, err)
				want := strconv.FormatInt(sv.SizeBytes, 10)
				got := e.limitsSettled(t, func(l map[string]string) bool { return l["/"+name] == want })["/"+name]
				assert.Equal(t, want, got, "Get reports the limit the quota has")
				_, err = pool.Resize(ctx, name, 2*quota.MiB) // back to the old size: must set the limit
				require.NoError(t, err)
				assert.Equal(t, "2097152", e.limits(t)["/"+name])
			case "delete", "purge":
				require.NoError(t, pool.Delete(ctx, name, nil))
				_, err := pool.Get(ctx, name)
				assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
			case "archive":
				require.NoError(t, pool.Delete(ctx, name, &subvol.DeleteOptions{Policy: subvol.DeletePolicyArchive}))
				_, err := pool.Get(ctx, name)
				assert.True(t, errors.Is(err, subvolkit.ErrNotFound), "%v", err)
				got, _ := filepath.Glob(filepath.Join(e.root, ".subvolkit", "archive", name+"-*", "data"))
				assert.Len(t, got, 1, "archived data kept")
			}
			if op == "warm" {
				// The next Warm of the size makes a complete one (it waits
				// for the dead child's lock, which its FUSE client releases
				// a moment after the kill); whatever the crash left is
				// never handed out.
				require.NoError(t, e.b.Warm(ctx, 3*quota.MiB))
				sv, took, err := e.b.TakeWarm(ctx, &backend.CreateRequest{Name: name, SizeBytes: 3 * quota.MiB})
				require.NoError(t, err)
				require.True(t, took)
				assert.Equal(t, "3145728", e.limits(t)["/"+name], "a warm subvolume made after the crash")
				require.NoError(t, pool.Delete(ctx, sv.Name, nil))
			}
			if op == "take" {
				// What the crash left in the warm area is handed out only
				// as Warm made it (the dead taker's marker overwritten);
				// given the dead taker's owner and mode, it goes to the
				// trash. (The dead child's entry lock is free a moment
				// after the kill.)
				require.Eventually(t, func() bool {
					sv, took, err := e.b.TakeWarm(ctx, &backend.CreateRequest{Name: name + "w", SizeBytes: 3 * quota.MiB})
					if err != nil {
						return false
					}
					if took {
						var st syscall.Stat_t
						require.NoError(t, syscall.Lstat(filepath.Join(e.root, sv.Path), &st))
						assert.Equal(t, [3]uint32{0, 0, 0o755}, [3]uint32{st.Uid, st.Gid, st.Mode & 0o7777}, "owner and mode of %s", sv.Name)
						got, err := pool.Get(ctx, sv.Name)
						require.NoError(t, err)
						assert.Equal(t, int64(3*quota.MiB), got.SizeBytes)
						assert.Equal(t, "3145728", e.limits(t)["/"+sv.Name], "limit of %s", sv.Name)
						require.NoError(t, pool.Delete(ctx, sv.Name, nil))
					}
					counts, cerr := e.b.WarmCounts(ctx)
					return cerr == nil && len(counts) == 0
				}, 20*time.Second, 100*time.Millisecond, "the warm area emptied by takes")
			}
			if op == "warm" || op == "take" {
				// A complete warm subvolume may be left: it is stock, not
				// a problem. Drained, the volume must be clean (an entry
				// the dead child had locked is free a moment later).
				require.Eventually(t, func() bool {
					_, err := e.b.DrainWarm(ctx, 0, 0)
					counts, cerr := e.b.WarmCounts(ctx)
					return err == nil && cerr == nil && len(counts) == 0
				}, 20*time.Second, 100*time.Millisecond, "warm area drained")
			}
			// Reconcile finds nothing it cannot repair; then the volume is clean.
			rep, err := pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: true})
			require.NoError(t, err)
			for _, it := range rep.Items {
				t.Logf("reconcile after the crash: %+v", it)
				assert.True(t, it.Repaired || it.Problem == backend.ProblemTrash, "not repaired: %+v", it)
			}
			e.checkClean(t, e.b, pool)
			archived, _ := filepath.Glob(filepath.Join(e.root, ".subvolkit", "archive", "*"))
			lims := e.limits(t)
			for _, a := range archived {
				assert.NotContains(t, lims, strings.TrimPrefix(a, e.root), "archive keeps no limit")
			}
			if op == "resize" {
				require.NoError(t, pool.Delete(ctx, name, nil))
			}
			if op == "create" || op == "clone" || op == "take" {
				require.NoError(t, pool.Delete(ctx, name, nil))
			}
		})
	}
	var all []string
	svs, err := pool.List(ctx)
	require.NoError(t, err)
	for _, sv := range svs {
		all = append(all, sv.Name)
	}
	sort.Strings(all)
	assert.Equal(t, []string{"src"}, all)
	assert.Equal(t, srcSum, treeSum(t, srcDir), "the source is intact")
	_ = glustertest.Bool
}
