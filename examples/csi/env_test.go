package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/examples/csi/driver"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/mount"
)

// backendSeq numbers the test backends registered with backend.Register.
var backendSeq atomic.Int64

// registerCluster registers a backend name that opens the cli backend on c
// (through the harness's runner, which reaches the node's glusterd inside
// its namespaces) and returns the name, for a pools file.
func registerCluster(t testing.TB, c *glustertest.Cluster) string {
	name := fmt.Sprintf("glt%d", backendSeq.Add(1))
	dir := t.TempDir()
	backend.Register(name, func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		for k := range params {
			return nil, fmt.Errorf("unknown parameter %q", k)
		}
		if err := cli.Prepare(ctx, c.Runner(1), c.Volume(), &cli.PrepareOptions{StrictQuota: true}); err != nil {
			return nil, err
		}
		return cli.Open(ctx, &cli.Options{
			Volume: c.Volume(), Servers: c.Servers(), Runner: c.Runner(1),
			MountDir: filepath.Join(dir, "mnt"),
		})
	})
	return name
}

// env is a driver in --mode=all on a real one-node GlusterFS volume, served
// on a unix socket, and clients of it.
type env struct {
	c        *glustertest.Cluster
	d        *driver.Driver
	m        *mount.Mounter
	sock     string
	kubelet  string // staging and target paths go under it
	state    string
	ctrl     csi.ControllerClient
	node     csi.NodeClient
	identity csi.IdentityClient
	stop     func()
}

// envOptions tune newEnv.
type envOptions struct {
	pools    string // pools file content; "" means one pool "sanity" on the cluster
	copyWait time.Duration
	state    string // node state dir; "" means a fresh one
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func startCluster(t testing.TB) *glustertest.Cluster {
	glustertest.RequirePrereqs(t)
	return glustertest.StartT(t, &glustertest.Options{Nodes: 1})
}

func poolsFor(t testing.TB, c *glustertest.Cluster, capacity string) string {
	b := registerCluster(t, c)
	s := "pools:\n  sanity:\n    backend: " + b + "\n"
	if capacity != "" {
		s += "    capacity: " + capacity + "\n"
	}
	return s
}

// newEnv starts a driver on c. Everything it mounted is unmounted when the
// test ends.
func newEnv(t testing.TB, c *glustertest.Cluster, o envOptions) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{c: c, kubelet: filepath.Join(base, "kubelet"), state: o.state, sock: filepath.Join(base, "csi.sock")}
	if e.state == "" {
		e.state = filepath.Join(base, "state")
	}
	if o.pools == "" {
		o.pools = poolsFor(t, c, "")
	}
	pools, err := driver.ParsePools([]byte(o.pools))
	if err != nil {
		t.Fatalf("pools: %v", err)
	}
	if err := os.MkdirAll(e.kubelet, 0o755); err != nil {
		t.Fatal(err)
	}
	e.m, err = mount.New(&mount.Options{Mode: mount.ModeShared, StateDir: e.state, LogDir: filepath.Join(base, "log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAll(t, e.m) })
	e.start(t, pools, o.copyWait)
	return e
}

// start runs a driver (again) on the env's socket.
func (e *env) start(t testing.TB, pools map[string]*driver.PoolConfig, copyWait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := driver.New(ctx, driver.Config{Mode: driver.ModeAll, NodeID: "node-1", Pools: pools, Mounter: e.m,
		StateDir: filepath.Join(e.state, "csi"), KubeletDir: e.kubelet, CopyWait: copyWait})
	if err != nil {
		cancel()
		t.Fatalf("driver.New: %v", err)
	}
	_ = os.Remove(e.sock)
	lis, err := net.Listen("unix", e.sock)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Serve(ctx, lis); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := grpc.NewClient("unix://"+e.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			conn.Close()
			cancel()
			wg.Wait()
			if err := d.Close(); err != nil {
				t.Errorf("closing the driver: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	e.d = d
	e.ctrl, e.node, e.identity = csi.NewControllerClient(conn), csi.NewNodeClient(conn), csi.NewIdentityClient(conn)
}

// unmountAll unpublishes every bind of every shared mount of m.
func unmountAll(t testing.TB, m *mount.Mounter) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sms, err := m.SharedMounts()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, sm := range sms {
		for _, b := range sm.Binds {
			if err := m.Unpublish(ctx, b.Target); err != nil {
				t.Errorf("cleanup: unpublish %s: %v", b.Target, err)
			}
		}
	}
	if _, err := m.Heal(ctx); err != nil { // unmounts unused shared mounts
		t.Logf("cleanup: heal: %v", err)
	}
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
}

var rwx = []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}

// create creates a volume of size bytes in pool "sanity".
func (e *env) create(t testing.TB, name string, size int64) *csi.Volume {
	t.Helper()
	resp, err := e.ctrl.CreateVolume(ctxT(t), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwx,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, Parameters: map[string]string{"pool": "sanity"}})
	if err != nil {
		t.Fatalf("CreateVolume(%q): %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := e.ctrl.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: resp.Volume.VolumeId}); err != nil &&
			!strings.Contains(err.Error(), "connection") {
			t.Logf("cleanup: DeleteVolume: %v", err)
		}
	})
	return resp.Volume
}

// stage stages v at <kubelet>/stage/<name> and returns the path.
func (e *env) stage(t testing.TB, v *csi.Volume) string {
	t.Helper()
	p := filepath.Join(e.kubelet, "stage", filepath.Base(v.VolumeId))
	if err := os.MkdirAll(p, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.NodeStageVolume(ctxT(t), &csi.NodeStageVolumeRequest{VolumeId: v.VolumeId, StagingTargetPath: p,
		VolumeCapability: rwx[0], VolumeContext: v.VolumeContext}); err != nil {
		t.Fatalf("NodeStageVolume(%s): %v", v.VolumeId, err)
	}
	return p
}

// publish publishes v (staged at staging) at <kubelet>/pods/<pod>/<name>.
func (e *env) publish(t testing.TB, v *csi.Volume, staging, pod string, ro bool) string {
	t.Helper()
	p := filepath.Join(e.kubelet, "pods", pod, filepath.Base(v.VolumeId))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.NodePublishVolume(ctxT(t), &csi.NodePublishVolumeRequest{VolumeId: v.VolumeId, StagingTargetPath: staging,
		TargetPath: p, VolumeCapability: rwx[0], Readonly: ro, VolumeContext: v.VolumeContext}); err != nil {
		t.Fatalf("NodePublishVolume(%s, %s): %v", v.VolumeId, p, err)
	}
	return p
}

// glusterfsClients counts the glusterfs client processes of the test's
// state directory (the shared mounts).
func glusterfsClients(t testing.TB, state string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "glusterfs" {
			continue
		}
		if last := args[len(args)-1]; strings.HasPrefix(last, state+"/") {
			n++
		}
	}
	return n
}

// sharedClientPID returns the pid of the glusterfs client of the env's one
// shared mount.
func sharedClientPID(t testing.TB, state string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) == "glusterfs" && strings.HasPrefix(args[len(args)-1], state+"/") {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			return pid
		}
	}
	t.Fatalf("no glusterfs client for %s", state)
	return 0
}

// poll calls cond until it is true or timeout passes.
func poll(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(delay)
	}
}

func mustPools(t testing.TB, s string) map[string]*driver.PoolConfig {
	t.Helper()
	p, err := driver.ParsePools([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
