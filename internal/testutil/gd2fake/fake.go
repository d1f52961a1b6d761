// Package gd2fake is an in-process fake of the glusterd2 v4.1.1 REST API,
// for tests. It serves the volume, smart-volume, quota and snapshot routes a
// subvolume backend touches, on an httptest server, with the status codes,
// error bodies and authentication glusterd2 v4.1.1 has (read from its source:
// glusterd2/commands/volumes, plugins/smartvol, plugins/quota,
// glusterd2/commands/snapshot, glusterd2/middleware/auth.go,
// glusterd2/servers/rest). Requests and responses use the upstream
// github.com/gluster/glusterd2/pkg/api and plugins/smartvol/api types, so
// the upstream pkg/restclient works against it.
//
// # What is modelled
//
//   - GET /ping (200, no body) and GET /version; both need a token when
//     authentication is on, as upstream (the middleware runs before routing).
//   - POST /v1/smartvol: the request size is in MiB (glustercli converts
//     "--size 1G" to 1024), at least 10; a duplicate name is 400 "volume
//     already exists", checked before the transaction lock; bricks are
//     planned on the fake's peers, one zone per peer, as bricksplanner does.
//   - POST /v1/volumes (explicit bricks): a duplicate name is a failed
//     transaction step, 500 with error code 2, as upstream.
//   - GET /v1/volumes[?key=&value=], GET /v1/volumes/{v}, POST
//     /v1/volumes/{v}/start|stop|edit, DELETE /v1/volumes/{v} (400 "Volume
//     must be in stopped state before deleting." while started; a never
//     started volume may be deleted), GET /v1/volumes/{v}/status (400 "volume
//     not started" unless started; size capacity is the smart volume's size).
//   - POST /v1/quota/{v} (enable) and the stubs DELETE /v1/quota/{v},
//     GET|POST|DELETE /v1/quota/{v}/limit that answer 200 with a JSON string.
//   - POST /v1/snapshot/{s}/clone|restore, DELETE /v1/snapshot/{s} and the
//     /v1/snapshot/config routes: 501 with a JSON string, as upstream.
//
// Everything else (peers, devices, options, expand, snapshot create, ...) is
// not modelled and answers 404 "404 page not found" like an unknown route.
// Volumes hold no data; their used space is whatever SetUsed says.
//
// # Faults
//
// LockContention, Fail5xx, DropConnections, Slow, Delay and FailNext inject
// failures; Count and Total count requests. A Server is safe for concurrent
// use.
package gd2fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"

	"github.com/gluster/glusterd2/pkg/api"
)

// MiB is the unit of smart volume sizes in glusterd2 v4.1.1.
const MiB = 1 << 20

// Options configure a fake. A nil *Options means the defaults.
type Options struct {
	// Secret is the shared JWT secret (glusterd2's <workdir>/auth file).
	// Empty means a random one of 64 hex digits, as glusterd2 generates.
	Secret string
	// NoAuth turns authentication off (glusterd2's restauth=false).
	NoAuth bool
	// Hosts are the peers' host names, one peer each with one device. The
	// default is three peers, gd2-1.test, gd2-2.test and gd2-3.test.
	Hosts []string
	// DeviceBytes is the free space of each peer's device; default 1 TiB.
	DeviceBytes uint64
	// TLS serves HTTPS with a certificate httptest makes (see CACertPEM).
	TLS bool
}

// Peer is one fake glusterd2 peer.
type Peer struct {
	ID   string // peer UUID
	Host string // host name, the "host" of its bricks
}

// Server is a running fake glusterd2. Its methods are safe for concurrent use.
type Server struct {
	ts      *httptest.Server
	secret  string
	auth    bool
	peerID  string
	cluster string
	closing chan struct{}
	once    sync.Once

	mu      sync.Mutex
	peers   []*peer
	vols    map[string]*volume
	counts  map[string]int
	total   int
	lock    int // LockContention budget
	fail5xx int
	drop    int
	slow    time.Duration
	inject  []*injection
	delays  []*injection
}

type peer struct {
	id   []byte
	host string
	free uint64
}

type volume struct {
	info    api.VolumeInfo
	sizeMiB uint64
	used    uint64
	alloc   map[int]uint64 // peer index → bytes taken from its device
}

type injection struct {
	method, path string
	status       int
	message      string
	delay        time.Duration
	finish       bool // handle the request even if its client has gone
	left         int
}

// New starts a fake glusterd2. Call Close when done (t.Cleanup(s.Close)).
func New(opts *Options) *Server {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{
		secret:  opts.Secret,
		auth:    !opts.NoAuth,
		peerID:  uuidString(newUUID()),
		cluster: uuidString(newUUID()),
		closing: make(chan struct{}),
		vols:    make(map[string]*volume),
		counts:  make(map[string]int),
	}
	if s.secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		s.secret = hex.EncodeToString(b)
	}
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = []string{"gd2-1.test", "gd2-2.test", "gd2-3.test"}
	}
	free := opts.DeviceBytes
	if free == 0 {
		free = 1 << 40
	}
	for _, h := range hosts {
		s.peers = append(s.peers, &peer{id: newUUID(), host: h, free: free})
	}
	s.ts = httptest.NewUnstartedServer(s.routes())
	// Quiet: TLS handshakes a test makes fail on purpose are not news.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	return s
}

