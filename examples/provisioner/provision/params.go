package provision

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/subvol"
)

// StorageClass parameter names. The first group is the in-tree
// kubernetes.io/glusterfs plugin's; keys are matched case-insensitively, as
// that plugin did.
const (
	ParamRESTURL            = "resturl"
	ParamRESTUser           = "restuser"
	ParamRESTUserKey        = "restuserkey"
	ParamSecretNamespace    = "secretnamespace"
	ParamSecretName         = "secretname"
	ParamClusterID          = "clusterid"
	ParamGidMin             = "gidmin"
	ParamGidMax             = "gidmax"
	ParamVolumeType         = "volumetype"
	ParamVolumeOptions      = "volumeoptions"
	ParamVolumeNamePrefix   = "volumenameprefix"
	ParamCustomEPNamePrefix = "customepnameprefix"
	ParamSnapFactor         = "snapfactor"

	ParamBackend  = "backend"
	ParamPool     = "pool"
	ParamVolume   = "volume"
	ParamServers  = "servers"
	ParamOnDelete = "ondelete"
	ParamPVType   = "pvtype"
	ParamWarm     = "warm" // cli backend: warm subvolumes, "1Gi:20,10Gi:5" (subvol.ParseWarmClasses)
)

// Backends the provisioner can open.
const (
	BackendCLI    = "cli"
	BackendHeketi = "heketi"
)

// PV source types.
const (
	PVTypeGlusterfs = "glusterfs"
	PVTypeFlex      = "flex"
	PVTypeCSI       = "csi"
)

// GID range defaults, as the in-tree provisioner's.
const (
	DefaultGidMin = 2000
	DefaultGidMax = math.MaxInt32
)

// heketiOnly are parameters only the heketi backend understands.
var heketiOnly = []string{ParamRESTURL, ParamRESTUser, ParamRESTUserKey, ParamSecretNamespace, ParamSecretName,
	ParamClusterID, ParamVolumeType, ParamVolumeOptions, ParamSnapFactor}

var known = append([]string{ParamGidMin, ParamGidMax, ParamVolumeNamePrefix, ParamCustomEPNamePrefix,
	ParamBackend, ParamPool, ParamVolume, ParamServers, ParamOnDelete, ParamPVType, ParamWarm}, heketiOnly...)

// classConfig is a parsed StorageClass.
type classConfig struct {
	ref          backendRef
	gidMin       int
	gidMax       int
	volumePrefix string // volumenameprefix
	epPrefix     string // customepnameprefix ("" = glusterfs-dynamic)
	onDelete     subvol.DeletePolicy
	pvType       string
	restUserKey  string // restuserkey given inline (deprecated in-tree, still read)
	warm         []subvol.WarmClass
}

// backendRef is everything needed to open a pool again, with nothing
// secret: it is stored in each PV's annotations so that a PV can be deleted
// after its StorageClass is gone.
type backendRef struct {
	Backend string `json:"backend"`
	// Params are the backend's non-secret parameters (backend.Open's).
	Params map[string]string `json:"params"`
	// Secret is "namespace/name" of a Secret whose "key" is the heketi
	// user's key, or "".
	Secret string `json:"secret,omitempty"`
	// Pool is the pool's name in CSI volume handles.
	Pool string `json:"pool,omitempty"`
}

func (r backendRef) key() string {
	b, _ := json.Marshal(r) // map keys are sorted by encoding/json
	return string(b)
}

func invalid(format string, args ...any) error {
	return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", format, args...)
}

var volumeTypeRe = regexp.MustCompile(`^(none|replicate(:[1-9][0-9]*)?|disperse:[1-9][0-9]*:[1-9][0-9]*)$`)

