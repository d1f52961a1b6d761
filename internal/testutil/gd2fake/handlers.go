package gd2fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gluster/glusterd2/pkg/api"
	smartvolapi "github.com/gluster/glusterd2/plugins/smartvol/api"
)

// Upstream error texts (pkg/errors, glusterd2/transaction, handlers).
const (
	msgVolNotFound       = "volume not found"
	msgVolExists         = "volume already exists"
	msgInvalidVolName    = "invalid volume name"
	msgVolAlreadyStarted = "volume already started"
	msgVolAlreadyStopped = "volume already stopped"
	msgVolNotStarted     = "volume not started"
	msgDeleteStarted     = "Volume must be in stopped state before deleting."
	msgLockTimeout       = "could not obtain lock: another conflicting transaction may be in progress"
	msgJSONParsing       = "unable to parse the request"
	msgEmptyBrickList    = "brick list is empty"
	msgDupBrick          = "Duplicate brick entry"
	msgMetadataTooBig    = "metadata size exceeds max allowed size of 4KB"
	msgRestrictedKey     = "Key names starting with '_' are restricted in metadata field"
	msgProcessRunning    = "Process is already running"
	msgBadTransport      = "Invalid transport. Supported values: tcp or rdma"
	msgNoDevices         = "No devices registered or available for allocating bricks"
	msgNoSpace           = "No space available or all the devices are not registered"
	msgInjected          = "gd2fake: injected failure"
)

const (
	minSmartVolMiB  = 10   // plugins/smartvol/rest.go minVolumeSize
	maxMetadataSize = 4096 // glusterd2/commands/volumes maxMetadataSizeLimit
	bricksRoot      = "/var/lib/glusterd2/mounts"
)

// volNameRE is glusterd2/volume.IsValidName's pattern.
var volNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { sendJSON(w, http.StatusOK, nil) })
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		sendJSON(w, http.StatusOK, api.VersionResp{GlusterdVersion: "4.1.1", APIVersion: 1})
	})

	mux.HandleFunc("POST /v1/smartvol", s.smartVolumeCreate)
	mux.HandleFunc("POST /v1/volumes", s.volumeCreate)
	mux.HandleFunc("GET /v1/volumes", s.volumeList)
	mux.HandleFunc("GET /v1/volumes/{volname}", s.volumeInfo)
	mux.HandleFunc("DELETE /v1/volumes/{volname}", s.volumeDelete)
	mux.HandleFunc("POST /v1/volumes/{volname}/start", s.volumeStart)
	mux.HandleFunc("POST /v1/volumes/{volname}/stop", s.volumeStop)
	mux.HandleFunc("POST /v1/volumes/{volname}/edit", s.volumeEdit)
	mux.HandleFunc("GET /v1/volumes/{volname}/status", s.volumeStatus)

	mux.HandleFunc("POST /v1/quota/{volname}", s.quotaEnable)
	for _, stub := range []struct{ pattern, answer string }{
		{"DELETE /v1/quota/{volname}", "todo: quota disable"},
		{"GET /v1/quota/{volname}/limit", "todo: quota list"},
		{"POST /v1/quota/{volname}/limit", "Todo: limitusage"},
		{"DELETE /v1/quota/{volname}/limit", "Todo: quota Remove"},
	} {
		answer := stub.answer
		mux.HandleFunc(stub.pattern, func(w http.ResponseWriter, r *http.Request) { sendJSON(w, http.StatusOK, answer) })
	}

	for _, stub := range []struct{ pattern, answer string }{
		{"POST /v1/snapshot/{snapname}/clone", "Snapshot Clone"},
		{"POST /v1/snapshot/{snapname}/restore", "Snapshot Restore"},
		{"DELETE /v1/snapshot/{snapname}", "Snapshot Delete"},
		{"GET /v1/snapshot/config", "Snapshot Config Get"},
		{"PUT /v1/snapshot/config", "Snapshot Config Set"},
		{"DELETE /v1/snapshot/config", "Snapshot Config Reset"},
	} {
		answer := stub.answer
		mux.HandleFunc(stub.pattern, func(w http.ResponseWriter, r *http.Request) {
			sendJSON(w, http.StatusNotImplemented, answer)
		})
	}
	return s.middleware(mux)
}

