package cli

import (
	"context"
	"strings"
)

// VolumeInfo is what `gluster volume info` reports of the backend's
// volume: its layout and bricks, for front ends that describe the volume
// to their clients (a heketi-compatible server reports durability and
// bricks). Reach it through subvol.Pool.As with a **cli.Backend.
type VolumeInfo struct {
	// Name and ID are the volume's name and UUID.
	Name, ID string
	// Status is "Started", "Stopped" or "Created".
	Status string
	// Type is Gluster's typeStr: "Distribute", "Replicate",
	// "Distributed-Replicate", "Disperse", "Distributed-Disperse".
	Type string
	// ReplicaCount, ArbiterCount, DisperseCount and RedundancyCount are
	// the layout's counts (Gluster reports 1 or 0 where they do not apply).
	ReplicaCount, ArbiterCount, DisperseCount, RedundancyCount int
	// Bricks are the volume's bricks in order.
	Bricks []Brick
	// Options are the reconfigured volume options.
	Options map[string]string
}

// Brick is one brick of a volume.
type Brick struct {
	// Host and Path are the brick's "host:/path", split.
	Host, Path string
	// Arbiter reports an arbiter brick (metadata only).
	Arbiter bool
}

// VolumeInfo runs `gluster volume info` on the backend's volume. It has no
// side effects.
func (b *Backend) VolumeInfo(ctx context.Context) (*VolumeInfo, error) {
	v, err := b.g.volumeInfo(ctx)
	if err != nil {
		return nil, err
	}
	return v.info(), nil
}

// info converts the XML answer.
func (v *volumeXML) info() *VolumeInfo {
	out := &VolumeInfo{
		Name: v.Name, ID: v.ID, Status: v.StatusStr, Type: v.TypeStr,
		ReplicaCount: v.ReplicaCount, ArbiterCount: v.ArbiterCount,
		DisperseCount: v.DisperseCount, RedundancyCount: v.RedundancyCount,
		Options: map[string]string{},
	}
	for _, b := range v.Bricks.Brick {
		br := Brick{Host: b.Name, Arbiter: b.IsArbiter == 1}
		if i := strings.LastIndex(b.Name, ":/"); i > 0 {
			br.Host, br.Path = b.Name[:i], b.Name[i+1:]
		}
		out.Bricks = append(out.Bricks, br)
	}
	for _, o := range v.Options.Option {
		out.Options[o.Name] = o.Value
	}
	return out
}

// Capacity returns the volume's size as the backend measured it when it
// opened (statfs of its mount), or 0 if unknown. Create and Resize refuse
// a subvolume larger than this with kind InvalidArgument.
func (b *Backend) Capacity() int64 { return b.capacity }
