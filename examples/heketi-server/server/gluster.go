package server

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit/backend/cli"
)

// durabilityTTL is how long the backing volume's layout read from
// `gluster volume info` is trusted (add-brick can change it).
const durabilityTTL = time.Minute

// durabilitySource reports the durability of the backing volume: a fixed
// value from the Config, or what `gluster volume info` says, cached for
// durabilityTTL. It is safe for concurrent use.
type durabilitySource struct {
	fixed  *api.VolumeDurabilityInfo
	runner cli.Runner
	volume string

	mu   sync.Mutex
	last api.VolumeDurabilityInfo
	at   time.Time
}

// get returns the durability; on a failed refresh it keeps the last value
// read and returns an error only if there is none.
func (d *durabilitySource) get(ctx context.Context) (api.VolumeDurabilityInfo, error) {
	if d.fixed != nil {
		return *d.fixed, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && time.Since(d.at) < durabilityTTL {
		return d.last, nil
	}
	v, err := readDurability(ctx, d.runner, d.volume)
	if err != nil {
		if !d.at.IsZero() {
			return d.last, nil
		}
		return api.VolumeDurabilityInfo{}, err
	}
	d.last, d.at = v, time.Now()
	return v, nil
}

type volInfoXML struct {
	OpRet    int    `xml:"opRet"`
	OpErrstr string `xml:"opErrstr"`
	Volumes  []struct {
		Name            string `xml:"name"`
		TypeStr         string `xml:"typeStr"`
		ReplicaCount    int    `xml:"replicaCount"`
		DisperseCount   int    `xml:"disperseCount"`
		RedundancyCount int    `xml:"redundancyCount"`
	} `xml:"volInfo>volumes>volume"`
}

// readDurability runs `gluster volume info VOL` and maps the volume's type
// to heketi's durability: Distribute is "none", (Distributed-)Replicate is
// "replicate" with the replica count, (Distributed-)Disperse is "disperse"
// with data = disperse - redundancy.
func readDurability(ctx context.Context, r cli.Runner, volume string) (api.VolumeDurabilityInfo, error) {
	var d api.VolumeDurabilityInfo
	stdout, stderr, err := r.Run(ctx, "--mode=script", "--xml", "volume", "info", volume)
	i := bytes.Index(stdout, []byte("<cliOutput"))
	if i < 0 {
		if err == nil {
			err = fmt.Errorf("no XML in the answer")
		}
		return d, fmt.Errorf("gluster volume info %s: %w: %s", volume, err, strings.TrimSpace(string(stderr)))
	}
	var out volInfoXML
	if err := xml.Unmarshal(stdout[i:], &out); err != nil {
		return d, fmt.Errorf("gluster volume info %s: %w", volume, err)
	}
	if out.OpRet != 0 || len(out.Volumes) != 1 {
		return d, fmt.Errorf("gluster volume info %s: %s (opRet %d)", volume, out.OpErrstr, out.OpRet)
	}
	v := out.Volumes[0]
	switch t := v.TypeStr; {
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
		return d, fmt.Errorf("gluster volume info %s: volume type %q has no heketi durability", volume, t)
	}
	return d, nil
}
