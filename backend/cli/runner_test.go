package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellLine(t *testing.T) {
	ms := []string{"--mode=script", "--xml"}
	for _, tc := range []struct {
		args []string
		line string // "" means a process of its own
	}{
		{append(ms, "volume", "info", "gv0"), "volume info gv0"},
		{append(ms, "volume", "quota", "gv0", "limit-usage", "/a", "1MB"), "volume quota gv0 limit-usage /a 1MB"},
		{append(ms, "volume", "quota", "gv0", "remove", "/.subvolkit/staging/a.x1"), "volume quota gv0 remove /.subvolkit/staging/a.x1"},
		{append(ms, "volume", "quota", "gv0", "list", "/a"), "volume quota gv0 list /a"},
		{[]string{"--xml", "volume", "info", "gv0"}, "volume info gv0"},
		{[]string{"--mode=script", "volume", "info", "gv0"}, ""},       // no --xml: plain text answers
		{append(ms, "volume", "quota", "gv0", "list"), ""},             // list of every limit
		{append(ms, "volume", "quota", "gv0", "enable"), ""},           // not in the list
		{append(ms, "volume", "set", "gv0", "k", "v"), ""},             // not in the list
		{append(ms, "volume", "info"), ""},                             // every volume
		{append(ms, "volume", "quota", "gv0", "list", "/a", "/b"), ""}, // several paths
		{append(ms, "volume", "quota", "gv0", "limit-usage", "/a b", "1MB"), ""},
		{append(ms, "volume", "quota", "gv0", "limit-usage", "/a\tb", "1MB"), ""},
		{append(ms, "volume", "quota", "gv0", "limit-usage", "/a\nvolume", "1MB"), ""},
		{append(ms, "volume", "quota", "gv0", "limit-usage", "", "1MB"), ""},
		{append(ms, "--remote-host=h", "volume", "info", "gv0"), ""},
		{append(ms, "volume", "quota", "gv0", "limit-usage", "/"+strings.Repeat("a", maxShellLine), "1MB"), ""},
		{append(ms, "peer", "status"), ""},
		{append(ms, "volume", "info", "\v"), ""},
		{append(ms, "volume", "info", "gv\x01"), ""},
	} {
		line, ok := shellLine(tc.args)
		assert.Equal(t, tc.line != "", ok, "%q", tc.args)
		assert.Equal(t, tc.line, line, "%q", tc.args)
	}
}

// FuzzShellLine checks that a line for a shell says exactly the command's
// words, as the gluster shell splits them (at white space, no quoting), on
// one line it reads whole.
func FuzzShellLine(f *testing.F) {
	f.Add("--mode=script\x1f--xml\x1fvolume\x1fquota\x1fgv0\x1flimit-usage\x1f/a\x1f1MB")
	f.Add("--xml\x1fvolume\x1finfo\x1fgv0")
	f.Add("--xml\x1fvolume\x1fquota\x1fgv0\x1flist\x1f/a b")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x1f")
		line, ok := shellLine(args)
		if !ok {
			return
		}
		if len(line) > maxShellLine || strings.ContainsAny(line, "\n\r\x00") {
			t.Fatalf("line %q", line)
		}
		var words []string
		for _, a := range args {
			if a != "--xml" && a != "--mode=script" {
				words = append(words, a)
			}
		}
		// The gluster shell's tokenizer: strtok_r(line, " \t\r\n").
		got := strings.FieldsFunc(line, func(c rune) bool { return strings.ContainsRune(" \t\r\n", c) })
		if !slices.Equal(got, words) || strings.ContainsFunc(line, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			t.Fatalf("args %q: the shell would read %q", args, got)
		}
		if !slices.Contains(args, "--xml") {
			t.Fatalf("args %q without --xml", args)
		}
	})
}

// fakeShell is a stand-in for the gluster shell: it greets on stderr and
// answers each line with an XML document that holds its PID and the line;
// "warn" in a line writes to stderr first, "slow" sleeps (in a child
// process) first, "exit" ends the shell without a word. With a command in
// its arguments (after --mode=script --xml) it answers once and exits.
const fakeShell = `#!/bin/sh
if [ "$3" = volume ]; then
  printf '<?xml version="1.0"?>\n<cliOutput>\n  <opRet>0</opRet>\n  <once>%s</once>\n</cliOutput>\n' "$*"
  exit 0
fi
echo "Welcome to gluster prompt, type 'help' to see the available commands." >&2
while IFS= read -r line; do
  case "$line" in *exit*) exit 3;; esac
  case "$line" in *slow*) sleep 30;; esac
  case "$line" in *warn*) echo "a warning" >&2;; esac
  printf '<?xml version="1.0"?>\n<cliOutput>\n  <opRet>0</opRet>\n  <pid>%s</pid>\n  <line>%s</line>\n</cliOutput>\n' "$$" "$line"
done
`

