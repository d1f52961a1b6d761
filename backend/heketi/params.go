package heketi

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

// Parameter names, as the Kubernetes in-tree glusterfs provisioner's
// StorageClass parameters spell them (plus tlsinsecure and tlscafile).
const (
	ParamRESTURL       = "resturl"
	ParamRESTUser      = "restuser"
	ParamRESTUserKey   = "restuserkey"
	ParamClusterID     = "clusterid"
	ParamVolumeType    = "volumetype"
	ParamGid           = "gid"
	ParamVolumeOptions = "volumeoptions"
	ParamSnapFactor    = "snapfactor"
	ParamTLSInsecure   = "tlsinsecure"
	ParamTLSCAFile     = "tlscafile"
	ParamDeepDirPrefix = "deepdirprefix"
	// The retry keys, spelled the same in every backend.
	ParamRetryMaxAttempts = "retrymaxattempts" // an integer
	ParamRetryMinDelay    = "retrymindelay"    // a Go duration ("1s")
	ParamRetryMaxDelay    = "retrymaxdelay"    // a Go duration ("30s")
)

// perVolumeParams are the parameters a CreateRequest may override.
var perVolumeParams = map[string]bool{
	ParamClusterID: true, ParamVolumeType: true, ParamGid: true,
	ParamVolumeOptions: true, ParamSnapFactor: true,
}

var openParams = map[string]bool{
	ParamRESTURL: true, ParamRESTUser: true, ParamRESTUserKey: true,
	ParamClusterID: true, ParamVolumeType: true, ParamGid: true,
	ParamVolumeOptions: true, ParamSnapFactor: true, ParamTLSInsecure: true,
	ParamTLSCAFile: true, ParamDeepDirPrefix: true,
	ParamRetryMaxAttempts: true, ParamRetryMinDelay: true, ParamRetryMaxDelay: true,
}

// DefaultVolumeType is the durability used when none is given, as in the
// Kubernetes in-tree provisioner.
const DefaultVolumeType = "replicate:3"

// parseVolumeType parses the in-tree provisioner's volumetype syntax:
// "replicate" or "replicate:N" (N from 1 to 3, default 3), "disperse:D:R"
// (one of heketi's combinations 2:1, 4:2, 8:3, 8:4) or "none"
// (distribute only). "" means DefaultVolumeType.
func parseVolumeType(s string) (api.VolumeDurabilityInfo, error) {
	var d api.VolumeDurabilityInfo
	if strings.TrimSpace(s) == "" {
		s = DefaultVolumeType
	}
	f := strings.Split(s, ":")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	num := func(what, v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("volumetype %q: %s %q is not a positive integer", s, what, v)
		}
		return n, nil
	}
	switch f[0] {
	case "replicate":
		d.Type = api.DurabilityReplicate
		d.Replicate.Replica = 3
		if len(f) > 2 {
			return d, fmt.Errorf("volumetype %q: want replicate or replicate:N", s)
		}
		if len(f) == 2 {
			n, err := num("replica count", f[1])
			if err != nil {
				return d, err
			}
			if n > 3 {
				return d, fmt.Errorf("volumetype %q: heketi allows at most 3 replicas", s)
			}
			d.Replicate.Replica = n
		}
	case "disperse":
		if len(f) != 3 {
			return d, fmt.Errorf("volumetype %q: want disperse:DATA:REDUNDANCY, such as disperse:4:2", s)
		}
		data, err := num("data count", f[1])
		if err != nil {
			return d, err
		}
		red, err := num("redundancy count", f[2])
		if err != nil {
			return d, err
		}
		switch [2]int{data, red} {
		case [2]int{2, 1}, [2]int{4, 2}, [2]int{8, 3}, [2]int{8, 4}:
		default:
			return d, fmt.Errorf("volumetype %q: heketi allows disperse 2:1, 4:2, 8:3 and 8:4 only", s)
		}
		d.Type = api.DurabilityEC
		d.Disperse.Data, d.Disperse.Redundancy = data, red
	case "none":
		if len(f) != 1 {
			return d, fmt.Errorf("volumetype %q: none takes no counts", s)
		}
		d.Type = api.DurabilityDistributeOnly
	default:
		return d, fmt.Errorf("volumetype %q: want replicate[:N], disperse:D:R or none", s)
	}
	return d, nil
}

// parseGid parses a group id heketi accepts: 0 (none) up to 2^31-2.
func parseGid(s string) (int64, error) {
	g, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("gid %q is not an integer", s)
	}
	return g, checkGid(g)
}

func checkGid(g int64) error {
	if g < 0 || g >= math.MaxInt32 {
		return fmt.Errorf("gid %d is out of heketi's range 0..%d", g, math.MaxInt32-1)
	}
	return nil
}

// parseSnapFactor parses the thin pool snapshot factor: 0 disables
// snapshots, else 1..100.
func parseSnapFactor(s string) (float32, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
	if err != nil {
		return 0, fmt.Errorf("snapfactor %q is not a number", s)
	}
	return float32(f), checkSnapFactor(float32(f))
}

func checkSnapFactor(f float32) error {
	if f != 0 && (f < 1 || f > 100) {
		return fmt.Errorf("snapfactor %v is outside 1..100 (0 disables snapshots)", f)
	}
	return nil
}

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkVolumeOptions(opts []string) error {
	for _, o := range opts {
		if len(strings.Fields(o)) < 2 {
			return fmt.Errorf("volume option %q is not \"key value\", such as \"performance.cache-size 64MB\"", o)
		}
	}
	return nil
}