// URL is the base URL, such as "http://127.0.0.1:41234", without a slash.
func (s *Server) URL() string { return s.ts.URL }

// Secret is the JWT secret the fake checks tokens against.
func (s *Server) Secret() string { return s.secret }

// Client returns an *http.Client that trusts the fake's TLS certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// CACertPEM returns the PEM of the fake's TLS certificate, nil without TLS.
func (s *Server) CACertPEM() []byte {
	c := s.ts.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Close stops the server; requests held by Slow return at once.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Peers lists the fake's peers in the order of Options.Hosts.
func (s *Server) Peers() []Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Peer, len(s.peers))
	for i, p := range s.peers {
		out[i] = Peer{ID: uuidString(p.id), Host: p.host}
	}
	return out
}

// Volumes returns a copy of every volume, sorted by name.
func (s *Server) Volumes() []api.VolumeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.VolumeInfo, 0, len(s.vols))
	for _, name := range s.sortedNames() {
		out = append(out, copyInfo(&s.vols[name].info))
	}
	return out
}

// SetUsed sets the used bytes that GET /v1/volumes/{v}/status reports.
func (s *Server) SetUsed(name string, used uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return fmt.Errorf("gd2fake: no volume %q", name)
	}
	v.used = used
	return nil
}

// LockContention makes the next n requests that take a glusterd2
// transaction lock (create, start, stop, delete, edit, quota enable) fail
// with 409 and the upstream message "could not obtain lock: another
// conflicting transaction may be in progress", at the point where glusterd2
// takes the lock (after validation). Upstream waits 5 s for the lock first;
// the fake answers at once (add Slow for the wait).
func (s *Server) LockContention(n int) {
	s.mu.Lock()
	s.lock = n
	s.mu.Unlock()
}

// Fail5xx makes the next n authenticated requests fail with 500 and a
// generic error code, before routing, as if the etcd store were down.
func (s *Server) Fail5xx(n int) {
	s.mu.Lock()
	s.fail5xx = n
	s.mu.Unlock()
}

// DropConnections makes the next n requests close their connection without
// an answer, before authentication.
func (s *Server) DropConnections(n int) {
	s.mu.Lock()
	s.drop = n
	s.mu.Unlock()
}

// Slow delays every request by d before it is handled (0 turns it off). A
// delayed request whose client goes away is dropped without being handled.
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
}

// FailNext makes the next n requests with this method and exact path (such
// as "POST", "/v1/volumes/pv1/start") fail with status and a glusterd2 error
// body carrying message, instead of being handled.
func (s *Server) FailNext(method, path string, status int, message string, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.inject = append(s.inject, &injection{method: method, path: path, status: status, message: message, left: n})
	s.mu.Unlock()
}

// Delay holds the next n requests with this method and exact path for d
// before they are handled, like Slow; a request whose client goes away
// meanwhile is dropped without being handled.
func (s *Server) Delay(method, path string, d time.Duration, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.delays = append(s.delays, &injection{method: method, path: path, delay: d, left: n})
	s.mu.Unlock()
}

// DelayFinish holds the next n requests with this method and exact path for
// d, then handles them even if their client has gone meanwhile, as
// glusterd2 finishes a transaction whose client disconnected. Tests use it
// to produce a create whose answer is lost but whose volume is made.
func (s *Server) DelayFinish(method, path string, d time.Duration, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.delays = append(s.delays, &injection{method: method, path: path, delay: d, finish: true, left: n})
	s.mu.Unlock()
}

// take finds and consumes the first injection in list matching r. The
// caller holds s.mu.
func take(list *[]*injection, r *http.Request) *injection {
	for i, in := range *list {
		if in.method == r.Method && in.path == r.URL.Path {
			if in.left--; in.left <= 0 {
				*list = append((*list)[:i], (*list)[i+1:]...)
			}
			return in
		}
	}
	return nil
}

// Count returns how many requests with this method and path (such as
// "POST", "/v1/smartvol") arrived, including those that failed or were
// dropped.
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method+" "+path]
}

// Total returns how many requests arrived.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *Server) sortedNames() []string {
	names := make([]string, 0, len(s.vols))
	for n := range s.vols {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// copyInfo deep-copies the maps and slices callers might modify.
func copyInfo(in *api.VolumeInfo) api.VolumeInfo {
	out := *in
	out.Options = copyMap(in.Options)
	out.Metadata = copyMap(in.Metadata)
	out.SnapList = append([]string(nil), in.SnapList...)
	out.Subvols = make([]api.Subvol, len(in.Subvols))
	for i, sv := range in.Subvols {
		sv.Bricks = append([]api.BrickInfo(nil), sv.Bricks...)
		out.Subvols[i] = sv
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// newUUID returns a random (version 4) UUID. A []byte is assignable to the
// pborman/uuid.UUID fields of the api types.
func newUUID() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
