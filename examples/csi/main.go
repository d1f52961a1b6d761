// Command subvolkit-csi is a CSI driver (spec v1.13) for subvolkit
// subvolumes: quota-limited directories of a GlusterFS volume, with clones,
// snapshots and online expansion. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "github.com/subvolkit/subvolkit/backend/cli"
	_ "github.com/subvolkit/subvolkit/backend/glusterd2"
	_ "github.com/subvolkit/subvolkit/backend/heketi"
	_ "github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/examples/csi/driver"
	"github.com/subvolkit/subvolkit/mount"
)

var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "subvolkit-csi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("subvolkit-csi", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "unix:///csi/csi.sock", "gRPC endpoint: unix:///path/to/socket")
	mode := fs.String("mode", driver.ModeAll, "controller, node or all")
	name := fs.String("driver-name", driver.DefaultName, "CSI driver name")
	nodeID := fs.String("node-id", "", "this node's ID (node mode; default: the host name)")
	pools := fs.String("pools", "", "pools file, YAML or JSON (controller mode)")
	stateDir := fs.String("state-dir", mount.DefaultStateDir, "node state: shared mounts, locks, staged volumes (must be shared with the host, Bidirectional)")
	logDir := fs.String("log-dir", mount.DefaultLogDir, "glusterfs client logs")
	kubeletDir := fs.String("kubelet-dir", "", "if set, refuse staging and target paths outside it (e.g. /var/lib/kubelet)")
	copyWait := fs.Duration("copy-wait", 5*time.Second, "how long CreateVolume/CreateSnapshot wait for a copy before answering ABORTED (in progress)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := driver.Config{Name: *name, Version: version, Mode: *mode, NodeID: *nodeID,
		StateDir: filepath.Join(*stateDir, "csi"), KubeletDir: *kubeletDir, CopyWait: *copyWait, Logger: log}
	if *mode != driver.ModeNode {
		if *pools == "" {
			return errors.New("--pools is required in controller mode")
		}
		p, err := driver.LoadPools(*pools)
		if err != nil {
			return err
		}
		cfg.Pools = p
	}
	if *mode != driver.ModeController {
		if cfg.NodeID == "" {
			h, err := os.Hostname()
			if err != nil {
				return err
			}
			cfg.NodeID = h
		}
		m, err := mount.New(&mount.Options{Mode: mount.ModeShared, StateDir: *stateDir, LogDir: *logDir, Logger: log})
		if err != nil {
			return err
		}
		cfg.Mounter = m
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := driver.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	lis, err := listen(*endpoint)
	if err != nil {
		return err
	}
	log.Info("serving", "endpoint", *endpoint, "mode", *mode, "driver", cfg.Name, "node", cfg.NodeID)
	return d.Serve(ctx, lis)
}

// listen listens on a unix socket endpoint, removing a stale socket first.
func listen(endpoint string) (net.Listener, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return nil, fmt.Errorf("endpoint %q: only unix:// sockets are supported", endpoint)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}
