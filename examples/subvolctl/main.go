// Command subvolctl is the administrator's command line for subvolkit: it
// allocates, lists, resizes, clones and deletes the quota-limited
// subvolumes of one GlusterFS volume (or of any registered backend), reports
// their usage, creates them in bulk with PersistentVolume YAML (as
// gluster-subvol's creator.sh did), and mounts them on this node.
//
// Tables are for people: on a terminal they have borders and bulk work has
// a progress bar; elsewhere the same columns are printed plainly. Scripts
// use -o json or -o yaml. Exit codes say what kind of error happened; see
// README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &app{
		stdout: os.Stdout, stderr: os.Stderr,
		environ: os.Environ(), args: os.Args[1:],
	})
	stop()
	os.Exit(code)
}
