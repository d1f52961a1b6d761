package server

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/subvol"
)

// A heketi device here is a brick of the backing volume: its name is the
// brick's path, its bricks are the subvolumes' directories on it.

// device describes brick b as a heketi device, with the bricks of svs on it.
// Its storage is the volume's size limit where known (heketi reports KiB).
func (s *Server) device(layout *cli.VolumeInfo, b cli.Brick, svs []*subvol.Subvol) api.DeviceInfoResponse {
	var d api.DeviceInfoResponse
	d.Id = deviceID(s.cfg.Volume, b)
	d.Name = b.Path
	d.State = api.EntryStateOnline
	d.Bricks = []api.BrickInfo{}
	if s.maxBytes > 0 {
		d.Storage.Total = uint64(s.maxBytes / 1024)
	}
	var used uint64
	for _, sv := range svs {
		for _, bi := range s.bricks(layout, sv.Labels[LabelID], sv.Name, sv.SizeBytes) {
			if bi.DeviceId == d.Id {
				d.Bricks = append(d.Bricks, bi)
				used += bi.Size
			}
		}
	}
	d.Storage.Used = used
	if d.Storage.Total > used {
		d.Storage.Free = d.Storage.Total - used
	}
	return d
}

// deviceInfo answers GET /devices/{id}: the brick with that id and the
// volumes' bricks on it.
func (s *Server) deviceInfo(w http.ResponseWriter, r *http.Request, id string) {
	layout, err := s.layout.get(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, b := range layout.Bricks {
		if !strings.EqualFold(id, deviceID(s.cfg.Volume, b)) {
			continue
		}
		svs, err := s.idx.list(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, s.device(layout, b, svs))
		return
	}
	http.Error(w, "Id not found", http.StatusNotFound)
}

// createCluster answers POST /clusters. The topology is the Gluster
// volume's, so there is one cluster: heketi-cli cluster create gets it
// (201, as heketi answers a new one).
func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) {
	var req api.ClusterCreateRequest
	if !readJSON(w, r, &req) {
		return
	}
	vols, err := s.idx.recentIDs(r.Context(), clusterVolumesMaxAge)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	info := s.clusterResponse(vols)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusCreated)
	writeBody(w, info)
}

// heketi's log levels and the slog levels they set.
var logLevels = []struct {
	name  string
	level slog.Level
}{
	{"none", slog.Level(math.MaxInt32)},
	{"critical", slog.LevelError + 4},
	{"error", slog.LevelError},
	{"warning", slog.LevelWarn},
	{"info", slog.LevelInfo},
	{"debug", slog.LevelDebug},
}

// getLogLevel answers GET /internal/logging (heketi-cli loglevel get).
func (s *Server) getLogLevel(w http.ResponseWriter, r *http.Request) {
	name := "info"
	lv := s.logLevel.Level()
	for _, l := range logLevels {
		if lv >= l.level {
			name = l.name
			break
		}
	}
	writeJSON(w, api.LogLevelInfo{LogLevel: map[string]string{"glusterfs": name}})
}

// setLogLevel answers POST /internal/logging (heketi-cli loglevel set),
// with heketi's messages.
func (s *Server) setLogLevel(w http.ResponseWriter, r *http.Request) {
	var req api.LogLevelInfo
	if !readJSON(w, r, &req) {
		return
	}
	want, ok := req.LogLevel["glusterfs"]
	if !ok {
		http.Error(w, `Only "glusterfs" logger may be modified`, http.StatusUnprocessableEntity)
		return
	}
	for _, l := range logLevels {
		if l.name == want {
			s.logLevel.Set(l.level)
			s.log.Info("set new log level", "level", want)
			s.getLogLevel(w, r)
			return
		}
	}
	http.Error(w, fmt.Sprintf("Unknown log level: %v", want), http.StatusUnprocessableEntity)
}

// metrics answers GET /metrics, open to all as in heketi, with heketi's
// metric names in Prometheus' text format.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP heketi_%s %s\n# TYPE heketi_%s gauge\n", name, help, name)
	}
	layout, lerr := s.layout.get(r.Context())
	vols, verr := s.idx.recentIDs(r.Context(), clusterVolumesMaxAge)
	up := 1
	if lerr != nil || verr != nil {
		up = 0
	}
	gauge("up", "Is heketi running?")
	fmt.Fprintf(&b, "heketi_up %d\n", up)
	if up == 1 {
		gauge("cluster_count", "Number of clusters")
		b.WriteString("heketi_cluster_count 1\n")
		gauge("volumes_count", "Number of volumes on cluster")
		fmt.Fprintf(&b, "heketi_volumes_count{cluster=%q} %d\n", s.clusterID, len(vols))
		gauge("block_volumes_count", "Number of block volumes on cluster")
		fmt.Fprintf(&b, "heketi_block_volumes_count{cluster=%q} 0\n", s.clusterID)
		gauge("nodes_count", "Number of nodes on cluster")
		fmt.Fprintf(&b, "heketi_nodes_count{cluster=%q} %d\n", s.clusterID, len(s.nodes))
		gauge("device_count", "Number of devices on host")
		for _, n := range s.nodes {
			count := 0
			for _, br := range layout.Bricks {
				if br.Host == n.host {
					count++
				}
			}
			fmt.Fprintf(&b, "heketi_device_count{cluster=%q,hostname=%q,storage_hostname=%q} %d\n", s.clusterID, n.host, n.host, count)
		}
	}
	gauge("operations_inFlight_count", "Number of in flight Operations")
	fmt.Fprintf(&b, "heketi_operations_inFlight_count %d\n", s.q.running())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}
