// Package heketifake is an in-process fake of the heketi v10 REST server for
// tests, built on heketi's own API types (github.com/heketi/heketi/pkg/glusterfs/api).
//
// It answers what a heketi client uses, with the status codes, bodies and
// headers of the real server (apps/glusterfs/app_volume.go,
// server/rest/asynchttp.go, middleware/jwt.go, apps/glusterfs/app_middleware.go):
//
//	GET    /hello                    200 "Hello from Heketi" (no authentication)
//	POST   /volumes                  202 + Location: /queue/<id>
//	GET    /volumes                  200 api.VolumeListResponse (complete volumes only)
//	GET    /volumes/{id}             200 api.VolumeInfoResponse, 404 "Id not found"
//	DELETE /volumes/{id}             202, the job ends in 204
//	POST   /volumes/{id}/expand      202 (expand_size is a delta in GiB)
//	POST   /volumes/{id}/clone       202 (the clone keeps the source's size)
//	GET    /clusters, /clusters/{id} 200 api.ClusterListResponse / api.ClusterInfoResponse
//	GET    /nodes/{id}               200 api.NodeInfoResponse
//	GET    /queue/{id}               200 + X-Pending: true while the job runs, then
//	                                 303 to the resource, 204 (delete) or 500 + error text
//
// Path ids must be hexadecimal, as heketi's router requires; other paths are
// 404 "Invalid path or request", as heketi answers them. Validation runs in heketi's order with heketi's
// messages: 422 "request unable to be parsed", 400 "validation failed: …"
// (heketi's own Validate methods), "Invalid volume size", "Unknown
// durability type", "Invalid replica value", "Invalid dispersion
// combination: d+r", "Invalid snapshot factor", "Cluster id X not found",
// then 429 "Server busy. Retry operation later." when MaxInFlight jobs are
// running, then the synchronous part of the job (500 "Failed to allocate new
// volume: Volume name 'x' already in use" or "… No space").
//
// Like heketi, volume names are unique only within a cluster: a name used in
// one cluster can be created again in another, and clones are not checked
// at all (heketi's prepareVolumeClone does not look at names).
//
// Jobs finish when polled: each job answers PendingPolls pending polls, then
// its result; with JobDuration > 0 it also finishes on its own after that
// long, as a real server does whether or not anyone polls. While a volume is
// being created, deleted or cloned (the clone and its source) it is hidden
// from GET /volumes/{id}, as heketi hides volumes with a pending operation.
//
// Authentication is heketi's JWT scheme when Options.AdminKey is set: HS256
// (or HS384/HS512) tokens with iss "admin" or "user", exp, iat (120 s leeway)
// and qsh = hex(sha256(METHOD + "&" + path)); a "user" token may only reach
// the path /volumes, anything else (including /queue polls) is 401
// "Administrator access required".
//
// Faults can be injected at any time: Busy, Slow, FailNextJob,
// DropConnections. Every request is counted by route (Count) and logged
// (Requests) so that tests can assert retries and request bodies.
//
// A Server is safe for concurrent use.
package heketifake

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

// Route names used by Count and Request.Route.
const (
	RouteHello         = "GET /hello"
	RouteVolumeCreate  = "POST /volumes"
	RouteVolumeList    = "GET /volumes"
	RouteVolumeInfo    = "GET /volumes/{id}"
	RouteVolumeDelete  = "DELETE /volumes/{id}"
	RouteVolumeExpand  = "POST /volumes/{id}/expand"
	RouteVolumeClone   = "POST /volumes/{id}/clone"
	RouteClusterList   = "GET /clusters"
	RouteClusterInfo   = "GET /clusters/{id}"
	RouteNodeInfo      = "GET /nodes/{id}"
	RouteQueue         = "GET /queue/{id}"
	RouteOther         = "other"
	busyMessage        = "Server busy. Retry operation later."
	defaultMaxInFlight = 8    // heketi's DEFAULT_OP_LIMIT
	defaultMaxVolumes  = 1000 // heketi's maxVolumesPerCluster
)

