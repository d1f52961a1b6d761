// Package server speaks enough of heketi's REST API (v10) that unmodified
// heketi clients — the heketi Go client, heketi-cli and the Kubernetes
// in-tree glusterfs provisioner — get subvolkit subvolumes (directories with
// a Gluster directory quota on one shared volume) instead of whole Gluster
// volumes.
//
// # What a heketi volume is here
//
// A heketi volume is a subvolume of the Pool: its size in GiB is the quota
// limit, its group id the directory's group (mode 2775, as heketi sets on
// bricks), and its heketi id a random 32-hex-digit id stored with the
// subvolume (label heketi.id, with the requested name in heketi.name). There
// is no database: the list of volumes is read from the Gluster volume (the
// owner markers the cli backend keeps on every subvolume), so a restarted
// server, or a second server on the same volume, sees exactly what is on
// disk. The in-memory id → directory map is only a hint that every answer
// checks against the volume.
//
// The name a response reports is the deep path "<volume>/<directory>", and
// mount.glusterfs.device is "<host>:/<volume>/<directory>": the in-tree
// provisioner writes the name into the PersistentVolume as the Gluster path
// and mounts "<storage host>:<name>", which mount.glusterfs reads as a
// subdirectory mount. Durability and bricks are what `gluster volume info`
// says of the backing volume (the cli backend's VolumeInfo, or
// Config.VolumeInfo); the snapshot settings asked for are kept and reported
// back; glustervolumeoptions, which apply to whole volumes, are ignored
// with a warning.
//
// # Protocol
//
// Create, expand, clone and delete are asynchronous as in heketi: 202 with
// Location /queue/{id}, which answers 200 with X-Pending: true while the
// operation runs, then once 303 to the volume (or 204 after a delete, or 500
// with the error), then 404. At most Config.MaxInFlight operations run at
// once; more get 429. Errors carry heketi's status codes and messages:
// 422 for a body that is not JSON, 400 for a request heketi would refuse,
// 404 "Id not found" (or "Invalid path or request" for paths not served),
// 401 for a missing or bad token, 500 "… No space" at once for a size
// larger than the volume. Tokens are checked with heketi.Verifier; GET
// /hello and GET /metrics need none.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/backend/heketi"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Labels the server stores with every subvolume it makes.
const (
	// LabelID holds the heketi volume id (32 hex digits).
	LabelID = "heketi.id"
	// LabelName holds the name the client asked for (or vol_<id>).
	LabelName = "heketi.name"
	// LabelSnapshotFactor holds the snapshot factor of a volume created
	// with snapshots enabled, which heketi reports back.
	LabelSnapshotFactor = "heketi.snapshot-factor"
)

// DefaultMaxInFlight is heketi's default limit of operations in flight
// (DEFAULT_OP_LIMIT).
const DefaultMaxInFlight = 8

// DefaultOpTimeout bounds one asynchronous operation.
const DefaultOpTimeout = 30 * time.Minute

// clusterVolumesMaxAge is how old the volume list in GET /clusters/{id} may
// be (GET /volumes is always read from the volume).
const clusterVolumesMaxAge = 10 * time.Second

// maxBody bounds a request body; heketi's requests are a few hundred bytes.
const maxBody = 1 << 20

