package driver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/subvolkit/subvolkit/subvol"
)

// Option keys. The first three are the PersistentVolume's flexVolume
// options (glfs-subvol's); the others are added by kubelet.
const (
	OptCluster       = "cluster"
	OptVolume        = "volume"
	OptDir           = "dir"
	OptReadWrite     = "kubernetes.io/readwrite"
	OptPVOrVolume    = "kubernetes.io/pvOrVolumeName"
	optKubePrefix    = "kubernetes.io/"
	optSecretPrefix  = "kubernetes.io/secret/"
	maxDirLen        = 4096
	maxServerNameLen = 253
)

// Request is a validated mount request.
type Request struct {
	// Ignored are the option keys glfs-subvol ignores too (anything but
	// cluster, volume, dir and kubelet's kubernetes.io/*), for the log.
	Ignored []string
	// Servers are the volfile servers from the cluster option, the
	// primary first.
	Servers []string
	// Volume is the Gluster volume.
	Volume string
	// Dir is the directory inside the volume, relative ("00/01").
	Dir string
	// ReadOnly is set when kubelet asks for a read-only mount.
	ReadOnly bool
	// Name names the volume in messages: kubelet's pvOrVolumeName, or Dir.
	Name string
}

// Subvol returns the subvolume the request describes, for package mount.
func (r *Request) Subvol() *subvol.Subvol {
	return &subvol.Subvol{
		Name:    r.Name,
		ID:      r.Dir,
		Servers: slices.Clone(r.Servers),
		Volume:  r.Volume,
		Path:    "/" + r.Dir,
	}
}

// ParseOptions parses and validates the JSON options of a mount call. It
// accepts every definition glfs-subvol accepts, normalised (dir "/pvs/01",
// "./pvs/01/" or "pvs//01" is "pvs/01"; empty servers in cluster, such as
// a trailing ':', are dropped; other option keys are ignored; readwrite is
// read in any case) and refuses only what is unsafe: a dir that leaves the
// volume or names its root. Errors are written for the person who wrote the
// PersistentVolume.
func ParseOptions(raw string) (*Request, error) {
	var opts map[string]string
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&opts); err != nil {
		return nil, fmt.Errorf("options are not a JSON object of strings: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("options: unexpected data after the JSON object")
	}
	if opts == nil {
		return nil, fmt.Errorf("options: want a JSON object, got null")
	}
	var ignored []string
	for _, k := range sortedKeys(opts) {
		if k != OptCluster && k != OptVolume && k != OptDir && !strings.HasPrefix(k, optKubePrefix) {
			ignored = append(ignored, k)
		}
	}
	for _, k := range []string{OptCluster, OptVolume, OptDir} {
		if strings.TrimSpace(opts[k]) == "" {
			return nil, fmt.Errorf("missing option %q (%s)", k, optHelp[k])
		}
	}
	r := &Request{Volume: strings.TrimSpace(opts[OptVolume]), Ignored: ignored}
	var err error
	if r.Servers, err = parseCluster(opts[OptCluster]); err != nil {
		return nil, err
	}
	if !validVolume(r.Volume) {
		return nil, fmt.Errorf("option %q: %q is not a Gluster volume name (letters, digits, '_', '-' and '.')", OptVolume, r.Volume)
	}
	if r.Dir, err = ValidateDir(opts[OptDir]); err != nil {
		return nil, err
	}
	// kubelet sends "ro" or "rw"; glfs-subvol ignores the option. Any
	// case of "ro" is read-only, anything else read-write.
	r.ReadOnly = strings.EqualFold(strings.TrimSpace(opts[OptReadWrite]), "ro")
	r.Name = opts[OptPVOrVolume]
	if r.Name == "" {
		r.Name = r.Dir
	}
	return r, nil
}

var optHelp = map[string]string{
	OptCluster: "the Gluster servers separated by colons, the first one primary, like 192.168.173.15:192.168.173.16",
	OptVolume:  "the Gluster volume that holds the directories",
	OptDir:     "the directory inside the volume, like 00/01",
}

// parseCluster splits the cluster option into servers. Empty entries (a
// trailing or doubled ':') are dropped, as mount.glusterfs does with
// glfs-subvol's backup-volfile-servers.
func parseCluster(s string) ([]string, error) {
	var servers []string
	for part := range strings.SplitSeq(s, ":") {
		h := strings.TrimSpace(part)
		if h == "" {
			continue
		}
		if !validServer(h) {
			return nil, fmt.Errorf("option %q: %q is not a host name or IPv4 address", OptCluster, h)
		}
		if !slices.Contains(servers, h) {
			servers = append(servers, h)
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("option %q: %q names no server (%s)", OptCluster, s, optHelp[OptCluster])
	}
	return servers, nil
}

// ValidateDir checks the dir option and returns it normalised: relative
// to the volume's root, without "." elements, doubled or trailing slashes
// ("/pvs/01", "./pvs/01/" and "pvs//01" are all "pvs/01", the directory
// glfs-subvol's `mount --bind <volume mount>/<dir>` binds). It refuses only
// what is unsafe: ".." (which could leave the volume), the volume's root
// (every tenant's data), and characters mount options cannot carry.
func ValidateDir(dir string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("option %q: %q %s; want a directory of the volume, like 00/01", OptDir, dir, why)
	}
	switch {
	case dir == "":
		return "", fmt.Errorf("missing option %q (%s)", OptDir, optHelp[OptDir])
	case strings.ContainsAny(dir, "\x00\n\r"):
		return "", bad("contains a NUL or line break")
	case strings.Contains(dir, ","):
		return "", bad("contains a comma, which mount options cannot carry")
	case len(dir) > maxDirLen:
		return "", bad("is too long")
	}
	if slices.Contains(strings.Split(dir, "/"), "..") {
		return "", bad("contains \"..\", which could leave the volume")
	}
	clean := strings.TrimPrefix(path.Clean("/"+dir), "/")
	if clean == "" {
		return "", bad("names the volume's root, which holds every tenant's directory")
	}
	return clean, nil
}

// validServer reports whether h is a plausible host name or IPv4 address.
func validServer(h string) bool {
	if len(h) > maxServerNameLen || h[0] == '-' || h[0] == '.' {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// validVolume reports whether v is a plausible Gluster volume name.
func validVolume(v string) bool {
	if v == "" || v == "." || v == ".." || len(v) > 255 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// maskSecrets returns the options JSON with the values of kubelet's
// kubernetes.io/secret/* keys replaced, for the log. Input that does not
// parse, or holds no secret, is returned unchanged.
func maskSecrets(raw string) string {
	var opts map[string]any
	if json.Unmarshal([]byte(raw), &opts) != nil {
		if strings.Contains(raw, optSecretPrefix) {
			return "<options not logged: they mention secrets but do not parse>"
		}
		return raw
	}
	found := false
	for k := range opts {
		if strings.HasPrefix(k, optSecretPrefix) {
			opts[k] = "<masked>"
			found = true
		}
	}
	if !found {
		return raw
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(opts) != nil {
		return "<options not logged>"
	}
	return strings.TrimSpace(b.String())
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
