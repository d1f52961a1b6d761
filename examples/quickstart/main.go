// Command quickstart shows subvolkit end to end on a throwaway one-node
// GlusterFS that it starts on this machine (in a network namespace of its
// own, so it touches nothing else) and removes when it is done:
//
//	allocate -> write until EDQUOT -> resize -> clone -> usage table -> delete
//
// Run it as root with scripts/quickstart.sh, which installs GlusterFS first.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

func main() {
	size := flag.String("size", "8Mi", "size of the first subvolume")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *size); err != nil {
		log.Fatalf("quickstart: %v", err)
	}
}

// demo prints the steps of one run.
type demo struct{ w io.Writer }

func (d demo) step(format string, args ...any) { fmt.Fprintf(d.w, "==> "+format+"\n", args...) }
func (d demo) say(format string, args ...any)  { fmt.Fprintf(d.w, "    "+format+"\n", args...) }

func run(ctx context.Context, w io.Writer, sizeArg string) error {
	d := demo{w}
	size, err := quota.ParseQuantity(sizeArg)
	if err != nil {
		return err
	}
	if why := glustertest.Prereqs(); why != "" {
		return fmt.Errorf("cannot start GlusterFS here: %s", why)
	}

	d.step("starting a throwaway one-node GlusterFS 10 (its own network namespace)")
	t0 := time.Now()
	cluster, err := glustertest.Start(ctx, &glustertest.Options{Nodes: 1, Volume: "demo"})
	if err != nil {
		return err
	}
	defer func() {
		d.step("stopping GlusterFS and removing everything it made")
		if err := cluster.Close(); err != nil {
			log.Printf("cleanup: %v", err)
		}
	}()
	d.say("volume %q on %v, up in %.1fs", cluster.Volume(), cluster.Servers(), time.Since(t0).Seconds())

	// Prepare the volume once (quota on, strict quota timeouts), then open it.
	if err := cli.Prepare(ctx, cluster.Runner(1), cluster.Volume(), &cli.PrepareOptions{StrictQuota: true}); err != nil {
		return err
	}
	b, err := cli.Open(ctx, &cli.Options{
		Volume: cluster.Volume(), Servers: cluster.Servers(), Runner: cluster.Runner(1),
		MountDir: filepath.Join(cluster.BaseDir(), "subvolkit-mnt"),
	})
	if err != nil {
		return err
	}
	pool := subvol.NewPool(b, nil)
	defer pool.Close()

	d.step("allocate %q (%s)", "app-data", quota.HumanSize(size))
	sv, err := pool.Allocate(ctx, "app-data", size, &subvol.AllocateOptions{
		Owner: &subvol.Ownership{UID: 1000, GID: 1000, Mode: 0o2775},
	})
	if err != nil {
		return err
	}
	d.say("%s:/%s%s, limit %s", sv.Servers[0], sv.Volume, sv.Path, quota.HumanSize(sv.SizeBytes))

	d.step("deep-mount %s:/%s%s and write until the quota stops us", sv.Servers[0], sv.Volume, sv.Path)
	mnt, err := cluster.Mount(ctx, sv.Path)
	if err != nil {
		return err
	}
	d.say("df: %s", df(mnt))
	n, werr := fill(filepath.Join(mnt, "big.bin"), 4*size)
	if !errors.Is(werr, syscall.EDQUOT) {
		return fmt.Errorf("expected EDQUOT, got %v after %d bytes", werr, n)
	}
	d.say("wrote %s, then: %v", quota.HumanSize(n), werr)

	d.step("resize to %s", quota.HumanSize(2*size))
	if _, err = pool.Resize(ctx, "app-data", 2*size); err != nil {
		return err
	}
	d.say("df: %s", df(mnt))
	if err := os.WriteFile(filepath.Join(mnt, "after-resize.txt"), []byte("room again\n"), 0o644); err != nil {
		return err
	}

	d.step("clone %q to %q", "app-data", "app-data-copy")
	if _, err := pool.Clone(ctx, "app-data", "app-data-copy", nil); err != nil {
		return err
	}
	// Gluster accounts usage asynchronously, and the cli backend reads it
	// through its quota client's cache, which may be up to a second old:
	// wait (bounded) until the copy's usage has caught up with the source's.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		src, err := pool.Usage(ctx, "app-data")
		if err != nil {
			return err
		}
		cp, err := pool.Usage(ctx, "app-data-copy")
		if err != nil {
			return err
		}
		if cp.Used >= src.Used && cp.Files >= src.Files {
			break
		}
	}
	if _, err := pool.Allocate(ctx, "scratch", size/2, nil); err != nil {
		return err
	}

	d.step("usage")
	if err := usageTable(ctx, w, pool); err != nil {
		return err
	}

	d.step("delete everything")
	if err := cluster.Unmount(mnt); err != nil {
		return err
	}
	for _, name := range []string{"app-data-copy", "app-data", "scratch"} {
		if err := pool.Delete(ctx, name, nil); err != nil {
			return err
		}
	}
	left, err := pool.List(ctx)
	if err != nil {
		return err
	}
	d.say("%d subvolumes left", len(left))
	return nil
}

func usageTable(ctx context.Context, out io.Writer, pool *subvol.Pool) error {
	all, err := pool.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "NAME\tLIMIT\tUSED\tAVAILABLE\tFILES\tSOURCE\t")
	for _, sv := range all {
		u, err := pool.Usage(ctx, sv.Name)
		if err != nil {
			return err
		}
		files := "?"
		if u.Files >= 0 {
			files = fmt.Sprint(u.Files)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", sv.Name, quota.HumanSize(u.Limit), quota.HumanSize(u.Used),
			quota.HumanSize(u.Available), files, sv.Source)
	}
	return w.Flush()
}

func df(path string) string {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return err.Error()
	}
	total := int64(s.Blocks) * int64(s.Bsize)
	avail := int64(s.Bavail) * int64(s.Bsize)
	return fmt.Sprintf("size %s, used %s, available %s", quota.HumanSize(total), quota.HumanSize(total-avail), quota.HumanSize(avail))
}

func fill(path string, max int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("subvolkit "), 25600) // 250 KiB
	var n int64
	for n < max {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
	return n, f.Close()
}
