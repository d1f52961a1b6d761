package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit/backend/cli"
)

// layoutTTL is how long the backing volume's layout read from `gluster
// volume info` is trusted (add-brick can change it).
const layoutTTL = time.Minute

// volumeInfoer is what the cli backend offers through Pool.As.
type volumeInfoer interface {
	VolumeInfo(ctx context.Context) (*cli.VolumeInfo, error)
}

// layoutSource reports the backing volume's layout: a fixed one from the
// Config, or what the cli backend's VolumeInfo says, cached for layoutTTL.
// It is safe for concurrent use.
type layoutSource struct {
	fixed *cli.VolumeInfo
	src   volumeInfoer

	mu   sync.Mutex
	last *cli.VolumeInfo
	at   time.Time
}

// get returns the layout; on a failed refresh it keeps the last one read
// and returns an error only if there is none.
func (l *layoutSource) get(ctx context.Context) (*cli.VolumeInfo, error) {
	if l.fixed != nil {
		return l.fixed, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last != nil && time.Since(l.at) < layoutTTL {
		return l.last, nil
	}
	v, err := l.src.VolumeInfo(ctx)
	if err != nil {
		if l.last != nil {
			return l.last, nil
		}
		return nil, err
	}
	if _, err := durability(v); err != nil {
		return nil, err
	}
	l.last, l.at = v, time.Now()
	return v, nil
}

// durability maps a volume's type to heketi's durability: Distribute is
// "none", (Distributed-)Replicate is "replicate" with the replica count,
// (Distributed-)Disperse is "disperse" with data = disperse - redundancy.
func durability(v *cli.VolumeInfo) (api.VolumeDurabilityInfo, error) {
	var d api.VolumeDurabilityInfo
	switch t := v.Type; {
	case strings.Contains(t, "Replicate"):
		d.Type = api.DurabilityReplicate
		d.Replicate.Replica = v.ReplicaCount
	case strings.Contains(t, "Disperse"):
		d.Type = api.DurabilityEC
		d.Disperse.Data = v.DisperseCount - v.RedundancyCount
		d.Disperse.Redundancy = v.RedundancyCount
	case t == "Distribute":
		d.Type = api.DurabilityDistributeOnly
	default:
		return d, fmt.Errorf("volume %s: type %q has no heketi durability", v.Name, t)
	}
	return d, nil
}

// bricks describes the part of each of the volume's bricks that holds the
// subvolume dir, as heketi describes a volume's bricks: the brick's
// directory, its node and device (ids derived from the host and the brick
// path), and its share of the size in KiB.
func (s *Server) bricks(v *cli.VolumeInfo, volID, dir string, sizeBytes int64) []api.BrickInfo {
	if len(v.Bricks) == 0 {
		return []api.BrickInfo{}
	}
	// Data bricks per copy of the data: heketi's brick size is the
	// volume's size divided over the bricks of one replica set (or the
	// data bricks of a disperse set), times the number of sets.
	perCopy := len(v.Bricks)
	switch d, _ := durability(v); d.Type {
	case api.DurabilityReplicate:
		if d.Replicate.Replica > 0 {
			perCopy = len(v.Bricks) / d.Replicate.Replica
		}
	case api.DurabilityEC:
		if n := d.Disperse.Data + d.Disperse.Redundancy; n > 0 {
			perCopy = len(v.Bricks) / n * d.Disperse.Data
		}
	}
	if perCopy < 1 {
		perCopy = 1
	}
	out := make([]api.BrickInfo, 0, len(v.Bricks))
	for _, b := range v.Bricks {
		out = append(out, api.BrickInfo{
			Id:       derivedID("brick", s.cfg.Volume+"\x00"+b.Host+"\x00"+b.Path+"\x00"+dir),
			Path:     strings.TrimRight(b.Path, "/") + "/" + dir,
			DeviceId: deviceID(s.cfg.Volume, b),
			NodeId:   nodeID(s.cfg.Volume, b.Host),
			VolumeId: volID,
			Size:     uint64(sizeBytes/1024) / uint64(perCopy),
		})
	}
	return out
}

// nodeID and deviceID are the stable ids of a host and a brick.
func nodeID(volume, host string) string { return derivedID("node", volume+"\x00"+host) }

func deviceID(volume string, b cli.Brick) string {
	return derivedID("device", volume+"\x00"+b.Host+"\x00"+b.Path)
}