// Cluster describes one heketi cluster of the fake.
type Cluster struct {
	// ID is the cluster id, 32 hex digits; "" generates one.
	ID string
	// Hosts are the storage host names of the cluster's nodes, in node
	// order. They become mount.glusterfs.hosts of the cluster's volumes.
	Hosts []string
	// CapacityGiB, if > 0, bounds the sum of the sizes of the cluster's
	// volumes (clones are free, as heketi's thin LVM clones are); a
	// volume that does not fit fails with "No space".
	CapacityGiB int
}

// Options configure a Server. The zero value (or nil) is a working server
// without authentication and with one cluster of three nodes.
type Options struct {
	// AdminKey and UserKey are the JWT secrets of the "admin" and "user"
	// issuers. Authentication is on when either is set; as real heketi
	// refuses to start with only one of them, New panics then.
	AdminKey, UserKey string
	// Clusters are the fake's clusters; nil means one cluster with hosts
	// 192.0.2.1, 192.0.2.2 and 192.0.2.3.
	Clusters []Cluster
	// PendingPolls is how many polls of /queue/{id} answer "pending"
	// (200 + X-Pending: true) before a job's result.
	PendingPolls int
	// JobDuration, if > 0, finishes a job on its own that long after it
	// started, even if nobody polls.
	JobDuration time.Duration
	// MaxInFlight is the number of running jobs above which new operations
	// get 429; 0 means heketi's default 8, negative means no limit.
	MaxInFlight int
	// MaxVolumesPerCluster is heketi's per-cluster volume limit; 0 means
	// heketi's default 1000.
	MaxVolumesPerCluster int
	// TLS serves HTTPS with httptest's self-signed certificate (see
	// CertificatePEM and HTTPClient).
	TLS bool
}

// Request is one request the fake received.
type Request struct {
	Route  string // one of the Route* constants
	Method string
	Path   string
	Issuer string // the JWT iss claim, "" without authentication
	Body   []byte // the request body
	Status int    // the answer's status; 0 for a dropped connection
}

// Server is a running fake heketi server. Create one with New and Close it
// when done.
type Server struct {
	ts   *httptest.Server
	opts Options

	mu          sync.Mutex
	clusters    []*cluster
	nodes       map[string]*node
	vols        map[string]*volume
	jobs        map[string]*job
	inflight    int
	busy        int
	slow        time.Duration
	failNext    []string
	drop        int
	counts      map[string]int
	log         []Request
	closed      bool
	jobTimers   []*time.Timer
	maxInFlight int
	maxVolumes  int
}

type cluster struct {
	id       string
	nodes    []string // node ids
	capacity int
	volumes  []string // volume ids, including pending ones
}

type node struct {
	id, cluster, host, device string
}

// pending operation kinds of a volume, as heketi's Pending.Id and its
// pending-operation listing distinguish them.
const (
	opNone      = ""
	opCreate    = "create"    // hidden and unlisted
	opDelete    = "delete"    // hidden and unlisted
	opCloneNew  = "clone-new" // hidden and unlisted
	opCloneSrc  = "clone-src" // hidden, still listed
	opExpanding = "expand"    // visible
)

type volume struct {
	info     api.VolumeInfoResponse
	pending  string
	cloneOf  string // source volume id of a clone
	expanded int    // GiB added by expansions
}

func (v *volume) visible() bool { return v.pending == opNone || v.pending == opExpanding }
func (v *volume) listed() bool {
	return v.pending == opNone || v.pending == opExpanding || v.pending == opCloneSrc
}

type job struct {
	id       string
	remain   int
	done     bool
	err      error
	location string
	fail     string
	finish   func(fail string) (location string, err error)
}

