package cli_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
)

// cliAnswer is what TestShellRunner compares of an XML answer.
type cliAnswer struct {
	OpRet    int    `xml:"opRet"`
	OpErrno  int    `xml:"opErrno"`
	OpErrstr string `xml:"opErrstr"`
}

func parseAnswer(t *testing.T, out []byte) cliAnswer {
	t.Helper()
	var a cliAnswer
	require.NoError(t, xml.Unmarshal(out, &a), "%s", out)
	return a
}

// shellPIDs returns the PIDs of the runner's shells: the gluster processes
// whose parent is this test process and whose command line has no volume
// command.
func shellPIDs(t *testing.T) map[string]bool {
	t.Helper()
	pids := map[string]bool{}
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	me := fmt.Sprint(os.Getpid())
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[1] != me {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), "gluster\x00") && !strings.Contains(string(cmd), "\x00volume\x00") {
			pids[e.Name()] = true
		}
	}
	return pids
}

// TestShellRunner checks ShellRunner against the one-process-per-call
// runner on real GlusterFS: the same answers for every command it sends to
// a shell, success and failure; one shell reused across calls; a failed
// command, a cancelled call and a killed shell each cost that shell, and
// the next call works; concurrent calls beyond MaxShells run on their own;
// Close ends the shells.
func TestShellRunner(t *testing.T) {
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	root := c.MountT(t, "")
	exe := c.Runner(1)
	sr := &cli.ShellRunner{Command: exe.Command, MaxShells: 2, Timeout: 3 * time.Second}
	t.Cleanup(func() { sr.Close() })
	ctx := ctxT(t)
	vol := c.Volume()
	require.NoError(t, cli.Prepare(ctx, exe, vol, nil))
	q := func(args ...string) []string {
		return append([]string{"--mode=script", "--xml", "volume", "quota", vol}, args...)
	}

	t.Run("same answers", func(t *testing.T) {
		for _, d := range []string{"sh-a", "sh-b"} {
			require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
		}
		for _, tc := range []struct {
			name      string
			shell, ex []string
			ok        bool
		}{
			{"info", []string{"--mode=script", "--xml", "volume", "info", vol}, nil, true},
			{"limit", q("limit-usage", "/sh-a", "10MB"), q("limit-usage", "/sh-b", "10MB"), true},
			{"list", q("list", "/sh-a"), q("list", "/sh-b"), true},
			{"limit on a missing path", q("limit-usage", "/sh-none", "1MB"), nil, false},
			{"list of a path without a limit (opRet 0, a line on stderr)", q("list", "/sh-none"), nil, true},
			{"remove", q("remove", "/sh-a"), q("remove", "/sh-b"), true},
			{"remove again", q("remove", "/sh-a"), q("remove", "/sh-b"), false},
			{"info of a missing volume", []string{"--mode=script", "--xml", "volume", "info", "nosuchvol"}, nil, false},
		} {
			if tc.ex == nil {
				tc.ex = tc.shell
			}
			so, se, serr := sr.Run(ctx, tc.shell...)
			eo, ee, eerr := exe.Run(ctx, tc.ex...)
			sa, ea := parseAnswer(t, so), parseAnswer(t, eo)
			assert.Equal(t, ea.OpRet, sa.OpRet, "%s: opRet", tc.name)
			assert.Equal(t, ea.OpErrno, sa.OpErrno, "%s: opErrno", tc.name)
			assert.Equal(t, strings.ReplaceAll(ea.OpErrstr, "sh-b", "sh-a"), sa.OpErrstr, "%s: opErrstr", tc.name)
			assert.Equal(t, tc.ok, sa.OpRet == 0, "%s: %s %s", tc.name, so, se)
			// The CLI exits 0 after a failure it put in XML.
			assert.NoError(t, serr, "%s: shell", tc.name)
			assert.NoError(t, eerr, "%s: exec", tc.name)
			assert.Equal(t, strings.TrimSpace(strings.ReplaceAll(string(ee), "sh-b", "sh-a")), strings.TrimSpace(string(se)), "%s: stderr", tc.name)
			if tc.name == "list" {
				assert.Contains(t, string(so), "<path>/sh-a</path>")
				assert.Contains(t, string(so), "<hard_limit>10485760</hard_limit>")
			}
		}
	})

	t.Run("one shell serves calls one after another", func(t *testing.T) {
		require.NoError(t, sr.Close())
		info := []string{"--mode=script", "--xml", "volume", "info", vol}
		_, _, err := sr.Run(ctx, info...)
		require.NoError(t, err)
		first := shellPIDs(t)
		require.Len(t, first, 1)
		for range 5 {
			_, _, err := sr.Run(ctx, info...)
			require.NoError(t, err)
		}
		assert.Equal(t, first, shellPIDs(t))
		require.NoError(t, sr.Close())
		require.Eventually(t, func() bool { return len(shellPIDs(t)) == 0 }, 10*time.Second, 20*time.Millisecond)
	})

	t.Run("not for a shell", func(t *testing.T) {
		require.NoError(t, os.Mkdir(filepath.Join(root, "sh c"), 0o755))
		t.Cleanup(func() { os.Remove(filepath.Join(root, "sh c")) })
		// White space in an argument: a process of its own, the same answer.
		so, _, err := sr.Run(ctx, q("limit-usage", "/sh c", "1MB")...)
		require.NoError(t, err, "%s", so)
		assert.Equal(t, 0, parseAnswer(t, so).OpRet)
		so, _, err = sr.Run(ctx, q("list", "/sh c")...)
		require.NoError(t, err, "%s", so)
		assert.Contains(t, string(so), "<path>/sh c</path>")
		_, _, err = sr.Run(ctx, q("remove", "/sh c")...)
		require.NoError(t, err)
		assert.Empty(t, shellPIDs(t), "no shell was started")
	})

	t.Run("a cancelled call kills its shell; the next call works", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err := sr.Run(cctx, "--mode=script", "--xml", "volume", "info", vol)
		require.ErrorIs(t, err, context.Canceled)
		require.Eventually(t, func() bool { return len(shellPIDs(t)) == 0 }, 10*time.Second, 20*time.Millisecond)
		so, _, err := sr.Run(ctx, "--mode=script", "--xml", "volume", "info", vol)
		require.NoError(t, err)
		assert.Equal(t, 0, parseAnswer(t, so).OpRet)
	})

	t.Run("a shell killed while idle is replaced", func(t *testing.T) {
		pids := shellPIDs(t)
		require.Len(t, pids, 1)
		for pid := range pids {
			n, err := strconv.Atoi(pid)
			require.NoError(t, err)
			p, err := os.FindProcess(n)
			require.NoError(t, err)
			require.NoError(t, p.Kill())
		}
		require.Eventually(t, func() bool { _, ok := shellPIDs(t)[firstKey(pids)]; return !ok }, 10*time.Second, 20*time.Millisecond)
		so, _, err := sr.Run(ctx, "--mode=script", "--xml", "volume", "info", vol)
		require.NoError(t, err)
		assert.Equal(t, 0, parseAnswer(t, so).OpRet)
		assert.Len(t, shellPIDs(t), 1)
	})

	t.Run("concurrent calls", func(t *testing.T) {
		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				so, _, err := sr.Run(ctx, "--mode=script", "--xml", "volume", "info", vol)
				if err == nil && !strings.Contains(string(so), "<name>"+vol+"</name>") {
					err = fmt.Errorf("answer without the volume: %s", so)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			assert.NoError(t, err)
		}
		assert.LessOrEqual(t, len(shellPIDs(t)), 2, "MaxShells")
		require.NoError(t, sr.Close())
		require.Eventually(t, func() bool { return len(shellPIDs(t)) == 0 }, 10*time.Second, 20*time.Millisecond)
	})

	info := []string{"--mode=script", "--xml", "volume", "info", vol}
	killGlusterd := func(t *testing.T) {
		pid := c.GlusterdPID(1)
		require.NotZero(t, pid)
		p, err := os.FindProcess(pid)
		require.NoError(t, err)
		require.NoError(t, p.Kill())
		require.Eventually(t, func() bool { return c.GlusterdPID(1) == 0 }, 10*time.Second, 20*time.Millisecond)
	}

	t.Run("glusterd restarted under an idle shell", func(t *testing.T) {
		_, _, err := sr.Run(ctx, info...)
		require.NoError(t, err)
		shells := shellPIDs(t)
		require.NotEmpty(t, shells)
		killGlusterd(t)
		require.NoError(t, c.StartNode(ctx, 1))
		// The shell reconnects (glusterd's socket has the same path) and
		// answers; the same shell, or, had it died, a new one.
		start := time.Now()
		so, _, err := sr.Run(ctx, info...)
		require.NoError(t, err)
		assert.Equal(t, 0, parseAnswer(t, so).OpRet)
		t.Logf("first call after the restart: %v", time.Since(start))
		assert.Less(t, time.Since(start), 10*time.Second)
	})

	t.Run("glusterd down under an idle shell", func(t *testing.T) {
		_, _, err := sr.Run(ctx, info...)
		require.NoError(t, err)
		killGlusterd(t)
		t.Cleanup(func() { require.NoError(t, c.StartNode(context.Background(), 1)) })
		// The shell exits, at once or after its Timeout (3 s here); the
		// call then runs on its own and answers as a one-off call does now
		// (here glustertest's runner refuses: glusterd is not running).
		start := time.Now()
		so, se, err := sr.Run(ctx, info...)
		took := time.Since(start)
		eo, ee, eerr := exe.Run(ctx, info...)
		require.Error(t, err)
		require.Error(t, eerr)
		assert.Equal(t, eerr.Error(), err.Error())
		assert.Equal(t, string(eo)+string(ee), string(so)+string(se))
		assert.Less(t, took, 15*time.Second)
		t.Logf("the call with glusterd down: %v (%v)", took, err)
		// Then calls run on their own for a while: they fail at once.
		start = time.Now()
		_, _, err = sr.Run(ctx, info...)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Empty(t, shellPIDs(t))
	})
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}
