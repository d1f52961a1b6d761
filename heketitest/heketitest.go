// Package heketitest runs the real heketi server (see Version) with its
// mock executor, for tests of heketi clients: subvolkit's heketi backend,
// heketi-compatible servers compared with the original, your own code.
//
// Build compiles heketi and heketi-cli from heketi's Go module once per
// machine and caches them outside the repository. Start runs the server in
// a network namespace of its own (heketi listens on every interface, so it
// must not run in the host's), loads a topology of fake nodes and devices
// with heketi-cli (the mock executor accepts any host and makes every device
// 500 GiB), and gives an http.Client that dials into that namespace and a
// way to run heketi-cli there.
//
// It needs root, ip(8) and a Go toolchain. StartT skips the test when they
// are missing, or fails it when the CI environment variable is set.
package heketitest

import (
	"bytes"
	"context"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Port is the port heketi listens on inside its namespace.
const Port = 8080

// Options configure a Server. A nil *Options means authentication on with
// generated keys and three nodes of one device each.
type Options struct {
	// AdminKey and UserKey are the JWT secrets of heketi's "admin" and
	// "user" issuers; empty ones are generated (unless DisableAuth).
	AdminKey, UserKey string
	// DisableAuth runs heketi with --disable-auth.
	DisableAuth bool
	// Nodes are the storage host names of the topology's nodes, each
	// with one device (/dev/sdb); nil means 10.0.0.1, 10.0.0.2, 10.0.0.3.
	Nodes []string
	// Binaries are the binaries to run; nil means Build(ctx, "").
	Binaries *Binaries
}

// Server is a running heketi server in its own network namespace.
type Server struct {
	opts  Options
	bins  *Binaries
	dir   string
	netns string
	nsFD  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// Prereqs reports why heketitest cannot run here, or "".
func Prereqs() string {
	if os.Geteuid() != 0 {
		return "not root (network namespaces need it)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip(8) not found"
	}
	if _, err := exec.LookPath("go"); err != nil && os.Getenv("GOROOT") == "" {
		return "no Go toolchain to build heketi with"
	}
	return ""
}

// StartT starts a server for t and stops it, and removes its namespace, in
// t.Cleanup. Missing prerequisites (Prereqs) skip t, or fail it when the CI
// environment variable is set; so does a failed build.
func StartT(t testing.TB, opts *Options) *Server {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatalf("heketitest: %s (CI is set, so this is fatal)", msg)
		}
		t.Skipf("heketitest: SKIPPING real-heketi test: %s (set CI=1 to make this fatal)", msg)
	}
	if why := Prereqs(); why != "" {
		fail("%s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Binaries == nil {
		b, err := Build(ctx, "")
		if err != nil {
			fail("%v", err)
		}
		o.Binaries = b
	}
	s, err := Start(ctx, t.TempDir(), &o)
	if err != nil {
		t.Fatalf("heketitest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("heketitest: %v", err)
		}
	})
	return s
}

var seq atomic.Int64

// Start starts heketi with the mock executor in a new network namespace,
// with its database and log in dir, and loads the topology. Close stops it.
func Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Binaries == nil {
		b, err := Build(ctx, "")
		if err != nil {
			return nil, err
		}
		o.Binaries = b
	}
	if !o.DisableAuth {
		if o.AdminKey == "" {
			o.AdminKey = "admin-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
		if o.UserKey == "" {
			o.UserKey = "user-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	}
	s := &Server{opts: o, bins: o.Binaries, dir: dir,
		netns: fmt.Sprintf("svkhk-%d-%d", os.Getpid(), seq.Add(1))}
	if err := s.makeNetns(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	for _, step := range []func() error{s.writeConfig, func() error { return s.Restart(ctx) }, func() error { return s.loadTopology(ctx) }} {
		if err := step(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) makeNetns(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", s.netns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", s.netns, err, out)
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", s.netns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s link set lo up: %w: %s", s.netns, err, out)
	}
	f, err := os.Open(filepath.Join("/run/netns", s.netns))
	if err != nil {
		return err
	}
	s.nsFD = f
	return nil
}

func (s *Server) writeConfig() error {
	cfg := map[string]any{
		"port":     strconv.Itoa(Port),
		"use_auth": !s.opts.DisableAuth,
		"glusterfs": map[string]any{
			"executor": "mock",
			"db":       filepath.Join(s.dir, "heketi.db"),
		},
	}
	if !s.opts.DisableAuth {
		cfg["jwt"] = map[string]any{
			"admin": map[string]string{"key": s.opts.AdminKey},
			"user":  map[string]string{"key": s.opts.UserKey},
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "heketi.json"), b, 0o600)
}

// Restart starts the server again after Stop (same database, so the same
// topology and volumes), and waits until it answers /hello.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("heketi is running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "heketi.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"netns", "exec", s.netns, s.bins.Server, "--config=" + filepath.Join(s.dir, "heketi.json")}
	if s.opts.DisableAuth {
		args = append(args, "--disable-auth") // "use_auth": false is ignored by v10
	}
	// ip netns exec execs heketi in the same process: the PID is heketi's.
	cmd := exec.Command("ip", args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// No Pdeathsig: it fires when the forking thread ends, and Go may end
	// threads; Close (in t.Cleanup) stops the server.
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting heketi: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.logf = cmd, done, logf
	hc := s.HTTPClient()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/hello", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("heketi exited: %s", s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("heketi did not answer /hello within 30 s: %s", s.logTail())
		}
	}
}