// New starts a fake heketi server. A nil opts means the defaults. It
// panics if opts are inconsistent (one JWT key without the other, a
// malformed cluster id), as a misconfigured test is a programming error.
func New(opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if (o.AdminKey == "") != (o.UserKey == "") {
		panic("heketifake: set both AdminKey and UserKey, or neither (heketi refuses to start with one)")
	}
	s := &Server{
		opts:        o,
		nodes:       map[string]*node{},
		vols:        map[string]*volume{},
		jobs:        map[string]*job{},
		counts:      map[string]int{},
		maxInFlight: o.MaxInFlight,
		maxVolumes:  o.MaxVolumesPerCluster,
	}
	if s.maxInFlight == 0 {
		s.maxInFlight = defaultMaxInFlight
	}
	if s.maxVolumes == 0 {
		s.maxVolumes = defaultMaxVolumes
	}
	specs := o.Clusters
	if specs == nil {
		specs = []Cluster{{Hosts: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}}}
	}
	for _, spec := range specs {
		id := spec.ID
		if id == "" {
			id = newID()
		} else if !isHex(id) {
			panic(fmt.Sprintf("heketifake: cluster id %q is not hexadecimal", id))
		}
		c := &cluster{id: id, capacity: spec.CapacityGiB}
		for i, h := range spec.Hosts {
			// heketi keeps a cluster's node ids sorted and lists mount
			// hosts in that order: make the ids sort in spec order.
			nid := fmt.Sprintf("%04x", i) + newID()[4:]
			n := &node{id: nid, cluster: id, host: h, device: newID()}
			s.nodes[n.id] = n
			c.nodes = append(c.nodes, n.id)
		}
		s.clusters = append(s.clusters, c)
	}
	if o.TLS {
		s.ts = httptest.NewTLSServer(s)
	} else {
		s.ts = httptest.NewServer(s)
	}
	return s
}

// URL returns the server's base URL, such as "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.ts.URL }

// HTTPClient returns an *http.Client that trusts the server (for TLS).
func (s *Server) HTTPClient() *http.Client { return s.ts.Client() }

// CertificatePEM returns the server's TLS certificate in PEM form (nil
// without TLS), for tests of CA-file options.
func (s *Server) CertificatePEM() []byte {
	c := s.ts.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Certificate returns the server's TLS certificate (nil without TLS).
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Close stops the server and any job timers. It blocks until outstanding
// requests have finished (Slow waits end when their client goes away).
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for _, t := range s.jobTimers {
		t.Stop()
	}
	s.mu.Unlock()
	s.ts.Close()
}

// ClusterIDs returns the ids of the fake's clusters, in the order of
// Options.Clusters.
func (s *Server) ClusterIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.clusters))
	for i, c := range s.clusters {
		ids[i] = c.id
	}
	return ids
}

// Busy makes the next n operation requests (those that would start a job:
// volume create, delete, expand and clone, after their validation) answer
// 429 "Server busy. Retry operation later.", as heketi does when too many
// operations are in flight.
func (s *Server) Busy(n int) {
	s.mu.Lock()
	s.busy = n
	s.mu.Unlock()
}

// SetPendingPolls changes Options.PendingPolls for the jobs that start
// from now on.
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	s.opts.PendingPolls = n
	s.mu.Unlock()
}

// Slow delays every request by d before it is handled (0 turns it off). A
// delayed request ends early if its client goes away.
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
}

// FailNextJob makes the next job that starts fail with msg: its /queue
// entry answers 500 with msg as the body, and, as heketi rolls back a failed
// operation, it changes nothing. Calls queue up: each makes one job fail.
func (s *Server) FailNextJob(msg string) {
	s.mu.Lock()
	s.failNext = append(s.failNext, msg)
	s.mu.Unlock()
}

// DropConnections makes the next n requests (of any route) close their
// connection without an answer. Note that Go's HTTP transport silently
// resends an idempotent request (a GET) whose reused connection was closed,
// so one client call may consume more than one drop.
func (s *Server) DropConnections(n int) {
	s.mu.Lock()
	s.drop = n
	s.mu.Unlock()
}

// Count returns how many requests the server received on route (one of
// the Route* constants), whatever their answer, dropped ones included.
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[route]
}

// Requests returns a copy of the log of requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// InFlight returns the number of jobs that have started and not finished.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight
}

// Volumes returns a snapshot of the complete volumes (those GET /volumes
// lists), sorted by name then id, as GET /volumes/{id} would show them.
func (s *Server) Volumes() []api.VolumeInfoResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.VolumeInfoResponse
	for _, v := range s.vols {
		if v.listed() {
			out = append(out, copyInfo(&v.info))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Id < out[j].Id
	})
	return out
}