// Config configures a Server. Volume, Servers and either AdminKey or
// DisableAuth are required.
type Config struct {
	// Volume is the Gluster volume that holds the subvolumes (the one the
	// Pool's backend uses).
	Volume string
	// Servers are the Gluster servers, as reported in mount information
	// and as the cluster's nodes (their storage host names).
	Servers []string
	// ClusterID is the heketi cluster id (32 hex digits); "" derives a
	// stable one from Volume.
	ClusterID string
	// AdminKey and UserKey are the JWT secrets of heketi's "admin" and
	// "user" issuers. An empty UserKey refuses tokens issued by "user".
	AdminKey, UserKey string
	// DisableAuth turns JWT checks off (heketi's --disable-auth). It must
	// be set explicitly: an empty AdminKey without it is an error.
	DisableAuth bool
	// MaxInFlight bounds the asynchronous operations running at once;
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// OpTimeout bounds each asynchronous operation; 0 means
	// DefaultOpTimeout.
	OpTimeout time.Duration
	// DeletePolicy is what DELETE /volumes/{id} does with the data
	// (subvol.DeletePolicyDelete by default; DeletePolicyArchive keeps
	// it out of the pool's namespace).
	DeletePolicy subvol.DeletePolicy
	// VolumeInfo, if not nil, is the backing volume's layout (durability
	// and bricks of every volume) instead of what the Pool's cli backend
	// reads with `gluster volume info`. Required with other backends.
	VolumeInfo *cli.VolumeInfo
	// MaxVolumeBytes is the largest volume: a create or expand beyond it
	// is refused at once with heketi's 500 "No space". 0 means the size
	// of the cli backend's volume (Pool.As), or no limit with other
	// backends.
	MaxVolumeBytes int64
	// LogLevel, if not nil, is the level heketi's /internal/logging
	// reads and sets (heketi-cli loglevel get/set); the Logger should
	// honour it.
	LogLevel *slog.LevelVar
	// Logger receives one record per operation and per refused request
	// (nil: silent). Tokens and keys are never logged.
	Logger *slog.Logger
}

// Server is an http.Handler serving heketi's API over a subvol.Pool. It is
// safe for concurrent use. Call Shutdown after the http.Server's own
// Shutdown to let running operations finish; the Pool stays the caller's.
type Server struct {
	cfg       Config
	pool      *subvol.Pool
	log       *slog.Logger
	mux       *http.ServeMux
	auth      *heketi.Verifier // nil when auth is disabled
	clusterID string
	nodes     []node
	q         *queue
	idx       *index
	layout    *layoutSource
	maxBytes  int64          // 0: no limit
	logLevel  *slog.LevelVar // /internal/logging
	// mutating is held (one token) while an expand or a delete checks
	// that the directory still holds the volume and changes it; the Pool
	// locks each call per name, this makes check-then-act and expand's
	// read-modify-write atomic.
	mutating chan struct{}

	resMu    sync.Mutex
	reserved map[string]bool // directories being created
}

type node struct{ id, host string }

// New checks cfg, reads the backing volume's durability and the existing
// volumes, and returns the Server.
func New(ctx context.Context, cfg Config, pool *subvol.Pool) (*Server, error) {
	if cfg.Volume == "" || len(cfg.Servers) == 0 {
		return nil, errors.New("heketi server: a volume and at least one server are required")
	}
	if pool == nil {
		return nil, errors.New("heketi server: a pool is required")
	}
	if !cfg.DisableAuth && cfg.AdminKey == "" {
		return nil, errors.New("heketi server: an admin key is required unless authentication is disabled explicitly")
	}
	if cfg.MaxInFlight < 0 || cfg.OpTimeout < 0 {
		return nil, errors.New("heketi server: MaxInFlight and OpTimeout must not be negative")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, pool: pool, log: log, mux: http.NewServeMux(),
		clusterID: strings.ToLower(cfg.ClusterID),
		q:         newQueue(log, cfg.MaxInFlight, cfg.OpTimeout),
		idx:       &index{pool: pool, log: log, byID: map[string]string{}},
		reserved:  map[string]bool{},
		mutating:  make(chan struct{}, 1),
	}
	if s.clusterID == "" {
		s.clusterID = derivedID("cluster", cfg.Volume)
	} else if len(s.clusterID) != 32 || !isHex(s.clusterID) {
		return nil, fmt.Errorf("heketi server: cluster id %q is not 32 hex digits", cfg.ClusterID)
	}
	for _, h := range cfg.Servers {
		s.nodes = append(s.nodes, node{id: nodeID(cfg.Volume, h), host: h})
	}
	if !cfg.DisableAuth {
		s.auth = &heketi.Verifier{AdminKey: cfg.AdminKey, UserKey: cfg.UserKey}
	}
	s.layout = &layoutSource{fixed: cfg.VolumeInfo}
	var cb *cli.Backend
	if !pool.As(&cb) {
		cb = nil
	}
	s.maxBytes = cfg.MaxVolumeBytes
	if s.maxBytes == 0 && cb != nil {
		s.maxBytes = cb.Capacity()
	}
	s.logLevel = cfg.LogLevel
	if s.logLevel == nil {
		s.logLevel = new(slog.LevelVar)
	}
	if cfg.VolumeInfo == nil {
		if cb == nil {
			return nil, errors.New("heketi server: the pool's backend is not the gluster CLI backend; set Config.VolumeInfo")
		}
		s.layout.src = cb
	} else if _, err := durability(cfg.VolumeInfo); err != nil {
		return nil, fmt.Errorf("heketi server: %w", err)
	}
	if _, err := s.layout.get(ctx); err != nil {
		return nil, fmt.Errorf("heketi server: reading the volume's layout: %w", err)
	}
	if _, err := s.idx.list(ctx); err != nil {
		return nil, fmt.Errorf("heketi server: listing volumes: %w", err)
	}
	s.routes()
	return s, nil
}

