package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// fuseControlDir is where the kernel's fusectl file system shows one
// directory per FUSE connection, named by the mount's device number.
const fuseControlDir = "/sys/fs/fuse/connections"

// DefaultWedgeTimeout is Options.WedgeTimeout's default: longer than
// Gluster's network.ping-timeout (42 s), within which a healthy client
// answers even when a brick is unreachable.
const DefaultWedgeTimeout = 2 * time.Minute

// watchMount runs f, a long run of file-system calls in the backend's
// mount (a copy), and watches the mount's FUSE client meanwhile. A client
// can wedge: GlusterFS 10.3's client was seen to abort on a write that
// failed with ENOSPC and to hang in its own crash handler, so that f's
// calls would wait in the kernel forever, where no context reaches them.
// Sometimes it answers nothing more; sometimes its other threads go on
// answering everything but the lost request. So the mount counts as wedged
// when either
//
//   - a statfs of it, made every WedgeTimeout/4 that f runs, is unanswered
//     after Options.WedgeTimeout, or
//   - f made no progress (it calls alive as it moves: the copy after each
//     entry and each chunk of at most 64 MiB) for Options.WedgeTimeout;
//
// then the mount's FUSE connection is aborted: every call waiting on it
// fails with ENOTCONN, f returns, and the backend mounts the volume again
// on its next call (see ensureMounted). Only the backend's own mount is
// aborted, never a user's.
func (b *Backend) watchMount(ctx context.Context, f func(alive func()) error) error {
	timeout := b.opts.WedgeTimeout
	if timeout < 0 {
		return f(func() {})
	}
	var last atomic.Int64 // when f was last alive, in Unix nanoseconds
	last.Store(time.Now().UnixNano())
	alive := func() { last.Store(time.Now().UnixNano()) }
	done := make(chan error, 1)
	go func() { done <- f(alive) }()
	tick := time.NewTicker(max(timeout/4, time.Millisecond))
	defer tick.Stop()
	var probe chan error // the statfs in flight, if any
	var probeStart time.Time
	for {
		select {
		case err := <-done:
			return err
		case <-probe:
			probe = nil
		case now := <-tick.C:
			still := now.Sub(time.Unix(0, last.Load()))
			unanswered := time.Duration(0)
			if probe != nil {
				unanswered = now.Sub(probeStart)
			}
			if still < timeout && unanswered < timeout {
				if probe == nil {
					probe, probeStart = make(chan error, 1), now
					go func(c chan error) {
						var st syscall.Statfs_t
						c <- syscall.Statfs(b.mnt, &st)
					}(probe)
				}
				continue
			}
			err := abortMount(b.mnt)
			b.log.ErrorContext(ctx, "the backend's mount of the volume is wedged (its glusterfs client answers nothing, "+
				"or lost a request of the copy); aborted its FUSE connection, the volume is mounted again on the next call; "+
				"the wedged process may need ending by hand",
				"path", b.mnt, "statfs unanswered", unanswered.Round(time.Second), "copy still", still.Round(time.Second),
				"client log", filepath.Join(b.ownDir, "volume.log"), "abort error", err)
			// Aborted, f's calls fail at once; if the abort failed,
			// nothing else can end them: f is waited for either way.
			return <-done
		}
	}
}

// abortMount aborts the FUSE connection of the mount on mnt, found by its
// device number in /proc/self/mountinfo (nothing is asked of the mount
// itself). It mounts the fusectl file system first if it is not mounted.
func abortMount(mnt string) error {
	dev, err := mountDevice(mnt)
	if err != nil {
		return err
	}
	ctl := filepath.Join(fuseControlDir, dev, "abort")
	if _, err := os.Stat(ctl); errors.Is(err, os.ErrNotExist) {
		if merr := syscall.Mount("fusectl", fuseControlDir, "fusectl", 0, ""); merr != nil && !errors.Is(merr, syscall.EBUSY) {
			return fmt.Errorf("mounting fusectl on %s: %w", fuseControlDir, merr)
		}
	}
	return os.WriteFile(ctl, []byte("1"), 0o200)
}

// mountDevice returns the minor device number of the mount on mnt, which
// names its FUSE connection (FUSE mounts have major 0).
func mountDevice(mnt string) (string, error) {
	ms, err := fsutil.ReadMountinfo()
	if err != nil {
		return "", err
	}
	dev := ""
	for _, m := range ms {
		if m.MountPoint == mnt {
			dev = m.Device // the last mount on mnt is the visible one
		}
	}
	major, minor, ok := strings.Cut(dev, ":")
	if !ok || major != "0" {
		return "", fmt.Errorf("%s: no FUSE mount there (device %q)", mnt, dev)
	}
	return minor, nil
}
