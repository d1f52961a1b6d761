package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The raw baseline: what a script without subvolkit does, through the same
// gluster CLI runner and the same FUSE mount of the volume root.

// gluster runs the gluster CLI in script mode and returns its stdout.
func (t *target) gluster(ctx context.Context, args ...string) ([]byte, error) {
	out, errOut, err := t.runner.Run(ctx, append([]string{"--mode=script"}, args...)...)
	if err != nil {
		return out, fmt.Errorf("gluster %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)+" "+string(errOut)))
	}
	return out, nil
}

// rawAllocate is mkdir + `volume quota VOL limit-usage /name SIZE`.
func (t *target) rawAllocate(ctx context.Context, name string, size int64) error {
	if err := os.Mkdir(filepath.Join(t.root, name), 0o755); err != nil {
		return err
	}
	_, err := t.gluster(ctx, "volume", "quota", t.volume, "limit-usage", "/"+name, strconv.FormatInt(size, 10))
	return err
}

// rawDelete is `volume quota VOL remove /name` + rm -rf. A directory
// without a limit (a failed rawAllocate) is removed all the same.
func (t *target) rawDelete(ctx context.Context, name string) error {
	_, qerr := t.gluster(ctx, "volume", "quota", t.volume, "remove", "/"+name)
	if err := os.RemoveAll(filepath.Join(t.root, name)); err != nil {
		return err
	}
	if qerr != nil && !strings.Contains(qerr.Error(), "No limit") && !strings.Contains(qerr.Error(), "not set") {
		return qerr
	}
	return nil
}

// rawQuotaList is `volume quota VOL list --xml`: every limit and its usage.
func (t *target) rawQuotaList(ctx context.Context) ([]byte, error) {
	return t.gluster(ctx, "--xml", "volume", "quota", t.volume, "list")
}

// cpA is `cp -a src/. dst/`.
func cpA(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", src+"/.", dst+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}