// ServeHTTP implements http.Handler: it applies the injected faults, then
// authentication, then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, id := routeOf(r.Method, r.URL.Path)
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	s.counts[route]++
	idx := len(s.log)
	s.log = append(s.log, Request{Route: route, Method: r.Method, Path: r.URL.Path, Body: body})
	drop := s.drop > 0
	if drop {
		s.drop--
	}
	slow := s.slow
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		// Not hijackable (HTTP/2): abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.setStatus(idx, 0)
			return
		}
	}

	rec := &statusRecorder{ResponseWriter: w}
	s.serve(rec, r, route, id, idx)
	s.setStatus(idx, rec.status)
}

func (s *Server) setStatus(idx, status int) {
	s.mu.Lock()
	s.log[idx].Status = status
	s.mu.Unlock()
}

func (s *Server) setIssuer(idx int, iss string) {
	s.mu.Lock()
	s.log[idx].Issuer = iss
	s.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, route, id string, idx int) {
	// heketi serves /hello outside its authenticated router.
	if route == RouteHello {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "Hello from Heketi")
		return
	}
	if s.opts.AdminKey != "" {
		iss, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		s.setIssuer(idx, iss)
	}
	switch route {
	case RouteVolumeCreate:
		s.volumeCreate(w, r)
	case RouteVolumeList:
		s.volumeList(w)
	case RouteVolumeInfo:
		s.volumeInfo(w, id)
	case RouteVolumeDelete:
		s.volumeDelete(w, r, id)
	case RouteVolumeExpand:
		s.volumeExpand(w, r, id)
	case RouteVolumeClone:
		s.volumeClone(w, r, id)
	case RouteClusterList:
		s.clusterList(w)
	case RouteClusterInfo:
		s.clusterInfo(w, id)
	case RouteNodeInfo:
		s.nodeInfo(w, id)
	case RouteQueue:
		s.queue(w, r, id)
	default:
		// heketi's router's NotFoundHandler.
		http.Error(w, "Invalid path or request", http.StatusNotFound)
	}
}

// routeOf maps a request to its route name and path id, as heketi's mux
// patterns ({id:[A-Fa-f0-9]+}) do.
func routeOf(method, path string) (route, id string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case method == http.MethodGet && path == "/hello":
		return RouteHello, ""
	case path == "/volumes" && method == http.MethodPost:
		return RouteVolumeCreate, ""
	case path == "/volumes" && method == http.MethodGet:
		return RouteVolumeList, ""
	case path == "/clusters" && method == http.MethodGet:
		return RouteClusterList, ""
	}
	if len(parts) < 2 || !isHex(parts[1]) {
		return RouteOther, ""
	}
	id = parts[1]
	switch {
	case len(parts) == 2 && parts[0] == "volumes" && method == http.MethodGet:
		return RouteVolumeInfo, id
	case len(parts) == 2 && parts[0] == "volumes" && method == http.MethodDelete:
		return RouteVolumeDelete, id
	case len(parts) == 3 && parts[0] == "volumes" && parts[2] == "expand" && method == http.MethodPost:
		return RouteVolumeExpand, id
	case len(parts) == 3 && parts[0] == "volumes" && parts[2] == "clone" && method == http.MethodPost:
		return RouteVolumeClone, id
	case len(parts) == 2 && parts[0] == "clusters" && method == http.MethodGet:
		return RouteClusterInfo, id
	case len(parts) == 2 && parts[0] == "nodes" && method == http.MethodGet:
		return RouteNodeInfo, id
	case len(parts) == 2 && parts[0] == "queue" && method == http.MethodGet:
		return RouteQueue, id
	}
	return RouteOther, ""
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// newID returns a heketi-style id: 32 lower-case hex digits.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func copyInfo(in *api.VolumeInfoResponse) api.VolumeInfoResponse {
	out := *in
	out.Clusters = slices.Clone(in.Clusters)
	out.GlusterVolumeOptions = slices.Clone(in.GlusterVolumeOptions)
	out.Mount.GlusterFS.Hosts = slices.Clone(in.Mount.GlusterFS.Hosts)
	out.Mount.GlusterFS.Options = make(map[string]string, len(in.Mount.GlusterFS.Options))
	for k, v := range in.Mount.GlusterFS.Options {
		out.Mount.GlusterFS.Options[k] = v
	}
	out.BlockInfo.BlockVolumes = slices.Clone(in.BlockInfo.BlockVolumes)
	out.Bricks = slices.Clone(in.Bricks)
	return out
}