// Stop kills the server (its database stays) and waits for it to exit.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Kill() // our own child, by PID (not reaped until done)
	<-s.done
	s.logf.Close()
	s.cmd, s.done, s.logf = nil, nil, nil
	return nil
}

// Close stops the server and removes its network namespace.
func (s *Server) Close() error {
	err := s.Stop()
	if s.nsFD != nil {
		s.nsFD.Close()
		s.nsFD = nil
	}
	if out, derr := exec.Command("ip", "netns", "del", s.netns).CombinedOutput(); derr != nil && !strings.Contains(string(out), "No such file") {
		err = errors.Join(err, fmt.Errorf("ip netns del %s: %w: %s", s.netns, derr, out))
	}
	return err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "heketi.log"))
	return lastLines(b, 15)
}

// URL is the server's URL, reachable through HTTPClient and from CLI.
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(Port) }

// Netns is the name of the server's network namespace.
func (s *Server) Netns() string { return s.netns }

// AdminKey and UserKey are the JWT secrets ("" with DisableAuth).
func (s *Server) AdminKey() string { return s.opts.AdminKey }

// UserKey is the JWT secret of the "user" issuer.
func (s *Server) UserKey() string { return s.opts.UserKey }

// Binaries are the binaries the server runs.
func (s *Server) Binaries() *Binaries { return s.bins }

// Dial connects to addr (such as URL's host) inside the server's network
// namespace: the socket is made on a thread switched into the namespace
// and back (a socket stays in the namespace it was made in).
func (s *Server) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if sysSetns < 0 {
		return nil, fmt.Errorf("setns: not supported on %s", runtime.GOARCH)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer home.Close()
		if err := setns(s.nsFD); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("entering %s: %w", s.netns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if setns(home) == nil {
			runtime.UnlockOSThread()
		} // else the thread, stuck in the namespace, ends with this goroutine
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func setns(f *os.File) error {
	if _, _, errno := syscall.RawSyscall(uintptr(sysSetns), f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
		return errno
	}
	return nil
}

// HTTPClient returns an http.Client whose connections are made inside the
// server's network namespace.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: s.Dial, DisableKeepAlives: true}, Timeout: time.Minute}
}

// CLI runs heketi-cli inside the server's namespace against it, as the
// admin user (with its key unless auth is disabled), and returns its
// combined output.
func (s *Server) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return s.CLIAs(ctx, "admin", s.opts.AdminKey, args...)
}

// CLIAs runs heketi-cli inside the server's namespace with the given user
// and secret ("" for none).
func (s *Server) CLIAs(ctx context.Context, user, secret string, args ...string) ([]byte, error) {
	return RunCLI(ctx, s.bins.CLI, s.netns, s.URL(), user, secret, args...)
}

// RunCLI runs heketi-cli against url with user and secret ("" for none), in
// network namespace netns ("" for the caller's), and returns its combined
// output. The secret is passed in the environment, not on the command line.
func RunCLI(ctx context.Context, cli, netns, url, user, secret string, args ...string) ([]byte, error) {
	full := append([]string{"--server", url, "--user", user}, args...)
	var cmd *exec.Cmd
	if netns != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netns, cli}, full...)...)
	} else {
		cmd = exec.CommandContext(ctx, cli, full...)
	}
	cmd.Env = append(os.Environ(), "HEKETI_CLI_KEY="+secret)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// loadTopology loads one cluster of opts.Nodes, one device each.
func (s *Server) loadTopology(ctx context.Context) error {
	type device struct {
		Name        string `json:"name"`
		DestroyData bool   `json:"destroydata"`
	}
	type node struct {
		Node struct {
			Hostnames struct {
				Manage  []string `json:"manage"`
				Storage []string `json:"storage"`
			} `json:"hostnames"`
			Zone int `json:"zone"`
		} `json:"node"`
		Devices []device `json:"devices"`
	}
	var topo struct {
		Clusters []struct {
			Nodes []node `json:"nodes"`
		} `json:"clusters"`
	}
	topo.Clusters = make([]struct {
		Nodes []node `json:"nodes"`
	}, 1)
	for i, h := range s.opts.Nodes {
		var n node
		n.Node.Hostnames.Manage = []string{h}
		n.Node.Hostnames.Storage = []string{h}
		n.Node.Zone = i%3 + 1
		n.Devices = []device{{Name: "/dev/sdb"}}
		topo.Clusters[0].Nodes = append(topo.Clusters[0].Nodes, n)
	}
	b, err := json.Marshal(topo)
	if err != nil {
		return err
	}
	f := filepath.Join(s.dir, "topology.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		return err
	}
	out, err := s.CLI(ctx, "topology", "load", "--json="+f)
	if err != nil {
		return fmt.Errorf("heketi-cli topology load: %w: %s", err, out)
	}
	return nil
}
