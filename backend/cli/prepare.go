package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/subvolkit/subvolkit"
)

// PrepareOptions tune Prepare. A nil *PrepareOptions means the defaults.
type PrepareOptions struct {
	// StrictQuota sets features.hard-timeout and features.soft-timeout to
	// 0, so bricks re-check usage on every write. With Gluster's defaults
	// (5 s and 60 s) a writer can overshoot a limit by tens of MiB; with 0
	// the overshoot is about one write-behind window (about 1-2 MiB
	// measured), at the cost of more quota traffic on the bricks.
	StrictQuota bool
}

// Prepare readies volume for the backend, once, before the first Open: it
// checks that the volume exists and is started, enables quota on it if it is
// off, and with opts.StrictQuota sets the strict quota timeouts. These are
// cluster-wide volume settings, which is why Open never changes them. Prepare
// is idempotent (a prepared volume is left as it is) and needs a runner that
// reaches a glusterd of the trusted storage pool through its local socket
// (nil: the local gluster binary), as quota commands do.
func Prepare(ctx context.Context, runner Runner, volume string, opts *PrepareOptions) error {
	const op = "prepare volume"
	if opts == nil {
		opts = &PrepareOptions{}
	}
	if volume == "" || strings.ContainsAny(volume, "/ \x00") || strings.HasPrefix(volume, "-") {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "bad volume name %q", volume)
	}
	if runner == nil {
		runner = &ExecRunner{}
	}
	g := newGlusterCLI(runner, volume, DefaultRetryMaxAttempts, DefaultRetryMinDelay, DefaultRetryMaxDelay)
	info, err := g.volumeInfo(ctx)
	if err != nil {
		return subvolkit.WithOp(op, "", err)
	}
	if info.StatusStr != "Started" {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, op, "", "volume %s is %s, not Started", volume, info.StatusStr)
	}
	if v, _ := info.option("features.quota"); v != "on" {
		if _, err := g.call(ctx, true, "volume", "quota", volume, "enable"); err != nil {
			var ce *CLIError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, "already enabled") {
				return subvolkit.WithOp(op, "", err)
			}
		}
	}
	if opts.StrictQuota {
		for _, key := range []string{"features.hard-timeout", "features.soft-timeout"} {
			if v, _ := info.option(key); v == "0" {
				continue
			}
			if err := g.setOption(ctx, key, "0"); err != nil {
				return subvolkit.WithOp(op, "", err)
			}
		}
	}
	return nil
}
