package heketifake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"
)

const (
	kibPerGiB    = 1024 * 1024 // heketi's GB constant: sizes are in KiB
	brickMinSize = kibPerGiB   // heketi's default BrickMinSize (1 GiB)
	// heketiDBVolume is heketi's db.HeketiStorageVolumeName, which heketi
	// refuses to delete.
	heketiDBVolume = "heketidbstorage"
)

// brickMaxNum is heketi's default BrickMaxNum: the most brick sets one
// allocation may split a volume or an expansion into.
const brickMaxNum = 32

var (
	errNoSpace = errors.New("No space")
	// heketi's allocator halves the brick size and doubles the number of
	// brick sets until the request fits; it gives up with one of these.
	errMaxBricks    = errors.New("Maximum number of bricks reached.")
	errMinBrickSize = errors.New("Minimum brick size limit reached.  Out of space.")
	errConflict     = errors.New("The target exists, contains other items, or is in use.")
)

// expansionGaveUp is the error heketi's allocator ends with when an
// expansion of sizeGiB fits in no split: it halves the brick size and
// doubles the sets until the bricks fall below the minimum size or the sets
// exceed the maximum, whichever comes first.
func expansionGaveUp(sizeGiB int) error {
	size, sets := int64(sizeGiB)*kibPerGiB, 1
	for {
		size, sets = size/2, sets*2
		if size < brickMinSize {
			return errMinBrickSize
		}
		if sets > brickMaxNum {
			return errMaxBricks
		}
	}
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// throttled is heketi's OpTracker.ThrottleOrAdd check plus the injected
// Busy count. Callers hold s.mu.
func (s *Server) throttled() bool {
	if s.busy > 0 {
		s.busy--
		return true
	}
	return s.maxInFlight > 0 && s.inflight >= s.maxInFlight
}

func busy(w http.ResponseWriter) {
	http.Error(w, busyMessage, http.StatusTooManyRequests)
}

// startJob registers a running job and answers 202 with its /queue
// location, as AsyncHttpRedirectFunc does. Callers hold s.mu.
func (s *Server) startJob(w http.ResponseWriter, r *http.Request, finish func(fail string) (string, error)) {
	j := &job{id: newID(), remain: s.opts.PendingPolls, finish: finish}
	if len(s.failNext) > 0 {
		j.fail = s.failNext[0]
		s.failNext = s.failNext[1:]
	}
	s.jobs[j.id] = j
	s.inflight++
	if d := s.opts.JobDuration; d > 0 {
		s.jobTimers = append(s.jobTimers, time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !j.done && !s.closed {
				s.finishJob(j)
			}
		}))
	}
	http.Redirect(w, r, "/queue/"+j.id, http.StatusAccepted)
}

// finishJob runs a job's effect (or its failure) once. Callers hold s.mu.
func (s *Server) finishJob(j *job) {
	if j.done {
		return
	}
	if j.fail != "" {
		_, _ = j.finish(j.fail)
		j.err = errors.New(j.fail)
	} else {
		j.location, j.err = j.finish("")
	}
	j.done = true
	s.inflight--
}

