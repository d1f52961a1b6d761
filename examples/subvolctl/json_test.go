package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/subvol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// runIn runs subvolctl in this process on pool (which it does not close)
// and returns the exit code, stdout and stderr.
func runIn(t *testing.T, pool *subvol.Pool, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &app{stdout: &stdout, stderr: &stderr, environ: environ, args: args, pool: pool})
	return code, stdout.String(), stderr.String()
}

// volatile are the fields that change from run to run.
var volatile = regexp.MustCompile(`("(?:id|created)": )"[^"]*"|("seconds": )[0-9.e-]+`)

func normalize(s string) string {
	return volatile.ReplaceAllStringFunc(s, func(m string) string {
		k, _, _ := strings.Cut(m, ": ")
		return k + `: "<volatile>"`
	})
}

// golden compares got with testdata/<name>.json (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	got = normalize(got)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run TestSubvolctlJSON -update to create it")
	assert.Equal(t, string(want), got, "golden %s", path)
	assert.True(t, json.Valid([]byte(got)), "valid JSON")
}

// TestSubvolctlJSON runs every command with -o json on the memory backend
// (opened through the backend registry, as --backend memory does) and
// compares the output with golden files, and the exit codes with the
// documented ones.
func TestSubvolctlJSON(t *testing.T) {
	ctx := context.Background()
	pool, err := subvol.Open(ctx, memory.Name, map[string]string{"volume": "gv0", "servers": "gfs1,gfs2", "capacity": "100Gi"}, nil)
	require.NoError(t, err)
	defer pool.Close()

	steps := []struct {
		golden string
		code   int
		args   []string
	}{
		{"allocate", exitOK, []string{"allocate", "app-data", "--size", "10Gi", "--uid", "1000", "--gid", "1000", "--mode", "2775", "-l", "team=db"}},
		{"allocate-again", exitOK, []string{"allocate", "app-data", "--size", "10Gi"}},
		{"allocate-dry-run", exitOK, []string{"allocate", "other", "--size", "1Gi", "--dry-run"}},
		{"get", exitOK, []string{"get", "app-data"}},
		{"resize", exitOK, []string{"resize", "app-data", "--size", "20Gi"}},
		{"resize-dry-run", exitOK, []string{"resize", "app-data", "--size", "30Gi", "--dry-run"}},
		{"clone", exitOK, []string{"clone", "app-data", "app-copy"}},
		{"bulk-create", exitOK, []string{"bulk-create", "--count", "3", "--start", "254", "--size", "1Gi"}},
		{"bulk-create-pattern-dry-run", exitOK, []string{"bulk-create", "--pattern", "pvc-%04d", "--end", "9", "--size", "1Gi", "--dry-run"}},
		{"list", exitOK, []string{"list"}},
		{"usage", exitOK, []string{"usage", "app-data", "app-copy"}},
		{"delete-dry-run", exitOK, []string{"delete", "app-copy", "missing", "--dry-run"}},
		{"delete", exitOK, []string{"delete", "app-copy", "00-fe", "00-ff", "01-00"}},
		{"list-after-delete", exitOK, []string{"list"}},
		{"allocate-for-retain", exitOK, []string{"allocate", "00-fe", "--size", "1Gi"}},
		{"delete-retain", exitOK, []string{"delete", "00-fe", "--policy", "retain"}},
		{"list-all", exitOK, []string{"list", "--all"}},
		{"reconcile", exitOK, []string{"reconcile"}},
		{"snapshot-create-dry-run", exitOK, []string{"snapshot", "create", "app-snap", "app-data", "--dry-run"}},
		{"snapshot-create", exitOK, []string{"snapshot", "create", "app-snap", "app-data", "-l", "tier=gold"}},
		{"snapshot-create-again", exitOK, []string{"snapshot", "create", "app-snap", "app-data"}},
		{"snapshot-get", exitOK, []string{"snapshot", "get", "app-snap"}},
		{"snapshot-list", exitOK, []string{"snapshot", "list"}},
		{"snapshot-restore-dry-run", exitOK, []string{"snapshot", "restore", "app-snap", "app-restored", "--dry-run"}},
		{"snapshot-restore", exitOK, []string{"snapshot", "restore", "app-snap", "app-restored", "--uid", "1000"}},
		{"snapshot-delete-dry-run", exitOK, []string{"snapshot", "delete", "app-snap", "--dry-run"}},
		{"snapshot-delete", exitOK, []string{"snapshot", "delete", "app-snap", "missing-snap"}},
		{"snapshot-list-after-delete", exitOK, []string{"snapshot", "list"}},
		{"warm-fill", exitOK, []string{"warm", "fill", "2Gi:2,3Gi:1"}},
		{"warm-drain", exitOK, []string{"warm", "drain"}},
	}
	for _, s := range steps {
		code, stdout, stderr := runIn(t, pool, nil, append(s.args, "-o", "json")...)
		require.Equal(t, s.code, code, "%v: stderr %s", s.args, stderr)
		assert.Empty(t, stderr, "%v", s.args)
		golden(t, s.golden, stdout)
	}

	// -o yaml is the same data.
	code, stdout, _ := runIn(t, pool, nil, "get", "app-data", "-o", "yaml")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "name: app-data\n")
	assert.Contains(t, stdout, "sizeBytes: 21474836480\n")

	// A second snapshot for the error cases below.
	code, _, stderr := runIn(t, pool, nil, "snapshot", "create", "app-snap-2", "app-data")
	require.Equal(t, exitOK, code, stderr)

	// Errors: the exit code says the kind, stderr says what, stdout is empty.
	for _, e := range []struct {
		code int
		args []string
	}{
		{exitNotFound, []string{"get", "missing"}},
		{exitNotFound, []string{"usage", "missing"}},
		{exitNotFound, []string{"clone", "missing", "x"}},
		{exitAlreadyExists, []string{"allocate", "app-data", "--size", "1Gi", "--limit", "2Gi"}},
		{exitQuotaExceeded, []string{"allocate", "huge", "--size", "1Ti"}},
		{exitUsage, []string{"allocate", "Bad/Name", "--size", "1Gi"}},
		{exitUsage, []string{"allocate", "x"}},
		{exitUsage, []string{"allocate", "x", "--size", "ten"}},
		{exitUsage, []string{"get"}},
		{exitUsage, []string{"nosuchcommand"}},
		{exitUsage, []string{"list", "--nosuchflag"}},
		{exitUsage, []string{"list", "-o", "xml"}},
		{exitUsage, []string{"bulk-create", "--size", "1Gi", "--end", "70000"}},
		{exitUsage, []string{"bulk-create", "--size", "1Gi", "--count", "2", "--pattern", "same"}},
		{exitUsage, []string{"delete", "x", "--policy", "shred"}},
		{exitUsage, []string{"reconcile", "--repair", "--dry-run"}},
		{exitUsage, []string{"warm", "fill", "2Gi"}},
		{exitUnimplemented, []string{"prepare", "-b", "memory"}},
		{exitNotFound, []string{"snapshot", "get", "missing"}},
		{exitNotFound, []string{"snapshot", "create", "s", "missing"}},
		{exitNotFound, []string{"snapshot", "restore", "missing", "x"}},
		{exitAlreadyExists, []string{"snapshot", "restore", "app-snap-2", "app-data"}},
		{exitUsage, []string{"snapshot", "create", "s"}},
		{exitUsage, []string{"snapshot", "restore", "app-snap-2", "y", "--size", "1Ki"}},
	} {
		args := e.args
		if !slices.Contains(args, "-o") {
			args = append(args, "-o", "json")
		}
		code, stdout, stderr := runIn(t, pool, nil, args...)
		assert.Equal(t, e.code, code, "%v: %s", e.args, stderr)
		assert.Empty(t, stdout, "%v", e.args)
		assert.True(t, strings.HasPrefix(stderr, "subvolctl: "), "%v: stderr %q", e.args, stderr)
	}
}

