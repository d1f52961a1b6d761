package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/subvolkit/subvolkit/mount"
	"github.com/subvolkit/subvolkit/subvol"
)

// Modes of the driver.
const (
	ModeController = "controller"
	ModeNode       = "node"
	ModeAll        = "all"
)

// DefaultName is the driver's default CSI name.
const DefaultName = "csi.subvolkit.io"

// Config configures a Driver.
type Config struct {
	// Name is the CSI driver name; default DefaultName.
	Name string
	// Version is reported by GetPluginInfo.
	Version string
	// Mode is ModeController, ModeNode or ModeAll.
	Mode string
	// NodeID is this node's ID (required in node mode).
	NodeID string
	// Pools are the named pools (required in controller mode).
	Pools map[string]*PoolConfig
	// Mounter publishes volumes on the node (required in node mode); it
	// must be in mount.ModeShared.
	Mounter *mount.Mounter
	// StateDir is where the node remembers what it staged (for
	// NodeGetVolumeHealth, which gets only a volume ID). Required in
	// node mode.
	StateDir string
	// KubeletDir, if set, is the directory every staging and target path
	// must be under (for example /var/lib/kubelet); others are refused.
	KubeletDir string
	// CopyWait bounds how long CreateVolume and CreateSnapshot wait for a
	// copy before they answer ABORTED "in progress" (the copy goes on);
	// default 5 s, below csi-provisioner's 10 s default timeout.
	CopyWait time.Duration
	// Logger receives one record per call (nil: silent).
	Logger *slog.Logger
	// Observer, if set, returns the Observer of the named pool's
	// operations (metrics); it is called once per pool, by New.
	Observer func(pool string) subvol.Observer
}

// Driver implements the CSI Identity, Controller and Node services. It is
// safe for concurrent use.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	cfg   Config
	log   *slog.Logger
	pools map[string]*poolEntry
	node  *node
}

// poolEntry opens its pool on first use, with the secrets of the call that
// needs it (heketi's and glusterd2's credentials are CSI secrets); the pool
// is reopened when a call brings other secrets.
type poolEntry struct {
	name string
	cfg  *PoolConfig
	mu   sync.Mutex
	pool *subvol.Pool
	hash string // of the secrets it was opened with
	obs  subvol.Observer
}

// New checks cfg and returns a Driver. In node mode it also heals the
// shared mounts whose FUSE client died while the plugin was down.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.CopyWait <= 0 {
		cfg.CopyWait = 5 * time.Second
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, pools: map[string]*poolEntry{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Mode {
	case ModeController, ModeNode, ModeAll:
	default:
		return nil, fmt.Errorf("mode %q: want controller, node or all", cfg.Mode)
	}
	if d.controller() {
		if len(cfg.Pools) == 0 {
			return nil, errors.New("controller mode needs at least one pool")
		}
		for name, pc := range cfg.Pools {
			e := &poolEntry{name: name, cfg: pc}
			if cfg.Observer != nil {
				e.obs = cfg.Observer(name)
			}
			d.pools[name] = e
		}
	}
	if d.nodeMode() {
		if cfg.NodeID == "" || cfg.Mounter == nil || cfg.StateDir == "" {
			return nil, errors.New("node mode needs a node ID, a Mounter and a state directory")
		}
		n, err := newNode(ctx, d)
		if err != nil {
			return nil, err
		}
		d.node = n
	}
	return d, nil
}

func (d *Driver) controller() bool { return d.cfg.Mode != ModeNode }
func (d *Driver) nodeMode() bool   { return d.cfg.Mode != ModeController }

// Serve serves the driver's services on lis until ctx is done, then stops
// gracefully.
func (d *Driver) Serve(ctx context.Context, lis net.Listener) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(d.logCalls))
	csi.RegisterIdentityServer(srv, d)
	if d.controller() {
		csi.RegisterControllerServer(srv, d)
	}
	if d.nodeMode() {
		csi.RegisterNodeServer(srv, d)
	}
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	err := srv.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// logCalls logs every call and turns stray SDK errors into statuses.
func (d *Driver) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	err = toStatus(err)
	if err != nil {
		d.log.InfoContext(ctx, "call failed", "method", info.FullMethod, "code", status.Code(err).String(), "err", err, "took", time.Since(start))
	} else {
		d.log.DebugContext(ctx, "call", "method", info.FullMethod, "took", time.Since(start))
	}
	return resp, err
}

