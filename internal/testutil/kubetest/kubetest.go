// Package kubetest runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and kube-controller-manager (its PersistentVolume binder,
// expander and protection controllers), on 127.0.0.1 with free ports, as
// controller-runtime's envtest does with downloaded binaries.
//
// No binary can be downloaded on the test machines, so the binaries are
// built from the Go module proxy by scripts/build-kube.sh and cached outside
// the repository, keyed by version (/var/cache/subvolkit/kube/v1.37.2/):
// only the first run on a machine pays the build (about 15 minutes on two
// cores). Start builds them when they are missing; KUBETEST_BIN_DIR points
// at binaries built elsewhere.
//
// There is no kubelet and no scheduler: pods do not run. A test that needs
// what a PersistentVolume describes mounts it itself.
//
// Every process is started by this package as a child and stopped through
// its pidfd (os.Process uses one on Linux), so a recycled PID is never
// signalled; the children also get SIGKILL if the test process dies
// (Pdeathsig). The package needs no client library: it writes a kubeconfig
// (Kubeconfig) that the caller's client reads.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Kubernetes version the harness builds and runs.
const Version = "1.37.2"

// DefaultControllers are the kube-controller-manager controllers Start runs
// when Options.Controllers is empty: what a storage provisioner needs to see
// claims bound, expanded and deleted.
var DefaultControllers = []string{
	"persistentvolume-binder-controller",
	"persistentvolume-expander-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
}

// Binaries are the programs the harness runs, all in one directory.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

// Options tune Start. A nil *Options means the defaults.
type Options struct {
	// BinDir holds etcd, kube-apiserver and kube-controller-manager.
	// "" means $KUBETEST_BIN_DIR, or else the version's cache directory,
	// built there by scripts/build-kube.sh if it is incomplete.
	BinDir string
	// Controllers are the kube-controller-manager controllers to run;
	// empty means DefaultControllers.
	Controllers []string
	// ReadyTimeout bounds the wait for each component to answer its health
	// check; 0 means 90 s.
	ReadyTimeout time.Duration
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
// Its methods are safe for concurrent use.
type ControlPlane struct {
	dir        string
	token      string
	apiPort    int
	kcmPort    int
	etcdPort   int
	kubeconfig string

	mu    sync.Mutex
	procs []*proc // in start order
}

// proc is a child process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done
	log  string
}

// Prereqs reports why the control plane cannot start here ("" if it can,
// possibly after building the binaries): it needs Linux, and either the
// binaries or go and flock to build them.
func Prereqs() string {
	if runtime.GOOS != "linux" {
		return "kubetest needs Linux"
	}
	if dir := binDir(""); complete(dir) {
		return ""
	}
	for _, p := range []string{"go", "flock", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Sprintf("kubetest: the control-plane binaries are missing and %s (to build them) is not in PATH", p)
		}
	}
	return ""
}

// StartT calls Start with t's context and registers t.Cleanup(Stop). When the
// control plane cannot start it fails the test; when the prerequisites are
// missing (Prereqs) it skips it, except under CI (CI non-empty) where it fails.
func StartT(t testing.TB, opts *Options) *ControlPlane {
	t.Helper()
	if why := Prereqs(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("kubetest: %s", why)
		}
		t.Skipf("kubetest: %s", why)
	}
	cp, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("kubetest: stop: %v", err)
		}
	})
	return cp
}

// EnsureBinaries returns the directory holding the control-plane binaries,
// building them with scripts/build-kube.sh if dir (or, when dir is "", the
// default directory) lacks one. The build takes about 15 minutes on two
// cores the first time; concurrent callers wait for one build.
func EnsureBinaries(ctx context.Context, dir string) (string, error) {
	dir = binDir(dir)
	if complete(dir) {
		return dir, nil
	}
	if dir != defaultBinDir() {
		return "", fmt.Errorf("%s lacks one of %s (only %s is built on demand)", dir, strings.Join(Binaries, ", "), defaultBinDir())
	}
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "nice", "-n", "10", "bash", script)
	cmd.Env = append(os.Environ(), "KUBE_VERSION="+Version, "KUBE_CACHE="+filepath.Dir(defaultBinDir()))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	fmt.Fprintf(os.Stderr, "kubetest: building the Kubernetes v%s control plane into %s (about 15 minutes the first time)\n", Version, dir)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the control plane with %s: %w\n%s", script, err, tail(out.String(), 4000))
	}
	fmt.Fprintf(os.Stderr, "kubetest: built the control plane in %s\n", time.Since(start).Round(time.Second))
	if !complete(dir) {
		return "", fmt.Errorf("%s ran but %s is incomplete:\n%s", script, dir, tail(out.String(), 4000))
	}
	return dir, nil
}

func defaultBinDir() string { return "/var/cache/subvolkit/kube/v" + Version }

func binDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("KUBETEST_BIN_DIR"); d != "" {
		return d
	}
	return defaultBinDir()
}

func complete(dir string) bool {
	for _, b := range Binaries {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildScript finds scripts/build-kube.sh from this source file's location.
func buildScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate scripts/build-kube.sh: no caller information")
	}
	s := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "build-kube.sh")
	if _, err := os.Stat(s); err != nil {
		return "", fmt.Errorf("cannot locate the build script: %w", err)
	}
	return s, nil
}