// TestSubvolctlConfig checks where the backend and its parameters come
// from: flags over environment over config file.
func TestSubvolctlConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("backend: memory\nparams:\n  volume: fromfile\n  servers: filehost\n"), 0o600))
	volumeOf := func(environ []string, args ...string) string {
		t.Helper()
		code, stdout, stderr := runIn(t, nil, environ, append(args, "allocate", "a", "--size", "1Mi", "-o", "json")...)
		require.Equal(t, exitOK, code, stderr)
		var v subvolView
		require.NoError(t, json.Unmarshal([]byte(stdout), &v))
		return v.Volume + " " + strings.Join(v.Servers, ",")
	}
	assert.Equal(t, "fromfile filehost", volumeOf(nil, "--config", cfg))
	assert.Equal(t, "fromfile filehost", volumeOf([]string{"SUBVOLCTL_CONFIG=" + cfg}))
	assert.Equal(t, "fromfile filehost", volumeOf([]string{"XDG_CONFIG_HOME=" + dir + "/xdg"}, "--config", cfg))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "xdg", "subvolctl"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "xdg", "subvolctl", "config.yaml"), []byte("backend: memory\nparams:\n  volume: fromxdg\n"), 0o600))
	assert.Equal(t, "fromxdg localhost", volumeOf([]string{"XDG_CONFIG_HOME=" + dir + "/xdg"}))
	env := []string{"SUBVOLCTL_CONFIG=" + cfg, "SUBVOLCTL_PARAM_VOLUME=fromenv"}
	assert.Equal(t, "fromenv filehost", volumeOf(env))
	assert.Equal(t, "fromflag filehost", volumeOf(env, "-p", "volume=fromflag"))
	assert.Equal(t, "memory localhost", volumeOf([]string{"SUBVOLCTL_BACKEND=memory", "HOME=" + dir}))

	// An explicit config file that is missing or wrong is a usage error.
	code, _, stderr := runIn(t, nil, nil, "--config", filepath.Join(dir, "none.yaml"), "list")
	assert.Equal(t, exitUsage, code, stderr)
	require.NoError(t, os.WriteFile(cfg, []byte("backend: memory\nparmas: {}\n"), 0o600))
	code, _, stderr = runIn(t, nil, nil, "--config", cfg, "list")
	assert.Equal(t, exitUsage, code, stderr)
	assert.Contains(t, stderr, "parmas")
	// No backend at all.
	code, _, stderr = runIn(t, nil, []string{"HOME=" + dir}, "list")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "no backend")
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, stdout, stderr := runIn(t, nil, nil, "completion", shell)
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "subvolctl", shell)
	}
	// Names complete from the pool.
	pool, err := subvol.Open(context.Background(), memory.Name, nil, nil)
	require.NoError(t, err)
	defer pool.Close()
	code, _, _ := runIn(t, pool, nil, "allocate", "complete-me", "--size", "1Mi")
	require.Equal(t, exitOK, code)
	code, stdout, _ := runIn(t, pool, nil, "__complete", "get", "")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "complete-me\n")
	// Snapshot names complete from the pool's snapshots; the source of
	// snapshot create from its subvolumes.
	code, _, _ = runIn(t, pool, nil, "snapshot", "create", "snap-me", "complete-me")
	require.Equal(t, exitOK, code)
	code, stdout, _ = runIn(t, pool, nil, "__complete", "snapshot", "get", "")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "snap-me\n")
	assert.NotContains(t, stdout, "complete-me\n")
	code, stdout, _ = runIn(t, pool, nil, "__complete", "snapshot", "create", "x", "")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "complete-me\n")
}
