package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// subvolctlBin builds the command once per test binary.
func subvolctlBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "subvolctl-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "subvolctl")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = ""
			t.Logf("go build: %s", out)
		}
	})
	require.NoError(t, buildErr, "building subvolctl")
	return binPath
}

// inTerminal runs subvolctl with its stdout and stderr on a pseudo-terminal
// of 120x40 and returns what the terminal received and the exit code.
func inTerminal(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(subvolctlBin(t), args...)
	cmd.Env = append(os.Environ(), "TERM=xterm", "HOME="+t.TempDir())
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	require.NoError(t, err)
	defer ptmx.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, ptmx); close(copied) }() // ends with EIO when the child exits
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("subvolctl %v did not finish; output so far:\n%s", args, out.String())
	}
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatalf("the terminal did not close")
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// piped runs subvolctl with stdout on a pipe.
func piped(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(subvolctlBin(t), args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	assert.Empty(t, errOut.String())
	return out.String(), cmd.ProcessState.ExitCode()
}

var ansiOrCR = regexp.MustCompile("\x1b\\[|\r[^\n]")

// TestSubvolctlTerminal drives subvolctl in a real terminal: bulk work
// draws a progress bar and tables have borders; the same commands with
// stdout on a pipe print plain columns and nothing decorative.
func TestSubvolctlTerminal(t *testing.T) {
	const n = 300
	args := []string{"-b", "memory", "-p", "volume=gv0", "bulk-create", "--count", "300", "--size", "1Mi", "--parallel", "4"}

	out, code := inTerminal(t, args...)
	require.Equal(t, exitOK, code, out)
	t.Logf("terminal:\n%s", out)
	// The bar is redrawn in place (carriage returns) as work is done and
	// ends full.
	assert.Greater(t, strings.Count(out, "\r"), 10, "the bar is redrawn")
	assert.Contains(t, out, "allocate")
	assert.Regexp(t, `100%.*\(300/300`, out, "the bar ends full")
	assert.Regexp(t, `\d+%.*\((\d|[1-9]\d|[12]\d\d)/300`, out, "the bar shows progress before the end")
	// Then a bordered table.
	assert.Contains(t, out, "┌")
	assert.Regexp(t, `│ SUBVOLUMES +│ SIZE +│ FIRST +│ LAST +│ PV FILE +│ ELAPSED +│`, out)
	assert.Regexp(t, `│ 300 +│ 1 MiB +│ 00-00 +│ 01-2b +│ - +│`, out)
	assert.Contains(t, out, "└")

	// The same on a pipe: plain columns, no bar, no escapes.
	out, code = piped(t, args...)
	require.Equal(t, exitOK, code, out)
	assert.NotRegexp(t, ansiOrCR, out)
	assert.NotContains(t, out, "%")
	assert.NotContains(t, out, "│")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 2, out)
	assert.Regexp(t, `^SUBVOLUMES +SIZE +FIRST +LAST +PV FILE +ELAPSED`, lines[0])
	assert.Regexp(t, `^300 +1 MiB +00-00 +01-2b +- +\S+`, lines[1])

	// -o json on a terminal: data only, no bar.
	out, code = inTerminal(t, append(args, "-o", "json")...)
	require.Equal(t, exitOK, code, out)
	var v bulkView
	require.NoError(t, json.Unmarshal([]byte(strings.ReplaceAll(out, "\r\n", "\n")), &v), out)
	assert.Equal(t, n, v.Count)

	// --no-progress on a terminal: the table, no bar.
	out, code = inTerminal(t, append(args, "--no-progress")...)
	require.Equal(t, exitOK, code, out)
	assert.NotContains(t, out, "%")
	assert.Contains(t, out, "│ SUBVOLUMES")

	// A table of subvolumes, and an error on a terminal.
	out, code = inTerminal(t, "-b", "memory", "allocate", "app-data", "--size", "10Gi")
	require.Equal(t, exitOK, code, out)
	assert.Regexp(t, `│ NAME +│ SIZE +│ VOLUME +│ PATH +│ SERVERS +│ SOURCE +│ CREATED +│`, out)
	assert.Regexp(t, `│ app-data +│ 10 GiB +│ memory +│ /app-data +│ localhost +│ +│ 20\d\d-`, out)
	out, code = inTerminal(t, "-b", "memory", "get", "nothing")
	assert.Equal(t, exitNotFound, code)
	assert.Contains(t, out, `subvolctl: subvolkit: get "nothing": not found`)
}