// parseClass reads a StorageClass's parameters. An unknown key, a bad value
// or a parameter the chosen backend cannot honour is InvalidArgument, so no
// subvolume is made for a class that does not mean what it says.
func parseClass(class string, params map[string]string) (*classConfig, error) {
	p := map[string]string{}
	for k, v := range params {
		lk := strings.ToLower(k)
		if !slices.Contains(known, lk) {
			return nil, invalid("StorageClass %q: unknown parameter %q (known: %s)", class, k, strings.Join(sortedCopy(known), ", "))
		}
		if _, dup := p[lk]; dup {
			return nil, invalid("StorageClass %q: parameter %q given twice", class, lk)
		}
		p[lk] = v
	}
	c := &classConfig{gidMin: DefaultGidMin, gidMax: DefaultGidMax, pvType: PVTypeGlusterfs}

	var err error
	if v, ok := p[ParamGidMin]; ok {
		if c.gidMin, err = parseGid(v); err != nil {
			return nil, invalid("StorageClass %q: gidMin %q: %v", class, v, err)
		}
	}
	if v, ok := p[ParamGidMax]; ok {
		if c.gidMax, err = parseGid(v); err != nil {
			return nil, invalid("StorageClass %q: gidMax %q: %v", class, v, err)
		}
	}
	if c.gidMin > c.gidMax {
		return nil, invalid("StorageClass %q: gidMin %d is greater than gidMax %d", class, c.gidMin, c.gidMax)
	}
	if v := p[ParamVolumeNamePrefix]; v != "" {
		if strings.Contains(v, "_") || len(v) > naming.MaxVolumePrefix || !naming.IsDNS1123Label(strings.ToLower(v)) {
			return nil, invalid("StorageClass %q: volumenameprefix %q must be 1 to %d letters, digits and '-' (no '_')", class, v, naming.MaxVolumePrefix)
		}
		c.volumePrefix = v
	}
	if v := p[ParamCustomEPNamePrefix]; v != "" {
		if len(v) > naming.MaxEndpointPrefix {
			return nil, invalid("StorageClass %q: customepnameprefix %q is %d characters, more than %d: with the claim's UID the Endpoints name would exceed 63", class, v, len(v), naming.MaxEndpointPrefix)
		}
		if err := naming.ValidateDNS1123Label(v); err != nil {
			return nil, invalid("StorageClass %q: customepnameprefix %q: %v", class, v, err)
		}
		c.epPrefix = v
	}
	if v, ok := p[ParamOnDelete]; ok {
		pol, ok := subvol.ParseDeletePolicy(strings.ToLower(v))
		if !ok {
			return nil, invalid("StorageClass %q: onDelete %q: want delete, retain or archive", class, v)
		}
		c.onDelete = pol
	}
	if v, ok := p[ParamPVType]; ok {
		switch strings.ToLower(v) {
		case PVTypeGlusterfs, PVTypeFlex, PVTypeCSI:
			c.pvType = strings.ToLower(v)
		default:
			return nil, invalid("StorageClass %q: pvType %q: want glusterfs, flex or csi", class, v)
		}
	}
	if v, ok := p[ParamWarm]; ok {
		if c.warm, err = subvol.ParseWarmClasses(v); err != nil {
			return nil, invalid("StorageClass %q: warm %q: %v", class, v, err)
		}
	}
	if v, ok := p[ParamVolumeType]; ok && !volumeTypeRe.MatchString(strings.ReplaceAll(v, " ", "")) {
		return nil, invalid("StorageClass %q: volumetype %q: want none, replicate[:N] or disperse:D:R", class, v)
	}
	if v, ok := p[ParamSnapFactor]; ok {
		f, err := strconv.ParseFloat(v, 32)
		if err != nil || f < 1 || f > 100 {
			return nil, invalid("StorageClass %q: snapfactor %q: want a number from 1 to 100", class, v)
		}
	}

	be := strings.ToLower(p[ParamBackend])
	if be == "" {
		be = BackendCLI
		if p[ParamRESTURL] != "" {
			be = BackendHeketi // an in-tree StorageClass carried over
		}
	}
	c.ref.Backend = be
	c.ref.Params = map[string]string{}
	switch be {
	case BackendCLI:
		for _, k := range heketiOnly {
			if _, ok := p[k]; ok {
				return nil, invalid("StorageClass %q: parameter %q applies to the heketi backend, not %q", class, k, be)
			}
		}
		vol := p[ParamVolume]
		if pool := p[ParamPool]; pool != "" {
			if vol != "" && vol != pool {
				return nil, invalid("StorageClass %q: pool %q and volume %q disagree", class, pool, vol)
			}
			vol = pool
		}
		if vol == "" {
			return nil, invalid("StorageClass %q: the cli backend needs a volume (or pool) parameter", class)
		}
		servers := splitList(p[ParamServers])
		if len(servers) == 0 {
			return nil, invalid("StorageClass %q: the cli backend needs servers (comma-separated)", class)
		}
		c.ref.Params["volume"] = vol
		c.ref.Params["servers"] = strings.Join(servers, ",")
		c.ref.Pool = vol
	case BackendHeketi:
		if p[ParamRESTURL] == "" {
			return nil, invalid("StorageClass %q: the heketi backend needs resturl", class)
		}
		for _, k := range []string{ParamVolume, ParamServers, ParamWarm} {
			if _, ok := p[k]; ok {
				return nil, invalid("StorageClass %q: parameter %q applies to the cli backend, not heketi (heketi picks servers and volumes)", class, k)
			}
		}
		for _, k := range []string{ParamRESTURL, ParamRESTUser, ParamClusterID, ParamVolumeType, ParamVolumeOptions, ParamSnapFactor} {
			if v, ok := p[k]; ok {
				c.ref.Params[k] = v
			}
		}
		ns, name := p[ParamSecretNamespace], p[ParamSecretName]
		if (ns == "") != (name == "") {
			return nil, invalid("StorageClass %q: secretNamespace and secretName go together", class)
		}
		if name != "" {
			c.ref.Secret = ns + "/" + name
		}
		c.restUserKey = p[ParamRESTUserKey]
		if c.restUserKey != "" && c.ref.Secret != "" {
			return nil, invalid("StorageClass %q: give restuserkey or secretName, not both", class)
		}
		c.ref.Pool = p[ParamPool]
		if c.ref.Pool == "" {
			c.ref.Pool = "heketi"
		}
	default:
		return nil, invalid("StorageClass %q: unknown backend %q: want %s or %s", class, be, BackendCLI, BackendHeketi)
	}
	if c.pvType == PVTypeFlex && be != BackendCLI {
		return nil, invalid("StorageClass %q: pvType flex needs subvolumes that are directories (backend cli)", class)
	}
	return c, nil
}

func parseGid(s string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < DefaultGidMin || n > DefaultGidMax {
		return 0, fmt.Errorf("outside [%d, %d]", DefaultGidMin, DefaultGidMax)
	}
	return int(n), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}
