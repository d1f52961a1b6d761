// Command subvolkit-bench reproduces the figures of subvolkit's README
// Benchmarks section: every operation of the Pool measured side by side
// with the raw gluster CLI calls (and coreutils) a script would make
// instead, in interleaved rounds so that the machine's load hits both alike.
//
// By default it starts a throwaway one-node GlusterFS (package glustertest;
// needs root and the GlusterFS server programs), runs, and tears it down:
//
//	subvolkit-bench
//	subvolkit-bench --nodes 3 --sections allocate,delete --rounds 40
//
// On an existing cluster, name the volume (prepared for the cli backend)
// and its servers; run it where a glusterd of the cluster runs, as root. It
// works only on names starting with bench-<random>- and removes everything
// it made, even when interrupted:
//
//	subvolkit-bench --volume gv0 --servers gfs1,gfs2,gfs3
//
// The scale subcommand allocates, lists, reads the usage of, clones and
// deletes thousands of subvolumes and reports each phase's time and the
// process's memory:
//
//	subvolkit-bench scale --count 5000
//
// Output is a table for people (-o markdown for a README, -o json for
// scripts).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the run cleans up; a second one kills.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