// derivedID is a stable heketi-style id (32 hex digits) for a cluster or a
// node, so that a restarted server reports the same ones.
func derivedID(kind, key string) string {
	h := sha256.Sum256([]byte("subvolkit heketi-server\x00" + kind + "\x00" + key))
	return hex.EncodeToString(h[:16])
}

// newID returns a random heketi volume or operation id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
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

func (s *Server) routes() {
	s.mux.HandleFunc("GET /queue/{id}", s.withID(func(w http.ResponseWriter, r *http.Request, id string) {
		s.q.serveStatus(w, r, id)
	}))
	s.mux.HandleFunc("POST /volumes", s.createVolume)
	s.mux.HandleFunc("GET /volumes", s.listVolumes)
	s.mux.HandleFunc("GET /volumes/{id}", s.withID(s.volumeInfo))
	s.mux.HandleFunc("DELETE /volumes/{id}", s.withID(s.deleteVolume))
	s.mux.HandleFunc("POST /volumes/{id}/expand", s.withID(s.expandVolume))
	s.mux.HandleFunc("POST /volumes/{id}/clone", s.withID(s.cloneVolume))
	s.mux.HandleFunc("GET /clusters", s.listClusters)
	s.mux.HandleFunc("GET /clusters/{id}", s.withID(s.clusterInfo))
	s.mux.HandleFunc("POST /clusters", s.createCluster)
	s.mux.HandleFunc("GET /nodes/{id}", s.withID(s.nodeInfo))
	s.mux.HandleFunc("GET /devices/{id}", s.withID(s.deviceInfo))
	s.mux.HandleFunc("GET /internal/logging", s.getLogLevel)
	s.mux.HandleFunc("POST /internal/logging", s.setLogLevel)
}

// withID passes the {id} path element on, after heketi's route pattern
// ([A-Fa-f0-9]+): anything else is not a route (404).
func (s *Server) withID(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !isHex(id) {
			invalidPath(w)
			return
		}
		h(w, r, id)
	}
}

// ServeHTTP implements http.Handler: GET /hello and GET /metrics are open
// to all, as in heketi; everything else needs a valid token unless
// authentication is disabled. Paths not served answer heketi's 404
// "Invalid path or request".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/hello" {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "Hello from Heketi")
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
		s.metrics(w, r)
		return
	}
	if s.auth != nil {
		if _, err := s.auth.Verify(r); err != nil {
			var ae *heketi.AuthError
			if !errors.As(err, &ae) {
				ae = &heketi.AuthError{Status: http.StatusUnauthorized, Message: err.Error()}
			}
			s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", ae.Status, "why", ae.Message)
			http.Error(w, ae.Message, ae.Status)
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// The mux's own 404 or 405: heketi's text for the 404.
		w = &notFound{ResponseWriter: w}
	}
	s.mux.ServeHTTP(w, r)
}

// notFound rewrites a 404 answer to heketi's.
type notFound struct {
	http.ResponseWriter
	swallow bool
}

func (n *notFound) WriteHeader(code int) {
	if code == http.StatusNotFound {
		n.swallow = true
		invalidPath(n.ResponseWriter)
		return
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *notFound) Write(b []byte) (int, error) {
	if n.swallow {
		return len(b), nil
	}
	return n.ResponseWriter.Write(b)
}

// invalidPath is heketi's answer to a path it does not serve.
func invalidPath(w http.ResponseWriter) {
	http.Error(w, "Invalid path or request", http.StatusNotFound)
}

// Shutdown refuses new operations and waits for the running ones until ctx
// is done, then cancels them (the backend rolls back what they half made)
// and waits for them to return. Call it after http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.q.shutdown(ctx) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	writeBody(w, v)
}

