package driver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// PoolConfig is one named pool in the pools file.
type PoolConfig struct {
	// Backend is a registered backend name: cli, heketi, glusterd2, memory.
	Backend string `json:"backend"`
	// Params are the backend's parameters, as backend.Open takes them.
	// Secrets never go here: they come from the CSI secrets of each call
	// and are added to Params when the pool is opened.
	Params map[string]string `json:"params,omitempty"`
	// Capacity, if set ("500Gi"), is what GetCapacity reports the pool
	// can hold: the sum of the sizes of its subvolumes and snapshots is
	// taken from it.
	Capacity string `json:"capacity,omitempty"`
	// DefaultSize is the size of a volume whose request gives none;
	// default 1Gi.
	DefaultSize string `json:"defaultSize,omitempty"`
	// MaxSize, if set, is the largest volume the pool hands out.
	MaxSize string `json:"maxSize,omitempty"`
	// Warm, if set ("1Gi:20,10Gi:5", see subvol.ParseWarmClasses), is the
	// warm subvolumes the controller keeps ready: a CreateVolume of exactly
	// such a size is served by renames instead of a quota call (backends
	// with backend.Warmer: cli, memory).
	Warm string `json:"warm,omitempty"`

	capacity, defaultSize, maxSize int64
	warm                           []subvol.WarmClass
}

// PoolsFile is the pools file: YAML or JSON.
//
//	pools:
//	  gold:
//	    backend: cli
//	    params: {volume: gv0, servers: "gfs1,gfs2,gfs3"}
//	    capacity: 500Gi
type PoolsFile struct {
	Pools map[string]*PoolConfig `json:"pools"`
}

// LoadPools reads a pools file. Unknown fields, a pool name that is not a
// valid subvolume name, a missing backend and malformed sizes are errors.
func LoadPools(path string) (map[string]*PoolConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pools, err := ParsePools(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pools, nil
}

// ParsePools parses the content of a pools file; see LoadPools.
func ParsePools(data []byte) (map[string]*PoolConfig, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var f PoolsFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Pools) == 0 {
		return nil, fmt.Errorf("no pools")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Pools)) {
		p := f.Pools[name]
		if err := naming.ValidateSubvolName(name); err != nil || len(name) > 63 {
			return nil, fmt.Errorf("pool name %q: must be a valid subvolume name of at most 63 bytes", name)
		}
		if p == nil || p.Backend == "" {
			return nil, fmt.Errorf("pool %q: no backend", name)
		}
		p.defaultSize = quota.GiB
		for _, s := range []struct {
			v   string
			dst *int64
			key string
		}{{p.Capacity, &p.capacity, "capacity"}, {p.DefaultSize, &p.defaultSize, "defaultSize"}, {p.MaxSize, &p.maxSize, "maxSize"}} {
			if s.v == "" {
				continue
			}
			n, err := quota.ParseQuantity(s.v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("pool %q: %s %q is not a positive size", name, s.key, s.v)
			}
			*s.dst = n
		}
		w, err := subvol.ParseWarmClasses(p.Warm)
		if err != nil {
			return nil, fmt.Errorf("pool %q: warm: %w", name, err)
		}
		p.warm = w
	}
	return f.Pools, nil
}