// Start builds the binaries if needed (see EnsureBinaries), then starts etcd,
// kube-apiserver and kube-controller-manager on 127.0.0.1 and waits until
// each answers its health check. On error it stops what it started. The
// caller must call Stop.
func Start(ctx context.Context, opts *Options) (*ControlPlane, error) {
	if opts == nil {
		opts = &Options{}
	}
	bin, err := EnsureBinaries(ctx, opts.BinDir)
	if err != nil {
		return nil, err
	}
	ready := opts.ReadyTimeout
	if ready <= 0 {
		ready = 90 * time.Second
	}
	controllers := opts.Controllers
	if len(controllers) == 0 {
		controllers = DefaultControllers
	}
	// A free port can be taken by someone else between our probe and the
	// child's bind; try again with new ports when that happens.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cp, err := start(ctx, bin, controllers, ready)
		if err == nil {
			return cp, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port already in use")

func start(ctx context.Context, bin string, controllers []string, ready time.Duration) (_ *ControlPlane, err error) {
	dir, err := os.MkdirTemp("", "svk-kube-")
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{dir: dir}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	cp.etcdPort, cp.apiPort, cp.kcmPort = ports[0], ports[1], ports[3]
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	cp.token = hex.EncodeToString(tok)
	if err := cp.writeFiles(); err != nil {
		return nil, err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(cp.etcdPort)
	if err := cp.run("etcd", filepath.Join(bin, "etcd"),
		"--name=kubetest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[2]),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(ports[2]),
		"--initial-cluster=kubetest=http://127.0.0.1:"+strconv.Itoa(ports[2]),
		"--unsafe-no-fsync", // a throwaway store: speed over durability
		"--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := cp.waitHTTP(ctx, "etcd", etcdURL+"/health", "", ready); err != nil {
		return nil, err
	}

	if err := cp.run("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(cp.apiPort),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://localhost",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
	); err != nil {
		return nil, err
	}
	if err := cp.waitHTTP(ctx, "kube-apiserver", cp.Host()+"/readyz", cp.token, ready); err != nil {
		return nil, err
	}

	if err := cp.run("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+cp.kubeconfig,
		"--authentication-kubeconfig="+cp.kubeconfig,
		"--authorization-kubeconfig="+cp.kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(cp.kcmPort),
		"--cert-dir="+filepath.Join(dir, "kcm-certs"),
		"--leader-elect=false",
		"--controllers="+strings.Join(controllers, ","),
		"--service-account-private-key-file="+filepath.Join(dir, "sa.key"),
		"--pvclaimbinder-sync-period=1s",
	); err != nil {
		return nil, err
	}
	if err := cp.waitHTTP(ctx, "kube-controller-manager", "https://127.0.0.1:"+strconv.Itoa(cp.kcmPort)+"/healthz", "", ready); err != nil {
		return nil, err
	}
	return cp, nil
}

// writeFiles writes the service-account key pair, the token file and the
// kubeconfig.
func (cp *ControlPlane) writeFiles() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(cp.token + ",admin,admin,system:masters\n"),
		"kubeconfig": []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: admin
    namespace: default
current-context: kubetest
`, cp.Host(), cp.token)),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(cp.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	cp.kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	return nil
}

// run starts one component as a child process, its output in <dir>/<name>.log.
func (cp *ControlPlane) run(name, path string, args ...string) error {
	logPath := filepath.Join(cp.dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close() // the child holds its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Dir = cp.dir
	// Its own process group, and SIGKILL if the test process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	cp.mu.Lock()
	cp.procs = append(cp.procs, p)
	cp.mu.Unlock()
	return nil
}

// waitHTTP polls url until it answers 200, the component exits, or timeout.
func (cp *ControlPlane) waitHTTP(ctx context.Context, name, url, token string, timeout time.Duration) error {
	p := cp.proc(name)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:n])))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			log := readTail(p.log, 3000)
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%s exited: %w:\n%s", name, errPortTaken, log)
			}
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", name, p.err, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (%s); log tail:\n%s", name, timeout, last, readTail(p.log, 3000))
		}
	}
}

func (cp *ControlPlane) proc(name string) *proc {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Host returns the API server's URL, https://127.0.0.1:<port>.
func (cp *ControlPlane) Host() string { return "https://127.0.0.1:" + strconv.Itoa(cp.apiPort) }

// Token returns the bearer token of the admin user (group system:masters).
func (cp *ControlPlane) Token() string { return cp.token }

// Kubeconfig returns the path of a kubeconfig for the admin user (TLS
// verification off: the API server's certificate is self-signed).
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// Dir returns the control plane's private directory (logs, data, keys); Stop
// removes it.
func (cp *ControlPlane) Dir() string { return cp.dir }

// Ports returns the TCP ports the control plane listens on (etcd client,
// kube-apiserver, kube-controller-manager).
func (cp *ControlPlane) Ports() []int { return []int{cp.etcdPort, cp.apiPort, cp.kcmPort} }

// PIDs returns the process ids of the components still running.
func (cp *ControlPlane) PIDs() []int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var pids []int
	for _, p := range cp.procs {
		select {
		case <-p.done:
		default:
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}

// Log returns the tail of a component's log (etcd, kube-apiserver or
// kube-controller-manager), for failure messages.
func (cp *ControlPlane) Log(name string, max int) string {
	if p := cp.proc(name); p != nil {
		return readTail(p.log, max)
	}
	return ""
}

// Stop stops the components in reverse start order (SIGTERM through the
// process's pidfd, SIGKILL after 10 s), waits for them and removes Dir.
// It is idempotent.
func (cp *ControlPlane) Stop() error {
	cp.mu.Lock()
	procs := cp.procs
	cp.procs = nil
	cp.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if cp.dir != "" {
		if err := os.RemoveAll(cp.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stop ends one child: os.Process signals through its pidfd.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func readTail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(string(b), max)
}

func tail(s string, max int) string {
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