// Close closes the pools the driver opened.
func (d *Driver) Close() error {
	var errs []error
	for _, e := range d.pools {
		e.mu.Lock()
		if e.pool != nil {
			errs = append(errs, e.pool.Close())
			e.pool = nil
		}
		e.mu.Unlock()
	}
	return errors.Join(errs...)
}

// pool returns the named pool, opened with secrets. An unknown pool is
// InvalidArgument when it comes from parameters and NotFound when it comes
// from an ID (the volume cannot exist): the caller says which code.
func (d *Driver) pool(ctx context.Context, name string, secrets map[string]string, unknown codes.Code) (*subvol.Pool, error) {
	e := d.pools[name]
	if e == nil {
		return nil, status.Errorf(unknown, "pool %q is not configured (pools: %v)", name, slices.Sorted(maps.Keys(d.pools)))
	}
	return e.open(ctx, secrets)
}

func secretsHash(secrets map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		fmt.Fprintf(h, "%q=%q\n", k, secrets[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (e *poolEntry) open(ctx context.Context, secrets map[string]string) (*subvol.Pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := secretsHash(secrets)
	if e.pool != nil && (h == e.hash || len(secrets) == 0) {
		return e.pool, nil
	}
	params := maps.Clone(e.cfg.Params)
	if params == nil {
		params = map[string]string{}
	}
	for k, v := range secrets {
		if _, dup := params[k]; dup {
			return nil, status.Errorf(codes.InvalidArgument, "secret key %q of pool %q is also a parameter in the pools file", k, e.name)
		}
		params[k] = v
	}
	p, err := subvol.Open(ctx, e.cfg.Backend, params, &subvol.Options{MaxSizeBytes: e.cfg.maxSize, Observer: e.obs})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "opening pool %q: %v", e.name, err)
	}
	if len(e.cfg.warm) > 0 {
		if err := p.SetWarm(e.cfg.warm); err != nil {
			_ = p.Close()
			return nil, status.Errorf(codes.FailedPrecondition, "pool %q: warm subvolumes: %v", e.name, err)
		}
	}
	if e.pool != nil {
		_ = e.pool.Close()
	}
	e.pool, e.hash = p, h
	return p, nil
}

// opened returns the pools that are open or can be opened without secrets,
// sorted by name.
func (d *Driver) opened(ctx context.Context) []namedPool {
	var out []namedPool
	for _, name := range slices.Sorted(maps.Keys(d.pools)) {
		p, err := d.pools[name].open(ctx, nil)
		if err != nil {
			d.log.WarnContext(ctx, "pool skipped", "pool", name, "err", err)
			continue
		}
		out = append(out, namedPool{name, p})
	}
	return out
}

type namedPool struct {
	name string
	pool *subvol.Pool
}

// GetPluginInfo implements csi.IdentityServer.
func (d *Driver) GetPluginInfo(ctx context.Context, req *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	v := d.cfg.Version
	if v == "" {
		v = "dev"
	}
	return &csi.GetPluginInfoResponse{Name: d.cfg.Name, VendorVersion: v}, nil
}

// GetPluginCapabilities implements csi.IdentityServer.
func (d *Driver) GetPluginCapabilities(ctx context.Context, req *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	caps := []*csi.PluginCapability{{Type: &csi.PluginCapability_VolumeExpansion_{
		VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: csi.PluginCapability_VolumeExpansion_ONLINE}}}}
	if d.controller() {
		caps = append(caps, &csi.PluginCapability{Type: &csi.PluginCapability_Service_{
			Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}}})
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe implements csi.IdentityServer: ready once started.
func (d *Driver) Probe(ctx context.Context, req *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}
