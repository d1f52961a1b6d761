package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/kubetest"
	"github.com/subvolkit/subvolkit/subvol"
)

// childEnv makes the test binary run the provisioner's main instead of the
// tests, so the tests start (and kill) the real program without building it
// separately.
const childEnv = "SUBVOLKIT_PROVISIONER_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signalContext()
		code := run(ctx, os.Args[1:], os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// env is a real control plane, a real GlusterFS cluster and the provisioner
// running as a child process against both.
type env struct {
	t       testing.TB
	cp      *kubetest.ControlPlane
	gc      *glustertest.Cluster
	client  kubernetes.Interface
	pool    *subvol.Pool // the test's own view of the volume
	volMnt  string       // the whole volume, mounted by the test
	wrapper string       // gluster CLI wrapper for the provisioner

	mu      sync.Mutex
	prov    *exec.Cmd
	provLog *bytes.Buffer
	metrics string
	waitErr chan error
}

func newEnv(t testing.TB) *env {
	t.Helper()
	start := time.Now()
	cp := kubetest.StartT(t, nil)
	t.Logf("control plane ready in %s", time.Since(start).Round(time.Millisecond))
	gc := glustertest.StartT(t, nil)
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cp: cp, gc: gc, client: client}

	// The provisioner runs the gluster CLI inside node 1's namespaces, as
	// glustertest's Runner does, through a wrapper given as --gluster-path.
	dir := t.TempDir()
	e.wrapper = filepath.Join(dir, "gluster")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --mount=/proc/%d/ns/mnt --net=/run/netns/%s -- gluster --glusterd-sock=%s --log-file=%s \"$@\"\n",
		gc.GlusterdPID(1), gc.Netns(1), gc.GlusterdSocket(1), filepath.Join(gc.LogDir(1), "cli.log"))
	if err := os.WriteFile(e.wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	b, err := cli.Open(t.Context(), &cli.Options{Volume: gc.Volume(), Servers: gc.Servers(), Runner: gc.Runner(1),
		MountDir: filepath.Join(dir, "testmnt")})
	if err != nil {
		t.Fatal(err)
	}
	e.pool = subvol.NewPool(b, nil)
	t.Cleanup(func() { _ = e.pool.Close() })
	e.volMnt = gc.MountT(t, "")
	e.startProvisioner()
	t.Cleanup(e.stopProvisioner)
	return e
}

// startProvisioner starts the provisioner (the test binary as main).
func (e *env) startProvisioner() {
	e.t.Helper()
	port := freePort(e.t)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.metrics = "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	cmd := exec.Command(os.Args[0],
		"--kubeconfig="+e.cp.Kubeconfig(),
		"--metrics-address=127.0.0.1:"+strconv.Itoa(port),
		"--gluster-path="+e.wrapper,
		"--leader-elect=true",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms",
		"--endpoints-resync=3s",
		"--retry-interval-start=300ms",
		"--worker-threads=20",
	)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	e.provLog = &bytes.Buffer{}
	cmd.Stdout = &syncWriter{w: e.provLog, mu: &e.mu}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.prov = cmd
	e.waitErr = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, e.waitErr)
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// killProvisioner SIGKILLs the provisioner (through its pidfd) and waits.
func (e *env) killProvisioner() {
	e.mu.Lock()
	cmd, ch := e.prov, e.waitErr
	e.prov = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-ch
}

// stopProvisioner stops it gracefully (SIGTERM, SIGKILL after 15 s).
func (e *env) stopProvisioner() {
	e.mu.Lock()
	cmd, ch := e.prov, e.waitErr
	e.prov = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-ch
	}
}

func (e *env) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.provLog.String()
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// --- Kubernetes helpers ---

func (e *env) namespace(t *testing.T) string {
	t.Helper()
	name := "t-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-")
	_, err := e.client.CoreV1().Namespaces().Create(t.Context(), &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func (e *env) class(t testing.TB, name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: name},
		Provisioner: "subvolkit.io/glusterfs",
		Parameters:  params,
	}
	for _, m := range mod {
		m(sc)
	}
	sc, err := e.client.StorageV1().StorageClasses().Create(t.Context(), sc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.client.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return sc
}

