package heketi

import (
	"strings"

	"github.com/subvolkit/subvolkit/naming"
)

// Subvolume names may hold '.', heketi volume names may not
// (^[a-zA-Z0-9_-]+$). A subvolume name without '.' is its heketi volume
// name. One with '.' is stored as '_' followed by the name with '_'
// written "__" and '.' written "_d": "my.data_1" is "_my_ddata__1". No
// subvolume name starts with '_', so the two forms never meet, and the
// mapping is one-to-one.

// heketiName returns the heketi volume name of a subvolume name.
func heketiName(name string) string {
	if !strings.Contains(name, ".") {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	b.WriteByte('_')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '_':
			b.WriteString("__")
		case '.':
			b.WriteString("_d")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// subvolName returns the subvolume name of a heketi volume name. A name
// that is not in heketiName's escaped form (a volume made by other means,
// such as "_scratch") is its own subvolume name.
func subvolName(h string) string {
	if !strings.HasPrefix(h, "_") {
		return h
	}
	var b strings.Builder
	for i := 1; i < len(h); i++ {
		c := h[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(h) {
			return h
		}
		i++
		switch h[i] {
		case '_':
			b.WriteByte('_')
		case 'd':
			b.WriteByte('.')
		default:
			return h
		}
	}
	name := b.String()
	if naming.ValidateSubvolName(name) != nil || heketiName(name) != h {
		return h
	}
	return name
}

// splitName reads the name heketi reports for a volume. A real heketi
// reports the Gluster volume's name. A heketi-compatible server that hands
// out directories of one volume reports the deep path "<volume>/<dir>"
// (the in-tree provisioner mounts "<host>:<name>"); where it stores a heketi
// name under a prefix (Options.DeepDirPrefix), dir is prefix + heketi name.
// splitName returns the Gluster volume, the path inside it ("" or "/<dir>")
// and the heketi name the volume was created with.
func splitName(reported, prefix string) (volume, path, hname string) {
	i := strings.Index(reported, "/")
	if i < 0 {
		return reported, "", reported
	}
	volume, path = reported[:i], reported[i:]
	hname = reported[strings.LastIndex(reported, "/")+1:]
	if prefix == "" {
		return volume, path, hname
	}
	if rest, ok := strings.CutPrefix(hname, prefix); ok && rest != "" && !strings.Contains(rest, ".") {
		hname = rest
	}
	return volume, path, hname
}
