package subvol

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
)

// MaxVolumeID is the longest volume ID VolumeID makes: CSI's limit on a
// volume ID that a CO must accept.
const MaxVolumeID = 128

// VolumeID returns "<pool>/<name>", an ID that names a subvolume among
// several pools with nothing else (as a CSI volume ID must). pool follows
// the rules of subvolume names. An invalid pool or name, or an ID longer
// than MaxVolumeID bytes, is InvalidArgument.
func VolumeID(pool, name string) (string, error) {
	const op = "volume id"
	if err := naming.ValidateSubvolName(pool); err != nil {
		return "", subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("pool: %w", err))
	}
	if err := naming.ValidateSubvolName(name); err != nil {
		return "", subvolkit.WithOp(op, name, err)
	}
	id := pool + "/" + name
	if len(id) > MaxVolumeID {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, name,
			"volume id %q is %d bytes long, more than %d", id, len(id), MaxVolumeID)
	}
	return id, nil
}

// ParseVolumeID splits an ID made by VolumeID into its pool and name. A
// malformed ID is InvalidArgument.
func ParseVolumeID(id string) (pool, name string, err error) {
	const op = "parse volume id"
	pool, name, ok := strings.Cut(id, "/")
	if !ok || len(id) > MaxVolumeID || naming.ValidateSubvolName(pool) != nil || naming.ValidateSubvolName(name) != nil {
		return "", "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "malformed volume id %q: want <pool>/<subvolume name>, at most %d bytes", id, MaxVolumeID)
	}
	return pool, name, nil
}

// Volume context keys. Every key starts with "subvolkit.io/", so that the
// keys a CO adds to a CSI volume context (such as csi.storage.k8s.io/pod.name)
// never collide with them.
const (
	CtxName         = "subvolkit.io/name"
	CtxID           = "subvolkit.io/id"
	CtxVolume       = "subvolkit.io/volume"
	CtxServers      = "subvolkit.io/servers"
	CtxPath         = "subvolkit.io/path"
	CtxMountOptions = "subvolkit.io/mount-options"
	CtxSize         = "subvolkit.io/size"
	CtxCreated      = "subvolkit.io/created"
)

// VolumeContext returns what a node needs to mount sv, as string pairs (a
// CSI volume context): name, ID, volume, servers, path, size, creation time
// and the backend's mount options. FromVolumeContext reads it back. It holds
// no secrets.
func (sv *Subvol) VolumeContext() map[string]string {
	c := map[string]string{
		CtxName:    sv.Name,
		CtxVolume:  sv.Volume,
		CtxServers: strings.Join(sv.Servers, ","),
		CtxPath:    sv.Path,
		CtxSize:    strconv.FormatInt(sv.SizeBytes, 10),
	}
	if sv.ID != "" && sv.ID != sv.Name {
		c[CtxID] = sv.ID
	}
	if !sv.Created.IsZero() {
		c[CtxCreated] = sv.Created.UTC().Format(time.RFC3339Nano)
	}
	if len(sv.MountOptions) > 0 {
		var opts []string
		for _, k := range slices.Sorted(maps.Keys(sv.MountOptions)) {
			if v := sv.MountOptions[k]; v != "" {
				opts = append(opts, k+"="+v)
			} else {
				opts = append(opts, k)
			}
		}
		c[CtxMountOptions] = strings.Join(opts, ",")
	}
	return c
}

// FromVolumeContext rebuilds the Subvol that VolumeContext described, with
// what a mounter needs (package mount). Keys without the "subvolkit.io/"
// prefix are ignored. A missing or malformed key is InvalidArgument.
func FromVolumeContext(c map[string]string) (*Subvol, error) {
	const op = "volume context"
	name := c[CtxName]
	if err := naming.ValidateSubvolName(name); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("key %s: %w", CtxName, err))
	}
	bad := func(key, format string, args ...any) error {
		return subvolkit.E(subvolkit.InvalidArgument, op, name, fmt.Errorf("key %s: "+format, append([]any{key}, args...)...))
	}
	sv := &Subvol{Name: name, ID: c[CtxID], Volume: c[CtxVolume], Path: c[CtxPath], UID: -1, GID: -1}
	if sv.ID == "" {
		sv.ID = name
	}
	if sv.Volume == "" || strings.ContainsAny(sv.Volume, "/ ,\x00") {
		return nil, bad(CtxVolume, "%q is not a volume name", sv.Volume)
	}
	if sv.Path != "" && (!strings.HasPrefix(sv.Path, "/") || strings.Contains(sv.Path, "..") || strings.ContainsRune(sv.Path, 0)) {
		return nil, bad(CtxPath, "%q is not an absolute path inside the volume", sv.Path)
	}
	for s := range strings.SplitSeq(c[CtxServers], ",") {
		if s = strings.TrimSpace(s); s != "" {
			sv.Servers = append(sv.Servers, s)
		}
	}
	if len(sv.Servers) == 0 {
		return nil, bad(CtxServers, "no servers")
	}
	if v, ok := c[CtxSize]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, bad(CtxSize, "%q is not a size in bytes", v)
		}
		sv.SizeBytes = n
	}
	if v, ok := c[CtxCreated]; ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, bad(CtxCreated, "%q is not an RFC 3339 time", v)
		}
		sv.Created = t
	}
	if v := c[CtxMountOptions]; v != "" {
		sv.MountOptions = map[string]string{}
		for o := range strings.SplitSeq(v, ",") {
			k, val, _ := strings.Cut(o, "=")
			if k == "" {
				return nil, bad(CtxMountOptions, "empty option in %q", v)
			}
			sv.MountOptions[k] = val
		}
	}
	return sv, nil
}