func writeBody(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

// readJSON decodes the body as heketi does (unknown fields ignored); on
// failure it answers 422 and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		http.Error(w, "request unable to be parsed", http.StatusUnprocessableEntity)
		return false
	}
	return true
}

// startOp queues fn and answers 202 with the queue location, or 429 when
// too many operations run (then undo, if not nil, is called). A failure of
// fn is reported as heketi does: what (if not "") and the cause.
func (s *Server) startOp(w http.ResponseWriter, r *http.Request, label, what string, fn func(context.Context) (string, error), undo func()) {
	id, err := s.q.start(label, func(ctx context.Context) (string, error) {
		loc, err := fn(ctx)
		if err != nil {
			s.log.Warn("operation failed", "what", label, "err", err)
			return "", jobError(what, err)
		}
		return loc, nil
	})
	if err != nil {
		if undo != nil {
			undo()
		}
		if errors.Is(err, errBusy) {
			http.Error(w, "Server busy. Retry operation later.", http.StatusTooManyRequests)
			return
		}
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	s.log.Info("operation started", "op", id, "what", label)
	http.Redirect(w, r, "/queue/"+id, http.StatusAccepted)
}

// jobError is a failed operation as heketi reports it: "<what>: <cause>",
// with "No space" for a size that does not fit, and the cause without the
// SDK's "subvolkit: <op> <name>: <kind>:" prefix.
func jobError(what string, err error) error {
	msg := err.Error()
	var se *subvolkit.Error
	switch {
	case subvolkit.KindOf(err) == subvolkit.QuotaExceeded:
		msg = "No space"
	case errors.As(err, &se):
		for se.Err != nil {
			var inner *subvolkit.Error
			if !errors.As(se.Err, &inner) {
				break
			}
			se = inner
		}
		if se.Err != nil {
			msg = se.Err.Error()
		} else {
			msg = se.Kind.String()
		}
	}
	if what == "" {
		return errors.New(msg)
	}
	return errors.New(what + ": " + msg)
}

// noSpace answers heketi's refusal of a size that cannot fit.
func noSpace(w http.ResponseWriter, what string) {
	http.Error(w, what+": No space", http.StatusInternalServerError)
}

// bytesOf converts heketi's GiB to bytes; false if it does not fit.
func bytesOf(gib int) (int64, bool) {
	if gib < 1 || int64(gib) > math.MaxInt64/quota.GiB {
		return 0, false
	}
	return int64(gib) * quota.GiB, true
}

// dirFor maps a heketi volume name to the subvolume (directory) name: the
// name itself when it is a valid subvolume name; else DirPrefix + name,
// which clients can reverse (heketi names never contain '.', so the prefix
// cannot be confused with a plain name); else, for names too long even for
// that, naming.ForRequest's deterministic rewrite. heketi names match
// ^[a-zA-Z0-9_-]+$, so only names starting with '_' or '-' (subvolkit's
// heketi backend escapes names with dots to "_…") or longer than 128 are
// rewritten.
func dirFor(name string) (string, error) {
	if naming.ValidateSubvolName(name) == nil {
		return name, nil
	}
	if naming.ValidateSubvolName(DirPrefix+name) == nil {
		return DirPrefix + name, nil
	}
	return naming.ForRequest(name)
}

// DirPrefix marks a directory whose heketi name is the rest of it.
const DirPrefix = "h."

// reserve marks dir as being created; false if it already is.
func (s *Server) reserve(dir string) bool {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	if s.reserved[dir] {
		return false
	}
	s.reserved[dir] = true
	return true
}

func (s *Server) unreserve(dir string) {
	s.resMu.Lock()
	delete(s.reserved, dir)
	s.resMu.Unlock()
}

// claimName reserves the directory for a new volume called name. On failure
// it has answered the request (500 "already in use", as heketi does when its
// allocation finds the name taken) and returns false.
func (s *Server) claimName(w http.ResponseWriter, r *http.Request, what, name, dir string) bool {
	inUse := func() {
		http.Error(w, fmt.Sprintf("%s: Volume name '%v' already in use", what, name), http.StatusInternalServerError)
	}
	if !s.reserve(dir) {
		inUse()
		return false
	}
	_, err := s.pool.Get(r.Context(), dir)
	switch {
	case err == nil:
		s.unreserve(dir)
		inUse()
		return false
	case subvolkit.KindOf(err) != subvolkit.NotFound:
		s.unreserve(dir)
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return false
	}
	return true
}

// checkCreate applies heketi's own checks after the request's Validate, in
// heketi's order, and returns the message of the first that fails.
func checkCreate(req *api.VolumeCreateRequest) string {
	switch {
	case req.Gid < 0:
		return "Bad group id less than zero"
	case req.Gid >= math.MaxInt32:
		return "Bad group id equal or greater than 2**32"
	}
	switch req.Durability.Type {
	case api.DurabilityEC, api.DurabilityReplicate, api.DurabilityDistributeOnly, "":
	default:
		return "Unknown durability type"
	}
	if req.Size < 1 {
		return "Invalid volume size"
	}
	if req.Snapshot.Enable && (req.Snapshot.Factor < 1 || req.Snapshot.Factor > 100) {
		return "Invalid snapshot factor"
	}
	if req.Durability.Type == api.DurabilityReplicate && req.Durability.Replicate.Replica > 3 {
		return "Invalid replica value"
	}
	if req.Durability.Type == api.DurabilityEC {
		d := req.Durability.Disperse
		switch [2]int{d.Data, d.Redundancy} {
		case [2]int{2, 1}, [2]int{4, 2}, [2]int{8, 3}, [2]int{8, 4}:
		default:
			return fmt.Sprintf("Invalid dispersion combination: %v+%v", d.Data, d.Redundancy)
		}
	}
	return ""
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	const what = "Failed to allocate new volume"
	var req api.VolumeCreateRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg := checkCreate(&req); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	for _, c := range req.Clusters {
		if !strings.EqualFold(c, s.clusterID) {
			http.Error(w, fmt.Sprintf("Cluster id %v not found", c), http.StatusBadRequest)
			return
		}
	}
	size, ok := bytesOf(req.Size)
	if !ok {
		http.Error(w, "Invalid volume size", http.StatusBadRequest)
		return
	}
	if s.maxBytes > 0 && size > s.maxBytes {
		noSpace(w, what)
		return
	}
	if req.Block {
		http.Error(w, what+": block-hosting volumes are not supported (volumes are directories of "+s.cfg.Volume+")", http.StatusInternalServerError)
		return
	}
	id := newID()
	name := req.Name
	if name == "" {
		name = "vol_" + id
	}
	dir, err := dirFor(name)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	if len(req.GlusterVolumeOptions) > 0 {
		s.log.Warn("ignoring glustervolumeoptions: they apply to whole volumes, not to subvolumes", "name", name, "options", req.GlusterVolumeOptions)
	}
	if !s.claimName(w, r, what, name, dir) {
		return
	}
	opts := &subvol.AllocateOptions{Labels: map[string]string{LabelID: id, LabelName: name}}
	if req.Snapshot.Enable {
		opts.Labels[LabelSnapshotFactor] = strconv.FormatFloat(float64(req.Snapshot.Factor), 'g', -1, 32)
	}
	if req.Gid > 0 {
		opts.Owner = &subvol.Ownership{UID: 0, GID: int(req.Gid), Mode: 0o2775}
	}
	s.startOp(w, r, "create "+dir, what, func(ctx context.Context) (string, error) {
		defer s.unreserve(dir)
		sv, err := s.pool.Allocate(ctx, dir, size, opts)
		if err != nil {
			return "", err
		}
		if sv.Labels[LabelID] != id {
			// Pool.Allocate is idempotent: it found a subvolume that
			// another request (or another program) made meanwhile.
			return "", fmt.Errorf("Volume name '%v' already in use", name)
		}
		s.idx.put(id, dir)
		return "/volumes/" + id, nil
	}, func() { s.unreserve(dir) })
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	svs, err := s.idx.list(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, api.VolumeListResponse{Volumes: ids(svs)})
}

// ids returns the sorted heketi ids of svs (never nil: JSON [] not null).
func ids(svs []*subvol.Subvol) []string {
	out := make([]string, 0, len(svs))
	for _, sv := range svs {
		out = append(out, sv.Labels[LabelID])
	}
	slices.Sort(out)
	return out
}

// resolve answers 404 or 500 itself when id names no volume.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, id string) (*subvol.Subvol, bool) {
	sv, err := s.idx.resolve(r.Context(), id)
	switch {
	case err == nil:
		return sv, true
	case subvolkit.KindOf(err) == subvolkit.NotFound:
		http.Error(w, "Id not found", http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	return nil, false
}

func (s *Server) volumeInfo(w http.ResponseWriter, r *http.Request, id string) {
	sv, ok := s.resolve(w, r, id)
	if !ok {
		return
	}
	info, err := s.info(r.Context(), sv)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, info)
}

// info describes sv as heketi would describe a volume.
func (s *Server) info(ctx context.Context, sv *subvol.Subvol) (*api.VolumeInfoResponse, error) {
	layout, err := s.layout.get(ctx)
	if err != nil {
		return nil, err
	}
	dur, err := durability(layout)
	if err != nil {
		return nil, err
	}
	v := api.NewVolumeInfoResponse()
	v.Id = sv.Labels[LabelID]
	v.Cluster = s.clusterID
	gib, err := quota.RoundUp(sv.SizeBytes, quota.GiB) // heketi reports whole GiB
	if err != nil {
		return nil, err
	}
	v.Size = int(gib / quota.GiB)
	v.Name = sv.Volume + sv.Path // the deep path: "<volume>/<directory>"
	v.Durability = dur
	v.Bricks = s.bricks(layout, v.Id, sv.Name, sv.SizeBytes)
	if f, err := strconv.ParseFloat(sv.Labels[LabelSnapshotFactor], 32); err == nil {
		v.Snapshot.Enable, v.Snapshot.Factor = true, float32(f)
	}
	if sv.GID > 0 {
		v.Gid = int64(sv.GID)
	}
	hosts := sv.Servers
	if len(hosts) == 0 {
		hosts = s.cfg.Servers
	}
	v.Mount.GlusterFS.Hosts = append([]string(nil), hosts...)
	v.Mount.GlusterFS.MountPoint = hosts[0] + ":/" + v.Name
	if len(hosts) > 1 {
		// Colon-separated: the list mount.glusterfs parses (a comma would
		// end the option in "mount -o").
		v.Mount.GlusterFS.Options["backup-volfile-servers"] = strings.Join(hosts[1:], ":")
	}
	return v, nil
}

func (s *Server) deleteVolume(w http.ResponseWriter, r *http.Request, id string) {
	sv, ok := s.resolve(w, r, id)
	if !ok {
		return
	}
	dir := sv.Name
	s.startOp(w, r, "delete "+dir, "", func(ctx context.Context) (string, error) {
		unlock, err := s.lockMutations(ctx)
		if err != nil {
			return "", err
		}
		defer unlock()
		cur, err := s.pool.Get(ctx, dir)
		if subvolkit.KindOf(err) == subvolkit.NotFound || err == nil && cur.Labels[LabelID] != id {
			s.idx.remove(id)
			return "", nil // gone meanwhile: what the client wanted
		}
		if err != nil {
			return "", err
		}
		if err := s.pool.Delete(ctx, dir, &subvol.DeleteOptions{Policy: s.cfg.DeletePolicy}); err != nil {
			return "", err
		}
		s.idx.remove(id)
		return "", nil
	}, nil)
}

func (s *Server) expandVolume(w http.ResponseWriter, r *http.Request, id string) {
	var req api.VolumeExpandRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	delta, ok := bytesOf(req.Size)
	if !ok {
		http.Error(w, "Invalid volume size", http.StatusBadRequest)
		return
	}
	sv, ok := s.resolve(w, r, id)
	if !ok {
		return
	}
	if s.maxBytes > 0 && (delta > s.maxBytes || sv.SizeBytes > s.maxBytes-delta) {
		noSpace(w, "Failed to allocate volume expansion")
		return
	}
	dir := sv.Name
	s.startOp(w, r, "expand "+dir, "Failed to allocate volume expansion", func(ctx context.Context) (string, error) {
		unlock, err := s.lockMutations(ctx)
		if err != nil {
			return "", err
		}
		defer unlock()
		cur, err := s.pool.Get(ctx, dir)
		if err == nil && cur.Labels[LabelID] != id {
			err = subvolkit.Errorf(subvolkit.NotFound, "expand", dir, "volume %s is gone", id)
		}
		if err != nil {
			return "", err
		}
		if cur.SizeBytes > math.MaxInt64-delta {
			return "", fmt.Errorf("Invalid volume size: %d GiB more than %s does not fit", req.Size, quota.HumanSize(cur.SizeBytes))
		}
		if _, err := s.pool.Resize(ctx, dir, cur.SizeBytes+delta); err != nil {
			return "", err
		}
		return "/volumes/" + id, nil
	}, nil)
}

// lockMutations takes s.mutating, giving up when ctx is done.
func (s *Server) lockMutations(ctx context.Context) (unlock func(), err error) {
	select {
	case s.mutating <- struct{}{}:
		return func() { <-s.mutating }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) cloneVolume(w http.ResponseWriter, r *http.Request, id string) {
	var req api.VolumeCloneRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	src, ok := s.resolve(w, r, id)
	if !ok {
		return
	}
	what := "Failed clone volume " + id
	cloneID := newID()
	name := req.Name
	if name == "" {
		name = "vol_" + cloneID
	}
	dir, err := dirFor(name)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
		return
	}
	if !s.claimName(w, r, what, name, dir) {
		return
	}
	srcDir := src.Name
	opts := &subvol.CloneOptions{Labels: map[string]string{LabelID: cloneID, LabelName: name}}
	if f := src.Labels[LabelSnapshotFactor]; f != "" {
		opts.Labels[LabelSnapshotFactor] = f
	}
	s.startOp(w, r, "clone "+srcDir+" to "+dir, what, func(ctx context.Context) (string, error) {
		defer s.unreserve(dir)
		cur, err := s.pool.Get(ctx, srcDir)
		if err == nil && cur.Labels[LabelID] != id {
			err = subvolkit.Errorf(subvolkit.NotFound, "clone", srcDir, "volume %s is gone", id)
		}
		if err != nil {
			return "", err
		}
		sv, err := s.pool.Clone(ctx, srcDir, dir, opts)
		if err != nil {
			return "", err
		}
		if sv.Labels[LabelID] != cloneID {
			return "", fmt.Errorf("Volume name '%v' already in use", name)
		}
		s.idx.put(cloneID, dir)
		return "/volumes/" + cloneID, nil
	}, func() { s.unreserve(dir) })
}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, api.ClusterListResponse{Clusters: []string{s.clusterID}})
}