func isHeketiID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func checkClusters(ids []string) error {
	for _, id := range ids {
		if !isHeketiID(id) {
			return fmt.Errorf("cluster id %q is not a heketi id (32 hex digits)", id)
		}
	}
	return nil
}

// OptionsFromParams converts string parameters (a StorageClass's) to
// Options. Unknown or malformed parameters are errors of kind
// InvalidArgument.
func OptionsFromParams(params map[string]string) (*Options, error) {
	const op = "heketi options"
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := &Options{}
	for _, k := range keys {
		v := params[k]
		if !openParams[k] {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "unknown parameter %q (known: %s)", k, knownParams())
		}
		var err error
		switch k {
		case ParamRESTURL:
			o.URL = strings.TrimSpace(v)
		case ParamRESTUser:
			o.User = strings.TrimSpace(v)
		case ParamRESTUserKey:
			o.Key = v
		case ParamClusterID:
			o.Clusters = splitList(v)
		case ParamVolumeType:
			o.Durability = v
		case ParamGid:
			o.Gid, err = parseGid(v)
		case ParamVolumeOptions:
			o.VolumeOptions = splitList(v)
		case ParamSnapFactor:
			o.SnapshotFactor, err = parseSnapFactor(v)
		case ParamTLSInsecure:
			o.TLS.InsecureSkipVerify, err = strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				err = fmt.Errorf("tlsinsecure %q is not a boolean", v)
			}
		case ParamTLSCAFile:
			o.TLS.CAFile = strings.TrimSpace(v)
		case ParamDeepDirPrefix:
			o.DeepDirPrefix = v
		case ParamRetryMaxAttempts:
			o.RetryMaxAttempts, err = strconv.Atoi(strings.TrimSpace(v))
		case ParamRetryMinDelay:
			o.RetryMinDelay, err = time.ParseDuration(strings.TrimSpace(v))
		case ParamRetryMaxDelay:
			o.RetryMaxDelay, err = time.ParseDuration(strings.TrimSpace(v))
		}
		if err != nil {
			return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", err)
		}
	}
	return o, nil
}

func knownParams() string {
	ks := make([]string, 0, len(openParams))
	for k := range openParams {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// volumeSettings are the heketi settings of one new volume.
type volumeSettings struct {
	durability api.VolumeDurabilityInfo
	clusters   []string
	gid        int64
	options    []string
	snapFactor float32
}

// settingsFor applies a request's Parameters and Owner over the backend's
// defaults.
func (b *Backend) settingsFor(params map[string]string, owner *backend.Ownership) (volumeSettings, error) {
	s := volumeSettings{
		durability: b.durability,
		clusters:   b.opts.Clusters,
		gid:        b.opts.Gid,
		options:    b.opts.VolumeOptions,
		snapFactor: b.opts.SnapshotFactor,
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		if !perVolumeParams[k] {
			if openParams[k] {
				return s, fmt.Errorf("parameter %q cannot be set per subvolume, only when the backend is opened", k)
			}
			return s, fmt.Errorf("unknown parameter %q (per subvolume: clusterid, gid, snapfactor, volumeoptions, volumetype)", k)
		}
		var err error
		switch k {
		case ParamVolumeType:
			s.durability, err = parseVolumeType(v)
		case ParamGid:
			s.gid, err = parseGid(v)
		case ParamSnapFactor:
			s.snapFactor, err = parseSnapFactor(v)
		case ParamVolumeOptions:
			s.options = splitList(v)
			err = checkVolumeOptions(s.options)
		case ParamClusterID:
			s.clusters = splitList(v)
			if err = checkClusters(s.clusters); err == nil && b.clusterSet != nil {
				for _, c := range s.clusters {
					if !b.clusterSet[c] {
						err = fmt.Errorf("cluster %s is not one of the backend's clusters %v", c, b.opts.Clusters)
						break
					}
				}
			}
		}
		if err != nil {
			return s, err
		}
	}
	gid, err := ownerGid(owner, s.gid)
	if err != nil {
		return s, err
	}
	s.gid = gid
	return s, nil
}

// ownerGid maps an Ownership onto what heketi can do: bricks belong to
// root, and a non-zero gid makes heketi chown the brick root to that group
// with mode 2775.
func ownerGid(o *backend.Ownership, gid int64) (int64, error) {
	if o == nil {
		return gid, nil
	}
	if o.UID != -1 && o.UID != 0 {
		return 0, fmt.Errorf("heketi cannot set the owner uid %d: a heketi volume's root belongs to root; use a gid", o.UID)
	}
	if o.GID >= 0 {
		gid = int64(o.GID)
		if err := checkGid(gid); err != nil {
			return 0, err
		}
	}
	if m := o.Mode & 0o7777; m != 0 && !(gid != 0 && m == heketiGidMode) {
		return 0, fmt.Errorf("heketi cannot set mode %#o: it sets mode %#o together with a non-zero gid, and nothing else", m, heketiGidMode)
	}
	return gid, nil
}

// heketiGidMode is the mode heketi gives a brick root with a gid
// (executors/cmdexec/brick.go: chmod 2775).
const heketiGidMode = 0o2775

func (s volumeSettings) request(name string, gib int) *api.VolumeCreateRequest {
	r := &api.VolumeCreateRequest{
		Size:                 gib,
		Name:                 name,
		Clusters:             s.clusters,
		Durability:           s.durability,
		Gid:                  s.gid,
		GlusterVolumeOptions: s.options,
	}
	if s.snapFactor != 0 {
		r.Snapshot.Enable = true
		r.Snapshot.Factor = s.snapFactor
	}
	return r
}