func (s *Server) queue(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	if !j.done {
		if j.remain > 0 {
			j.remain--
			w.Header().Add("X-Pending", "true")
			w.WriteHeader(http.StatusOK)
			return
		}
		s.finishJob(j)
	}
	// A finished entry is answered once, then forgotten.
	delete(s.jobs, id)
	switch {
	case j.err != nil:
		http.Error(w, j.err.Error(), http.StatusInternalServerError)
	case j.location != "":
		http.Redirect(w, r, j.location, http.StatusSeeOther)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) clusterByID(id string) *cluster {
	for _, c := range s.clusters {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (s *Server) hosts(c *cluster) []string {
	hosts := make([]string, 0, len(c.nodes))
	for _, n := range c.nodes {
		hosts = append(hosts, s.nodes[n].host)
	}
	return hosts
}

// used returns the GiB charged against c's capacity.
func (s *Server) used(c *cluster) int {
	n := 0
	for _, id := range c.volumes {
		n += s.vols[id].charged()
	}
	return n
}

// charged is the space a volume takes: clones are thin and free until
// they are expanded.
func (v *volume) charged() int {
	if v.cloneOf != "" {
		return v.expanded
	}
	return v.info.Size
}

func bricksInSet(d api.VolumeDurabilityInfo) (set, data int) {
	switch d.Type {
	case api.DurabilityReplicate:
		return d.Replicate.Replica, 1
	case api.DurabilityEC:
		return d.Disperse.Data + d.Disperse.Redundancy, d.Disperse.Data
	}
	return 1, 1
}

// allocate checks that sizeGiB more fits in c and returns one brick set for
// volume id, or errNoSpace.
func (s *Server) allocate(c *cluster, d api.VolumeDurabilityInfo, volID string, sizeGiB int) ([]api.BrickInfo, error) {
	set, data := bricksInSet(d)
	if len(c.nodes) < set {
		return nil, errNoSpace
	}
	if c.capacity > 0 && s.used(c)+sizeGiB > c.capacity {
		return nil, errNoSpace
	}
	bricks := make([]api.BrickInfo, 0, set)
	for i := 0; i < set; i++ {
		n := s.nodes[c.nodes[i]]
		id := newID()
		bricks = append(bricks, api.BrickInfo{
			Id:       id,
			Path:     "/var/lib/heketi/mounts/vg_" + n.device + "/brick_" + id + "/brick",
			DeviceId: n.device,
			NodeId:   n.id,
			VolumeId: volID,
			Size:     uint64(sizeGiB) * kibPerGiB / uint64(data),
		})
	}
	return bricks, nil
}

// setMount fills the mount information as heketi's updateMountInfo does:
// every host of the cluster, the first as the device's server.
func (s *Server) setMount(info *api.VolumeInfoResponse, c *cluster) {
	hosts := s.hosts(c)
	info.Mount.GlusterFS.Hosts = hosts
	info.Mount.GlusterFS.Options = map[string]string{}
	if len(hosts) > 0 {
		info.Mount.GlusterFS.MountPoint = hosts[0] + ":" + info.Name
		info.Mount.GlusterFS.Options["backup-volfile-servers"] = strings.Join(hosts[1:], ",")
	}
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) {
	var msg api.VolumeCreateRequest
	if err := readJSON(r, &msg); err != nil {
		http.Error(w, "request unable to be parsed", http.StatusUnprocessableEntity)
		return
	}
	if err := msg.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case msg.Gid < 0:
		http.Error(w, "Bad group id less than zero", http.StatusBadRequest)
		return
	case msg.Gid >= math.MaxInt32:
		http.Error(w, "Bad group id equal or greater than 2**32", http.StatusBadRequest)
		return
	}
	switch msg.Durability.Type {
	case api.DurabilityEC, api.DurabilityReplicate, api.DurabilityDistributeOnly:
	case "":
		msg.Durability.Type = api.DurabilityDistributeOnly
	default:
		http.Error(w, "Unknown durability type", http.StatusBadRequest)
		return
	}
	if msg.Size < 1 {
		http.Error(w, "Invalid volume size", http.StatusBadRequest)
		return
	}
	if msg.Snapshot.Enable && (msg.Snapshot.Factor < 1 || msg.Snapshot.Factor > 100) {
		http.Error(w, "Invalid snapshot factor", http.StatusBadRequest)
		return
	}
	if msg.Durability.Type == api.DurabilityReplicate && msg.Durability.Replicate.Replica > 3 {
		http.Error(w, "Invalid replica value", http.StatusBadRequest)
		return
	}
	if msg.Durability.Type == api.DurabilityEC {
		d := msg.Durability.Disperse
		switch {
		case d.Data == 2 && d.Redundancy == 1:
		case d.Data == 4 && d.Redundancy == 2:
		case d.Data == 8 && d.Redundancy == 3:
		case d.Data == 8 && d.Redundancy == 4:
		default:
			http.Error(w, fmt.Sprintf("Invalid dispersion combination: %v+%v", d.Data, d.Redundancy), http.StatusBadRequest)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clusters) == 0 {
		http.Error(w, "No clusters configured", http.StatusBadRequest)
		return
	}
	for _, id := range msg.Clusters {
		if s.clusterByID(id) == nil {
			http.Error(w, fmt.Sprintf("Cluster id %v not found", id), http.StatusBadRequest)
			return
		}
	}
	// NewVolumeEntryFromRequest: defaults.
	if msg.Durability.Type == api.DurabilityReplicate && msg.Durability.Replicate.Replica == 0 {
		msg.Durability.Replicate.Replica = 2 // heketi's DEFAULT_REPLICA
	}
	if !msg.Snapshot.Enable {
		msg.Snapshot.Factor = 1
	}
	if msg.Durability.Type == api.DurabilityEC {
		if min := uint64(brickMinSize) * uint64(msg.Durability.Disperse.Data); uint64(msg.Size)*kibPerGiB < min {
			http.Error(w, fmt.Sprintf("Requested volume size (%v GB) is smaller than the minimum supported volume size (%v)",
				msg.Size, min), http.StatusBadRequest)
			return
		}
	}
	if s.throttled() {
		busy(w)
		return
	}

	id := newID()
	name := msg.Name
	if name == "" {
		name = "vol_" + id
	}
	c, bricks, err := s.placeVolume(&msg, name, id)
	if err != nil {
		http.Error(w, "Failed to allocate new volume: "+err.Error(), http.StatusInternalServerError)
		return
	}
	info := api.NewVolumeInfoResponse()
	info.VolumeCreateRequest = msg
	info.Clusters = nil
	info.Name = name
	info.Id = id
	info.Cluster = c.id
	info.Bricks = bricks
	s.setMount(info, c)
	v := &volume{info: *info, pending: opCreate}
	s.vols[id] = v
	c.volumes = append(c.volumes, id)
	sort.Strings(c.volumes)

	s.startJob(w, r, func(fail string) (string, error) {
		if fail != "" {
			s.removeVolume(id)
			return "", nil
		}
		v.pending = opNone
		return "/volumes/" + id, nil
	})
}

// placeVolume picks a cluster for a new volume as heketi's
// eligibleClusters and tryAllocateBricks do: clusters where the name is
// free and the volume count is below the limit, then the first with space.
func (s *Server) placeVolume(msg *api.VolumeCreateRequest, name, id string) (*cluster, []api.BrickInfo, error) {
	var candidates []*cluster
	if len(msg.Clusters) > 0 {
		for _, cid := range msg.Clusters {
			candidates = append(candidates, s.clusterByID(cid))
		}
	} else {
		candidates = slices.Clone(s.clusters)
		sort.Slice(candidates, func(i, j int) bool { return candidates[i].id < candidates[j].id })
	}
	type clusterErr struct {
		id  string
		err error
	}
	var errs []clusterErr
	var eligible []*cluster
	for _, c := range candidates {
		if s.nameInCluster(c, name) {
			errs = append(errs, clusterErr{c.id, fmt.Errorf("Volume name '%v' already in use", name)})
			continue
		}
		if len(c.volumes) >= s.maxVolumes {
			errs = append(errs, clusterErr{c.id, fmt.Errorf("Cluster has %v volumes and limit is %v", len(c.volumes), s.maxVolumes)})
			continue
		}
		eligible = append(eligible, c)
	}
	if len(eligible) == 0 {
		switch len(errs) {
		case 0:
			return nil, nil, errNoSpace
		case 1:
			return nil, nil, errs[0].err
		}
		lines := []string{"No eligible cluster for volume"}
		for _, e := range errs {
			lines = append(lines, fmt.Sprintf("Cluster %v: %v", e.id, e.err))
		}
		return nil, nil, errors.New(strings.Join(lines, "\n"))
	}
	for _, c := range eligible {
		if bricks, err := s.allocate(c, msg.Durability, id, msg.Size); err == nil {
			return c, bricks, nil
		}
	}
	return nil, nil, errNoSpace
}

// nameInCluster is heketi's volumeNameExistsInCluster: every volume of the
// cluster counts, pending ones included.
func (s *Server) nameInCluster(c *cluster, name string) bool {
	for _, id := range c.volumes {
		if s.vols[id].info.Name == name {
			return true
		}
	}
	return false
}

func (s *Server) removeVolume(id string) {
	v, ok := s.vols[id]
	if !ok {
		return
	}
	delete(s.vols, id)
	if c := s.clusterByID(v.info.Cluster); c != nil {
		c.volumes = slices.DeleteFunc(c.volumes, func(x string) bool { return x == id })
	}
}

func (s *Server) volumeList(w http.ResponseWriter) {
	s.mu.Lock()
	ids := []string{}
	for id, v := range s.vols {
		if v.listed() {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	sort.Strings(ids)
	writeJSON(w, api.VolumeListResponse{Volumes: ids})
}

func (s *Server) volumeInfo(w http.ResponseWriter, id string) {
	s.mu.Lock()
	v, ok := s.vols[id]
	var info api.VolumeInfoResponse
	if ok && v.visible() {
		info = copyInfo(&v.info)
	}
	s.mu.Unlock()
	if !ok || !v.visible() {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	writeJSON(w, info)
}

func (s *Server) volumeDelete(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[id]
	if !ok {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	if v.info.Name == heketiDBVolume {
		http.Error(w, "Cannot delete volume containing the Heketi database", http.StatusConflict)
		return
	}
	if s.throttled() {
		busy(w)
		return
	}
	if v.pending != opNone {
		http.Error(w, "Failed to set up volume delete: "+errConflict.Error(), http.StatusInternalServerError)
		return
	}
	v.pending = opDelete
	s.startJob(w, r, func(fail string) (string, error) {
		if fail != "" {
			v.pending = opNone
			return "", nil
		}
		s.removeVolume(id)
		return "", nil
	})
}

func (s *Server) volumeExpand(w http.ResponseWriter, r *http.Request, id string) {
	var msg api.VolumeExpandRequest
	if err := readJSON(r, &msg); err != nil {
		http.Error(w, "request unable to be parsed", http.StatusUnprocessableEntity)
		return
	}
	if err := msg.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg.Size < 1 {
		http.Error(w, "Invalid volume size", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[id]
	if !ok {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	if s.throttled() {
		busy(w)
		return
	}
	c := s.clusterByID(v.info.Cluster)
	bricks, err := s.allocate(c, v.info.Durability, id, msg.Size)
	if err != nil {
		if errors.Is(err, errNoSpace) {
			err = expansionGaveUp(msg.Size)
		}
		http.Error(w, "Failed to allocate volume expansion: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if v.pending == opNone {
		v.pending = opExpanding
	}
	delta := msg.Size
	s.startJob(w, r, func(fail string) (string, error) {
		if v.pending == opExpanding {
			v.pending = opNone
		}
		if fail != "" {
			return "", nil
		}
		v.info.Size += delta
		v.expanded += delta
		v.info.Bricks = append(v.info.Bricks, bricks...)
		return "/volumes/" + id, nil
	})
}

func (s *Server) volumeClone(w http.ResponseWriter, r *http.Request, id string) {
	var msg api.VolumeCloneRequest
	if err := readJSON(r, &msg); err != nil {
		http.Error(w, "request unable to be parsed", http.StatusUnprocessableEntity)
		return
	}
	if err := msg.Validate(); err != nil {
		http.Error(w, "validation failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.vols[id]
	if !ok || !src.visible() {
		// Upstream answers an invisible source with err.Error() of a nil
		// error (a panic, so 500); "Id not found" is what it means.
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	if s.throttled() {
		busy(w)
		return
	}
	// NewVolumeEntryFromClone: heketi does not check the clone's name.
	cid := newID()
	name := msg.Name
	if name == "" {
		name = "vol_" + cid
	}
	info := copyInfo(&src.info)
	info.Id = cid
	info.Name = name
	info.Mount.GlusterFS.MountPoint = info.Mount.GlusterFS.Hosts[0] + ":" + name
	for i := range info.Bricks {
		info.Bricks[i].Id = newID()
		info.Bricks[i].VolumeId = cid
	}
	clone := &volume{info: info, pending: opCloneNew, cloneOf: id}
	s.vols[cid] = clone
	c := s.clusterByID(info.Cluster)
	c.volumes = append(c.volumes, cid)
	sort.Strings(c.volumes)
	prev := src.pending
	src.pending = opCloneSrc
	s.startJob(w, r, func(fail string) (string, error) {
		if src.pending == opCloneSrc {
			src.pending = prev
		}
		if fail != "" {
			s.removeVolume(cid)
			return "", nil
		}
		clone.pending = opNone
		return "/volumes/" + cid, nil
	})
}

func (s *Server) clusterList(w http.ResponseWriter) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.clusters))
	for _, c := range s.clusters {
		ids = append(ids, c.id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	writeJSON(w, api.ClusterListResponse{Clusters: ids})
}

func (s *Server) clusterInfo(w http.ResponseWriter, id string) {
	s.mu.Lock()
	c := s.clusterByID(id)
	var resp api.ClusterInfoResponse
	if c != nil {
		resp = api.ClusterInfoResponse{
			Id:           c.id,
			Nodes:        slices.Clone(c.nodes),
			Volumes:      slices.Clone(c.volumes),
			ClusterFlags: api.ClusterFlags{File: true},
			BlockVolumes: []string{},
		}
	}
	s.mu.Unlock()
	if c == nil {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	writeJSON(w, resp)
}

func (s *Server) nodeInfo(w http.ResponseWriter, id string) {
	s.mu.Lock()
	n, ok := s.nodes[id]
	var resp api.NodeInfoResponse
	if ok {
		resp.Id = n.id
		resp.Zone = 1
		resp.ClusterId = n.cluster
		resp.Hostnames.Manage = []string{n.host}
		resp.Hostnames.Storage = []string{n.host}
		resp.State = api.EntryStateOnline
		resp.DevicesInfo = []api.DeviceInfoResponse{}
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	}
	writeJSON(w, resp)
}