func (s *Server) clusterInfo(w http.ResponseWriter, r *http.Request, id string) {
	if !strings.EqualFold(id, s.clusterID) {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	vols, err := s.idx.recentIDs(r.Context(), clusterVolumesMaxAge)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, s.clusterResponse(vols))
}

// clusterResponse describes the one cluster with the volume ids vols.
func (s *Server) clusterResponse(vols []string) api.ClusterInfoResponse {
	info := api.ClusterInfoResponse{Id: s.clusterID, Volumes: vols, BlockVolumes: []string{}}
	info.File = true
	for _, n := range s.nodes {
		info.Nodes = append(info.Nodes, n.id)
	}
	return info
}

func (s *Server) nodeInfo(w http.ResponseWriter, r *http.Request, id string) {
	layout, err := s.layout.get(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, n := range s.nodes {
		if !strings.EqualFold(id, n.id) {
			continue
		}
		var info api.NodeInfoResponse
		info.Id = n.id
		info.ClusterId = s.clusterID
		info.Zone = 1
		info.Hostnames.Manage = []string{n.host}
		info.Hostnames.Storage = []string{n.host}
		info.State = api.EntryStateOnline
		info.DevicesInfo = []api.DeviceInfoResponse{}
		// The in-tree provisioner asks for every node on every create:
		// the bricks come from a list at most clusterVolumesMaxAge old.
		svs, err := s.idx.recentList(r.Context(), clusterVolumesMaxAge)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, b := range layout.Bricks {
			if b.Host == n.host {
				info.DevicesInfo = append(info.DevicesInfo, s.device(layout, b, svs))
			}
		}
		writeJSON(w, info)
		return
	}
	http.Error(w, "Id not found", http.StatusNotFound)
}