// middleware counts the request, applies DropConnections, Slow and Delay, sets the
// headers glusterd2's ReqIDGenerator sets, authenticates like
// middleware.Auth, then applies Fail5xx and FailNext.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.total++
		s.counts[r.Method+" "+r.URL.Path]++
		drop := s.drop > 0
		if drop {
			s.drop--
		}
		slow, finish := s.slow, false
		if d := take(&s.delays, r); d != nil {
			slow += d.delay
			finish = d.finish
		}
		s.mu.Unlock()

		if drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if slow > 0 {
			gone := r.Context().Done()
			if finish {
				gone = nil // handled whether or not the client waits
				r = r.WithContext(context.WithoutCancel(r.Context()))
			}
			t := time.NewTimer(slow)
			select {
			case <-t.C:
			case <-gone:
				t.Stop()
				return
			case <-s.closing:
				t.Stop()
				return
			}
		}

		h := w.Header()
		h.Set("X-Request-Id", uuidString(newUUID()))
		h.Set("X-Gluster-Peer-Id", s.peerID)
		h.Set("X-Gluster-Cluster-Id", s.cluster)

		if s.auth {
			if err := checkAuth(r, s.secret, time.Now()); err != nil {
				if errors.Is(err, errPanic) {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}

		s.mu.Lock()
		fail := s.fail5xx > 0
		if fail {
			s.fail5xx--
		}
		var inj *injection
		if !fail {
			inj = take(&s.inject, r)
		}
		s.mu.Unlock()
		switch {
		case fail:
			sendError(w, http.StatusInternalServerError, msgInjected)
		case inj != nil:
			sendError(w, inj.status, inj.message)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// sendJSON is restutils.SendHTTPResponse: no Content-Type and no body when
// resp is nil (a 204, a ping).
func sendJSON(w http.ResponseWriter, status int, resp any) {
	if resp != nil {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	w.WriteHeader(status)
	if resp != nil {
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// sendError is restutils.SendHTTPError with a plain error: one error of
// code 1 (ErrCodeGeneric).
func sendError(w http.ResponseWriter, status int, msg string) {
	sendJSON(w, status, api.ErrorResp{Errors: []api.HTTPError{{Code: int(api.ErrCodeGeneric), Message: msg}}})
}

// sendStepError is a failed transaction step: 500 with code 2
// (ErrTxnStepFailed) and the step, peer and error in Fields.
func (s *Server) sendStepError(w http.ResponseWriter, step, msg string) {
	sendJSON(w, http.StatusInternalServerError, api.ErrorResp{Errors: []api.HTTPError{{
		Code:    int(api.ErrTxnStepFailed),
		Message: api.ErrorCodeMap[api.ErrTxnStepFailed],
		Fields:  map[string]string{"peer-id": s.peerID, "step": step, "error": msg},
	}}})
}

// lockFailed consumes one LockContention token; it answers 409 and reports
// true if there was one. The caller holds s.mu.
func (s *Server) lockFailed(w http.ResponseWriter) bool {
	if s.lock <= 0 {
		return false
	}
	s.lock--
	sendError(w, http.StatusConflict, msgLockTimeout)
	return true
}

// getVolume answers 404 if the volume is missing. The caller holds s.mu.
func (s *Server) getVolume(w http.ResponseWriter, name string) *volume {
	v, ok := s.vols[name]
	if !ok {
		sendError(w, http.StatusNotFound, msgVolNotFound)
	}
	return v
}

func (s *Server) volumeInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.getVolume(w, r.PathValue("volname")); v != nil {
		sendJSON(w, http.StatusOK, api.VolumeGetResp(copyInfo(&v.info)))
	}
}

// volumeList filters on metadata like volume.GetVolumes, including its
// quirk that a value-only filter lists a volume once per matching value.
func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	keys, byKey := q["key"]
	values, byValue := q["value"]
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := make(api.VolumeListResp, 0, len(s.vols))
	for _, name := range s.sortedNames() {
		info := copyInfo(&s.vols[name].info)
		switch {
		case byKey && byValue:
			if val, ok := info.Metadata[keys[0]]; ok && val == values[0] {
				resp = append(resp, api.VolumeGetResp(info))
			}
		case byKey:
			if _, ok := info.Metadata[keys[0]]; ok {
				resp = append(resp, api.VolumeGetResp(info))
			}
		case byValue:
			for _, val := range info.Metadata {
				if val == values[0] {
					resp = append(resp, api.VolumeGetResp(info))
				}
			}
		default:
			resp = append(resp, api.VolumeGetResp(info))
		}
	}
	sendJSON(w, http.StatusOK, resp)
}

func (s *Server) volumeStart(w http.ResponseWriter, r *http.Request) {
	var req api.VolumeStartReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		sendError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	v := s.getVolume(w, r.PathValue("volname"))
	if v == nil {
		return
	}
	if v.info.State == api.VolStarted && !req.ForceStartBricks {
		sendError(w, http.StatusBadRequest, msgVolAlreadyStarted)
		return
	}
	v.info.State = api.VolStarted
	sendJSON(w, http.StatusOK, api.VolumeStartResp(copyInfo(&v.info)))
}

// volumeStop stops a started or a never started (Created) volume; only a
// Stopped one is 400, as upstream.
func (s *Server) volumeStop(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	v := s.getVolume(w, r.PathValue("volname"))
	if v == nil {
		return
	}
	if v.info.State == api.VolStopped {
		sendError(w, http.StatusBadRequest, msgVolAlreadyStopped)
		return
	}
	v.info.State = api.VolStopped
	sendJSON(w, http.StatusOK, api.VolumeStopResp(copyInfo(&v.info)))
}

func (s *Server) volumeDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	name := r.PathValue("volname")
	v := s.getVolume(w, name)
	if v == nil {
		return
	}
	if v.info.State == api.VolStarted {
		sendError(w, http.StatusBadRequest, msgDeleteStarted)
		return
	}
	for i, n := range v.alloc {
		s.peers[i].free += n
	}
	delete(s.vols, name)
	sendJSON(w, http.StatusNoContent, nil)
}

func (s *Server) volumeEdit(w http.ResponseWriter, r *http.Request) {
	var req api.VolEditReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		sendError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	v := s.getVolume(w, r.PathValue("volname"))
	if v == nil {
		return
	}
	if req.MetadataSize() > maxMetadataSize {
		sendError(w, http.StatusBadRequest, msgMetadataTooBig)
		return
	}
	md := copyMap(v.info.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	for k, val := range req.Metadata {
		if strings.HasPrefix(k, "_") {
			sendError(w, http.StatusBadRequest, msgRestrictedKey)
			return
		}
		if req.DeleteMetadata {
			delete(md, k)
		} else {
			md[k] = val
		}
	}
	if metadataSize(md) > maxMetadataSize {
		sendError(w, http.StatusBadRequest, msgMetadataTooBig)
		return
	}
	v.info.Metadata = md
	sendJSON(w, http.StatusOK, api.VolumeEditResp(copyInfo(&v.info)))
}

// metadataSize is api's mapSize: keys and values, "_" keys excluded.
func metadataSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		if !strings.HasPrefix(k, "_") {
			n += len(k) + len(v)
		}
	}
	return n
}

// volumeStatus reports the smart volume's size as its capacity; upstream
// mounts the volume and reports statvfs, slightly less than requested.
func (s *Server) volumeStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.getVolume(w, r.PathValue("volname"))
	if v == nil {
		return
	}
	if v.info.State != api.VolStarted {
		sendError(w, http.StatusBadRequest, msgVolNotStarted)
		return
	}
	capacity := v.sizeMiB * MiB
	used := min(v.used, capacity)
	sendJSON(w, http.StatusOK, api.VolumeStatusResp{
		Info:   copyInfo(&v.info),
		Online: true,
		Size:   api.SizeInfo{Capacity: capacity, Used: used, Free: capacity - used},
	})
}

func (s *Server) quotaEnable(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	v := s.getVolume(w, r.PathValue("volname"))
	if v == nil {
		return
	}
	if v.info.State != api.VolStarted {
		sendError(w, http.StatusBadRequest, msgVolNotStarted)
		return
	}
	if v.info.Options["features.quota"] == "on" {
		sendError(w, http.StatusBadRequest, msgProcessRunning)
		return
	}
	if v.info.Options == nil {
		v.info.Options = map[string]string{}
	}
	v.info.Options["features.quota"] = "on"
	sendJSON(w, http.StatusOK, "quota enabled")
}

// brickPlan is one planned brick.
type brickPlan struct {
	peer  int
	path  string
	kind  api.BrickType
	bytes uint64 // device space it takes
}

// smartVolumeCreate follows plugins/smartvol/rest.go: decode (422), validate
// (400), name taken (400, before the lock), plan bricks (500), lock (409),
// create (201).
func (s *Server) smartVolumeCreate(w http.ResponseWriter, r *http.Request) {
	var req smartvolapi.VolCreateReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		sendError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	switch {
	case !volNameRE.MatchString(req.Name):
		sendError(w, http.StatusBadRequest, msgInvalidVolName)
		return
	case req.Transport != "" && req.Transport != "tcp" && req.Transport != "rdma":
		sendError(w, http.StatusBadRequest, msgBadTransport)
		return
	case req.Size < minSmartVolMiB:
		sendError(w, http.StatusBadRequest, fmt.Sprintf("Invalid Volume Size, Minimum size required is %d", minSmartVolMiB))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[req.Name]; ok {
		sendError(w, http.StatusBadRequest, msgVolExists)
		return
	}
	if req.SnapshotReserveFactor == 0 || !req.SnapshotEnabled {
		req.SnapshotReserveFactor = 1
	}
	if req.SnapshotReserveFactor < 1 {
		sendError(w, http.StatusBadRequest, "Invalid Snapshot Reserve Factor")
		return
	}
	typ, subvols, err := s.plan(&req)
	if err != nil {
		sendError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if s.lockFailed(w) {
		return
	}
	if typ == "replicate" && req.ArbiterCount != 0 && (req.ReplicaCount != 3 || req.ArbiterCount != 1) {
		s.sendStepError(w, "vol-create.CreateVolinfo", "For arbiter configuration, replica count must be 3 and arbiter count must be 1. The 3rd brick of the replica will be the arbiter")
		return
	}
	replica := max(req.ReplicaCount, 1)
	if typ != "replicate" {
		replica = 1
	}
	v := s.newVolume(req.Name, req.Transport, typ, replica, req.ArbiterCount, subvols)
	v.sizeMiB = req.Size
	for _, sv := range subvols {
		for _, b := range sv {
			s.peers[b.peer].free -= b.bytes
			v.alloc[b.peer] += b.bytes
		}
	}
	s.vols[req.Name] = v
	sendJSON(w, http.StatusCreated, api.VolumeCreateResp(copyInfo(&v.info)))
}

// plan lays out bricks like bricksplanner.PlanBricks: one subvolume per
// distribute count, replica or disperse bricks in each, every brick in a
// zone (here: a peer) not used before in this volume (in this subvolume
// with subvolume-zones-overlap), on the peer with the most free space. The
// caller holds s.mu.
func (s *Server) plan(req *smartvolapi.VolCreateReq) (string, [][]brickPlan, error) {
	var cands []int
	for i, p := range s.peers {
		id := uuidString(p.id)
		if (len(req.LimitPeers) > 0 && !contains(req.LimitPeers, id)) ||
			(len(req.LimitZones) > 0 && !contains(req.LimitZones, id)) ||
			contains(req.ExcludePeers, id) || contains(req.ExcludeZones, id) {
			continue
		}
		cands = append(cands, i)
	}
	if len(cands) == 0 {
		return "", nil, errors.New(msgNoDevices)
	}
	sort.SliceStable(cands, func(a, b int) bool { return s.peers[cands[a]].free > s.peers[cands[b]].free })

	numSubvols := max(req.DistributeCount, 1)
	subvolKiB := req.Size * 1024 / uint64(numSubvols)

	typ, bricks, brickKiB := "distribute", 1, subvolKiB
	if req.ReplicaCount >= 2 {
		if req.ReplicaCount > 3 {
			return "", nil, errors.New("Invalid Replica Count")
		}
		if req.ArbiterCount > 1 {
			return "", nil, errors.New("Invalid Arbiter Count")
		}
		typ, bricks = "replicate", req.ReplicaCount
	}
	if req.DisperseCount != 0 || req.DisperseDataCount != 0 || req.DisperseRedundancyCount != 0 {
		count, data, red := req.DisperseCount, req.DisperseDataCount, req.DisperseRedundancyCount
		if data > 0 && red <= 0 {
			return "", nil, errors.New("Disperse redundancy count is required")
		}
		if data > 0 {
			count = data + red
		}
		if red <= 0 {
			red = defaultRedundancy(count)
		}
		if data <= 0 {
			data = count - red
		}
		if 2*red >= count {
			return "", nil, errors.New("Invalid redundancy count")
		}
		typ, bricks, brickKiB = "disperse", count, subvolKiB/uint64(data)
	}

	tpKiB := uint64(float64(brickKiB) * req.SnapshotReserveFactor)
	need := (tpKiB + uint64(float64(tpKiB)*0.005)) * 1024
	free := make(map[int]uint64, len(cands))
	for _, i := range cands {
		free[i] = s.peers[i].free
	}
	zones := map[int]bool{}
	out := make([][]brickPlan, numSubvols)
	for sv := range numSubvols {
		if req.SubvolZonesOverlap {
			zones = map[int]bool{}
		}
		for b := range bricks {
			picked := -1
			for _, i := range cands {
				if !zones[i] && free[i] >= need {
					picked = i
					break
				}
			}
			if picked < 0 {
				return "", nil, errors.New(msgNoSpace)
			}
			zones[picked] = true
			free[picked] -= need
			kind := api.Brick
			if typ == "replicate" && req.ArbiterCount > 0 && b == bricks-1 {
				kind = api.Arbiter
			}
			out[sv] = append(out[sv], brickPlan{
				peer:  picked,
				path:  fmt.Sprintf("%s/%s-s%d-b%d/brick", bricksRoot, req.Name, sv, b),
				kind:  kind,
				bytes: need,
			})
		}
	}
	return typ, out, nil
}

// defaultRedundancy is the redundancy glusterd2 picks for a disperse count:
// the count without its highest set bit, or 1 if that leaves nothing.
func defaultRedundancy(count int) int {
	if count <= 0 {
		return 1
	}
	high := 1
	for high*2 <= count {
		high *= 2
	}
	if r := count &^ high; r != 0 {
		return r
	}
	return 1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newVolume builds a Created volume's info the way newVolinfo and
// populateSubvols do. The caller holds s.mu.
func (s *Server) newVolume(name, transport, typ string, replica, arbiter int, subvols [][]brickPlan) *volume {
	if transport == "" {
		transport = "tcp"
	}
	id := newUUID()
	info := api.VolumeInfo{
		ID:        id,
		Name:      name,
		Type:      volType(typ, len(subvols)),
		Transport: transport,
		DistCount: len(subvols),
		Options:   map[string]string{},
		State:     api.VolCreated,
		Metadata:  map[string]string{},
	}
	for i, sv := range subvols {
		out := api.Subvol{
			Name:         fmt.Sprintf("%s-%s-%d", name, typ, i),
			Type:         subvolType(typ),
			ReplicaCount: replica,
		}
		if arbiter != 0 {
			out.ArbiterCount = 1
		}
		for _, b := range sv {
			p := s.peers[b.peer]
			out.Bricks = append(out.Bricks, api.BrickInfo{
				ID:         newUUID(),
				Path:       b.path,
				VolumeID:   id,
				VolumeName: name,
				PeerID:     p.id,
				Hostname:   p.host,
				Type:       b.kind,
			})
		}
		info.Subvols = append(info.Subvols, out)
	}
	return &volume{info: info, alloc: map[int]uint64{}}
}

func volType(typ string, n int) api.VolType {
	switch typ {
	case "replicate":
		if n > 1 {
			return api.DistReplicate
		}
		return api.Replicate
	case "disperse":
		if n > 1 {
			return api.DistDisperse
		}
		return api.Disperse
	}
	return api.Distribute
}

func subvolType(typ string) api.SubvolType {
	switch typ {
	case "replicate":
		return api.SubvolReplicate
	case "disperse":
		return api.SubvolDisperse
	}
	return api.SubvolDistribute
}

// volumeCreate follows glusterd2/commands/volumes/volume-create.go for
// explicit bricks: decode and validate (400), lock (409), then the
// transaction, whose failures (name taken, unknown peer, wrong brick count)
// are 500s.
func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) {
	var req api.VolCreateReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		sendError(w, http.StatusBadRequest, msgJSONParsing)
		return
	}
	switch {
	case !volNameRE.MatchString(req.Name):
		sendError(w, http.StatusBadRequest, msgInvalidVolName)
		return
	case req.Transport != "" && req.Transport != "tcp" && req.Transport != "rdma":
		sendError(w, http.StatusBadRequest, msgBadTransport)
		return
	case len(req.Subvols) == 0:
		sendError(w, http.StatusBadRequest, msgEmptyBrickList)
		return
	case req.MetadataSize() > maxMetadataSize:
		sendError(w, http.StatusBadRequest, msgMetadataTooBig)
		return
	}
	seen := map[string]bool{}
	for _, sv := range req.Subvols {
		if len(sv.Bricks) == 0 {
			sendError(w, http.StatusBadRequest, msgEmptyBrickList)
			return
		}
		for _, b := range sv.Bricks {
			key := b.PeerID + filepath.Clean(b.Path)
			if seen[key] {
				sendError(w, http.StatusBadRequest, msgDupBrick)
				return
			}
			seen[key] = true
			if !uuidRE.MatchString(b.PeerID) {
				sendError(w, http.StatusBadRequest, "Failed to parse peer ID: "+b.PeerID)
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFailed(w) {
		return
	}
	peerIndex := map[string]int{}
	for i, p := range s.peers {
		peerIndex[uuidString(p.id)] = i
	}
	var plans [][]brickPlan
	for _, sv := range req.Subvols {
		var bs []brickPlan
		for _, b := range sv.Bricks {
			i, ok := peerIndex[strings.ToLower(b.PeerID)]
			if !ok {
				sendError(w, http.StatusInternalServerError, fmt.Sprintf("node %s is probably down", strings.ToLower(b.PeerID)))
				return
			}
			kind := api.Brick
			if b.Type == "arbiter" {
				kind = api.Arbiter
			}
			bs = append(bs, brickPlan{peer: i, path: b.Path, kind: kind})
		}
		plans = append(plans, bs)
	}
	if _, ok := s.vols[req.Name]; ok {
		s.sendStepError(w, "vol-create.CreateVolinfo", msgVolExists)
		return
	}
	typ := strings.ToLower(req.Subvols[0].Type)
	replica, arbiter := 1, 0
	for _, sv := range req.Subvols {
		if sv.ReplicaCount == 0 && sv.Type == "replicate" {
			s.sendStepError(w, "vol-create.CreateVolinfo", "Replica count not specified")
			return
		}
		if sv.ReplicaCount > 0 && sv.ReplicaCount != len(sv.Bricks) {
			s.sendStepError(w, "vol-create.CreateVolinfo", "Invalid number of bricks")
			return
		}
		if sv.ReplicaCount > 0 {
			replica = sv.ReplicaCount
		}
		arbiter = sv.ArbiterCount
	}
	v := s.newVolume(req.Name, req.Transport, typ, replica, arbiter, plans)
	for k, val := range req.Options {
		v.info.Options[k] = val
	}
	for k, val := range req.Metadata {
		v.info.Metadata[k] = val
	}
	s.vols[req.Name] = v
	sendJSON(w, http.StatusCreated, api.VolumeCreateResp(copyInfo(&v.info)))
}

var uuidRE = regexp.MustCompile(`^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