var pidRe = regexp.MustCompile(`<pid>(\d+)</pid>`)

func answerPID(t *testing.T, out []byte) string {
	t.Helper()
	m := pidRe.FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	return string(m[1])
}

func TestShellRunnerFake(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gluster")
	require.NoError(t, os.WriteFile(path, []byte(fakeShell), 0o755))
	r := &ShellRunner{Path: path, MaxShells: 1}
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	cmd := func(vol string) []string { return []string{"--mode=script", "--xml", "volume", "info", vol} }

	so, se, err := r.Run(ctx, cmd("warn")...)
	require.NoError(t, err)
	pid := answerPID(t, so)
	assert.Contains(t, string(so), "<line>volume info warn</line>")
	assert.Equal(t, "a warning\n", string(se), "the greeting is dropped, the command's stderr kept")
	assert.True(t, strings.HasPrefix(string(so), "<?xml"), "%s", so)

	so, se, err = r.Run(ctx, cmd("v2")...)
	require.NoError(t, err)
	assert.Equal(t, pid, answerPID(t, so), "the same shell")
	assert.Empty(t, se)

	t.Run("a call beyond MaxShells runs on its own", func(t *testing.T) {
		slowDone := make(chan error, 1)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, _, err := r.Run(sctx, cmd("slow")...)
			slowDone <- err
		}()
		require.Eventually(t, func() bool { // the slow call has the shell
			r.mu.Lock()
			defer r.mu.Unlock()
			return len(r.idle) == 0
		}, 10*time.Second, time.Millisecond)
		so, _, err := r.Run(ctx, cmd("v3")...)
		require.NoError(t, err)
		assert.Contains(t, string(so), "<once>--mode=script --xml volume info v3</once>")
		// Cancelling the slow call kills its shell (and the sleep in its
		// process group) at once.
		start := time.Now()
		cancel()
		select {
		case err := <-slowDone:
			assert.ErrorIs(t, err, context.Canceled)
			assert.Less(t, time.Since(start), 10*time.Second)
		case <-time.After(20 * time.Second):
			t.Fatal("the cancelled call did not return")
		}
	})

	t.Run("a shell that died while idle is replaced", func(t *testing.T) {
		so, _, err := r.Run(ctx, cmd("v4")...)
		require.NoError(t, err)
		first := answerPID(t, so)
		p, err := os.FindProcess(atoi(t, first))
		require.NoError(t, err)
		require.NoError(t, p.Kill())
		require.Eventually(t, func() bool { // reaped by the runner
			_, err := os.Stat("/proc/" + first)
			return err != nil
		}, 10*time.Second, 10*time.Millisecond)
		so, _, err = r.Run(ctx, cmd("v5")...)
		require.NoError(t, err)
		assert.NotEqual(t, first, answerPID(t, so))
	})

	t.Run("a shell that writes while idle is replaced", func(t *testing.T) {
		so, _, err := r.Run(ctx, cmd("v4b")...)
		require.NoError(t, err)
		first := answerPID(t, so)
		// The fake answers a line nobody reads: the runner's probe sees
		// output pending on an idle shell.
		r.mu.Lock()
		sh := r.idle[0]
		r.mu.Unlock()
		_, err = sh.in.WriteString("volume info stray\n")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := sh.out.Peek(1)
			return err == nil
		}, 10*time.Second, 10*time.Millisecond)
		so, _, err = r.Run(ctx, cmd("v5b")...)
		require.NoError(t, err)
		assert.Contains(t, string(so), "<line>volume info v5b</line>")
		assert.NotEqual(t, first, answerPID(t, so))
	})

	t.Run("Close ends the idle shell; the runner goes on", func(t *testing.T) {
		so, _, err := r.Run(ctx, cmd("v7")...)
		require.NoError(t, err)
		pid := atoi(t, answerPID(t, so))
		require.NoError(t, r.Close())
		require.Eventually(t, func() bool {
			_, err := os.Stat("/proc/" + answerPID(t, so))
			return err != nil
		}, 10*time.Second, 10*time.Millisecond, "shell %d still there", pid)
		so, _, err = r.Run(ctx, cmd("v8")...)
		require.NoError(t, err)
		assert.NotEqual(t, pid, atoi(t, answerPID(t, so)))
	})
	t.Run("a shell that exits at a command", func(t *testing.T) {
		// The call runs again in a process of its own, which answers.
		so, _, err := r.Run(ctx, cmd("exit")...)
		require.NoError(t, err)
		assert.Contains(t, string(so), "<once>--mode=script --xml volume info exit</once>")
		// For a while, calls run on their own too (while glusterd is
		// down, they fail at once).
		so, _, err = r.Run(ctx, cmd("v6")...)
		require.NoError(t, err)
		assert.Contains(t, string(so), "<once>--mode=script --xml volume info v6</once>")
	})
}

// atoi is strconv.Atoi for a test: a malformed number fails it.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