// cliParams are StorageClass parameters for the test volume.
func (e *env) cliParams(extra ...string) map[string]string {
	p := map[string]string{"backend": "cli", "volume": e.gc.Volume(), "servers": strings.Join(e.gc.Servers(), ",")}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

func (e *env) claim(t testing.TB, ns, name, class, size string, mod ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	t.Helper()
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			StorageClassName: &class,
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	for _, m := range mod {
		m(pvc)
	}
	pvc, err := e.client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pvc
}

// poll calls f every 100 ms until it returns true or timeout passes.
func poll(t testing.TB, timeout time.Duration, what string, f func() (bool, error), diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := f()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			msg := ""
			if diag != nil {
				msg = diag()
			}
			t.Fatalf("%s: not done after %s (last error: %v)\n%s", what, timeout, lastErr, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bound waits until the claim is Bound and returns it and its PV.
func (e *env) bound(t testing.TB, ns, name string, timeout time.Duration) (*v1.PersistentVolumeClaim, *v1.PersistentVolume) {
	t.Helper()
	var pvc *v1.PersistentVolumeClaim
	poll(t, timeout, "claim "+ns+"/"+name+" bound", func() (bool, error) {
		var err error
		pvc, err = e.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == v1.ClaimBound, err
	}, func() string { return e.events(ns, name) + "\nprovisioner log:\n" + e.log() })
	pv, err := e.client.CoreV1().PersistentVolumes().Get(context.Background(), pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pvc, pv
}

func (e *env) events(ns, name string) string {
	evs, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ev := range evs.Items {
		fmt.Fprintf(&b, "event %s %s: %s\n", ev.Type, ev.Reason, ev.Message)
	}
	return b.String()
}

func (e *env) deleteClaim(t testing.TB, ns, name string) {
	t.Helper()
	if err := e.client.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func (e *env) pvGone(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, "PV "+name+" deleted", func() (bool, error) {
		_, err := e.client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	}, func() string { return "provisioner log:\n" + e.log() })
}

// subvolExists reports whether the subvolume's directory is on the volume.
func (e *env) subvolExists(name string) bool {
	_, err := os.Stat(filepath.Join(e.volMnt, name))
	return err == nil
}

// subvolGone reports whether name has left the volume within 10 s. The
// test's own FUSE client may answer from its entry cache (about 1 s) for a
// moment after the provisioner's client removed the directory.
func (e *env) subvolGone(name string) bool {
	for deadline := time.Now().Add(10 * time.Second); ; {
		if !e.subvolExists(name) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mountPV mounts what a glusterfs PV describes (its Endpoints' first
// address and its path), as kubelet's glusterfs plugin did, and returns the
// mount point; it is unmounted in t.Cleanup.
func (e *env) mountPV(t testing.TB, pv *v1.PersistentVolume) string {
	t.Helper()
	src := pv.Spec.Glusterfs
	if src == nil {
		t.Fatalf("PV %s has no glusterfs source", pv.Name)
	}
	ns := pv.Spec.ClaimRef.Namespace
	if src.EndpointsNamespace != nil {
		ns = *src.EndpointsNamespace
	}
	ep, err := e.client.CoreV1().Endpoints(ns).Get(context.Background(), src.EndpointsName, metav1.GetOptions{})
	if err != nil || len(ep.Subsets) == 0 || len(ep.Subsets[0].Addresses) == 0 {
		t.Fatalf("endpoints %s/%s of PV %s: %v %+v", ns, src.EndpointsName, pv.Name, err, ep)
	}
	mp := filepath.Join(t.TempDir(), "pv")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	source := ep.Subsets[0].Addresses[0].IP + ":/" + src.Path
	out, err := exec.Command("mount", "-t", "glusterfs", "-o", "log-file="+mp+".log", source, mp).CombinedOutput()
	if err != nil || !mounted(mp) {
		log, _ := os.ReadFile(mp + ".log")
		t.Fatalf("mount %s: %v %s\n%s", source, err, out, log)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mp).Run() })
	return mp
}

func mounted(mp string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) > 4 && fs[4] == mp {
			return true
		}
	}
	return false
}

// writeUntilFull writes 1 MiB blocks (fsync after each) to path until an
// error or max bytes, and returns how much was written and the error.
func writeUntilFull(path string, max int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xab}, 1<<20)
	var n int64
	for n < max {
		m, err := f.Write(buf)
		n += int64(m)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (e *env) scrape(t testing.TB) string {
	t.Helper()
	e.mu.Lock()
	url := e.metrics
	e.mu.Unlock()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}
