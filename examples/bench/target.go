package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/subvol"
)

// targetFlags say where to run: a throwaway cluster, or an existing volume.
type targetFlags struct {
	throwaway   bool
	nodes       int
	volume      string
	servers     string
	glusterPath string
	glusterArgs string
	mountDir    string
}

// target is the volume under test: the Pool, what the raw baseline needs
// (a gluster CLI runner and a FUSE mount of the volume root), and the
// bookkeeping to remove everything the run made.
type target struct {
	desc    string // for the report
	volume  string
	runner  cli.Runner
	newPool func(ctx context.Context, opts *subvol.Options) (*subvol.Pool, error)
	pool    *subvol.Pool // the main Pool, over backend bk
	bk      *cli.Backend
	root    string // bk's FUSE mount of the volume root
	prefix  string // every name the run makes starts with it
	seq     atomic.Int64
	log     io.Writer
	// warmSize is the size of the run's warm subvolumes (0: none made).
	warmSize atomic.Int64

	closeCluster func() error // tears the throwaway cluster down; nil for an own one
	mu           sync.Mutex
	extraPools   []*subvol.Pool // more Pools (warm): closed before the main one
}

// openTarget starts the throwaway cluster or opens the named volume, and
// the Pool over it. The caller must call close.
func openTarget(ctx context.Context, f *targetFlags, logw io.Writer) (_ *target, err error) {
	t := &target{log: logw, prefix: "bench-" + randHex(3) + "-"}
	defer func() {
		if err != nil {
			_ = t.close(context.WithoutCancel(ctx))
		}
	}()
	var params map[string]string
	base, err := os.MkdirTemp("", "subvolkit-bench-")
	if err != nil {
		return nil, err
	}
	if f.throwaway {
		if why := glustertest.Prereqs(); why != "" {
			return nil, fmt.Errorf("cannot start a throwaway GlusterFS here: %s (or give --volume and --servers)", why)
		}
		c, err := glustertest.Start(ctx, &glustertest.Options{Nodes: f.nodes})
		if err != nil {
			_ = os.Remove(base)
			return nil, fmt.Errorf("start a throwaway GlusterFS: %w", err)
		}
		// The Pool's runner keeps gluster shells open, as cli.Open's
		// default does; the raw baseline runs a process per call.
		shells := &cli.ShellRunner{Command: c.Runner(1).Command}
		t.closeCluster = func() error { return errors.Join(shells.Close(), c.Close(), os.RemoveAll(base)) }
		t.volume, t.runner = c.Volume(), c.Runner(1)
		t.desc = fmt.Sprintf("throwaway %d-node GlusterFS, volume %s", f.nodes, c.Volume())
		if err := cli.Prepare(ctx, t.runner, t.volume, &cli.PrepareOptions{StrictQuota: true}); err != nil {
			return nil, err
		}
		servers := c.Servers()
		t.newPool = func(ctx context.Context, opts *subvol.Options) (*subvol.Pool, error) {
			bk, err := cli.Open(ctx, &cli.Options{
				Volume: t.volume, Servers: servers, Runner: shells,
				MountDir: filepath.Join(base, "m"+randHex(4)),
			})
			if err != nil {
				return nil, err
			}
			return subvol.NewPool(bk, opts), nil
		}
	} else {
		params = map[string]string{cli.ParamVolume: f.volume, cli.ParamServers: f.servers}
		if f.glusterPath != "" {
			params[cli.ParamGlusterPath] = f.glusterPath
		}
		if f.glusterArgs != "" {
			params[cli.ParamGlusterArgs] = f.glusterArgs
		}
		opts, err := cli.OptionsFromParams(params)
		if err != nil {
			return nil, err
		}
		t.volume, t.runner = opts.Volume, opts.Runner
		t.desc = fmt.Sprintf("volume %s on %s", f.volume, f.servers)
		t.closeCluster = func() error { return os.RemoveAll(base) }
		md := f.mountDir
		if md == "" {
			md = base
		}
		t.newPool = func(ctx context.Context, popts *subvol.Options) (*subvol.Pool, error) {
			o := *opts
			o.MountDir = filepath.Join(md, "m"+randHex(4))
			bk, err := cli.Open(ctx, &o)
			if err != nil {
				return nil, err
			}
			return subvol.NewPool(bk, popts), nil
		}
	}
	if t.pool, err = t.newPool(ctx, nil); err != nil {
		return nil, err
	}
	if !t.pool.As(&t.bk) {
		return nil, errors.New("the Pool's backend is not the cli backend")
	}
	t.root = t.bk.MountPath()
	return t, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// name returns a fresh name of the run: <prefix><kind>-<seq>.
func (t *target) name(kind string) string {
	return fmt.Sprintf("%s%s-%05d", t.prefix, kind, t.seq.Add(1))
}

// addPool opens one more Pool on the volume (closed by close, or earlier
// by its caller).
func (t *target) addPool(ctx context.Context, opts *subvol.Options) (*subvol.Pool, error) {
	p, err := t.newPool(ctx, opts)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.extraPools = append(t.extraPools, p)
	t.mu.Unlock()
	return p, nil
}

func (t *target) logf(format string, args ...any) {
	if t.log != nil {
		fmt.Fprintf(t.log, format+"\n", args...)
	}
}

// sweep removes every entry of the run at the volume root: subvolumes
// through the Pool, raw directories with `quota remove` and RemoveAll. It
// then waits (bounded) for the purge of the Pool's deletions.
func (t *target) sweep(ctx context.Context) error {
	if t.pool == nil {
		return nil
	}
	ents, err := os.ReadDir(t.root)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), t.prefix) {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		t.logf("removing %d entries named %s*", len(names), t.prefix)
	}
	var errs []error
	var mu sync.Mutex
	forEach(ctx, names, 8, func(n string) {
		var err error
		if _, gerr := t.pool.Get(ctx, n); gerr == nil {
			err = t.pool.Delete(ctx, n, nil)
		} else if subvolkit.KindOf(gerr) == subvolkit.NotFound {
			err = t.rawDelete(ctx, n)
		} else {
			err = gerr
		}
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(append(errs, t.waitPurge(ctx, 10*time.Minute))...)
}

// waitPurge waits until the trash is empty, at most d.
func (t *target) waitPurge(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		st, err := t.bk.Purge(ctx)
		if err == nil && st.Pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the purge of deleted subvolumes did not finish in %v (last: %+v, %v)", d, st, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// close removes what the run made, closes the Pools and tears the
// throwaway cluster down. It runs even after ctx was cancelled (Ctrl-C):
// it uses a fresh deadline.
func (t *target) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Minute)
	defer cancel()
	var errs []error
	t.mu.Lock()
	extra := t.extraPools
	t.extraPools = nil
	t.mu.Unlock()
	for _, p := range extra {
		errs = append(errs, p.SetWarm(nil), p.Close())
	}
	if t.pool != nil {
		errs = append(errs, t.drainWarm(ctx), t.sweep(ctx), t.pool.Close())
		t.pool = nil
	}
	if t.closeCluster != nil {
		errs = append(errs, t.closeCluster())
		t.closeCluster = nil
	}
	return errors.Join(errs...)
}

// forEach calls f for every item from n goroutines, and stops handing
// items out when ctx is done.
func forEach[T any](ctx context.Context, items []T, n int, f func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range max(1, n) {
		wg.Go(func() {
			for it := range ch {
				f(it)
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		ch <- it
	}
	close(ch)
	wg.Wait()
}
