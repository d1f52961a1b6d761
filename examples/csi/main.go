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
	"net/http"
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

// options are the command line flags.
type options struct {
	endpoint, mode, name, nodeID, pools, stateDir, logDir, kubeletDir string
	metricsAddr                                                       string
	copyWait                                                          time.Duration
	verbose                                                           bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("subvolkit-csi", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "gRPC endpoint: unix:///path/to/socket")
	fs.StringVar(&o.mode, "mode", driver.ModeAll, "controller, node or all")
	fs.StringVar(&o.name, "driver-name", driver.DefaultName, "CSI driver name")
	fs.StringVar(&o.nodeID, "node-id", "", "this node's ID (node mode; default: the host name)")
	fs.StringVar(&o.pools, "pools", "", "pools file, YAML or JSON (controller mode)")
	fs.StringVar(&o.stateDir, "state-dir", mount.DefaultStateDir, "node state: shared mounts, locks, staged volumes (must be shared with the host, Bidirectional)")
	fs.StringVar(&o.logDir, "log-dir", mount.DefaultLogDir, "glusterfs client logs")
	fs.StringVar(&o.kubeletDir, "kubelet-dir", "", "if set, refuse staging and target paths outside it (e.g. /var/lib/kubelet)")
	fs.DurationVar(&o.copyWait, "copy-wait", 5*time.Second, "how long CreateVolume/CreateSnapshot wait for a copy before answering ABORTED (in progress)")
	fs.StringVar(&o.metricsAddr, "metrics-address", "", "if set, serve Prometheus metrics at http://ADDRESS/metrics (e.g. :9808): Pool operations of every pool, node metrics in node mode")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.mode {
	case driver.ModeController, driver.ModeNode, driver.ModeAll:
	default:
		return nil, fmt.Errorf("--mode=%q: want controller, node or all", o.mode)
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	endpoint, mode, name, nodeID, pools, stateDir, logDir, kubeletDir, copyWait, verbose :=
		&o.endpoint, &o.mode, &o.name, &o.nodeID, &o.pools, &o.stateDir, &o.logDir, &o.kubeletDir, &o.copyWait, &o.verbose
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
	if o.metricsAddr != "" {
		var h http.Handler
		h, cfg.Observer = driverMetrics(*mode, cfg.Pools, log)
		shutdown, err := serveMetrics(ctx, o.metricsAddr, h, log)
		if err != nil {
			return fmt.Errorf("--metrics-address: %w", err)
		}
		defer shutdown()
	}
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
