package mount

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// glusterFSType is the filesystem type a GlusterFS FUSE mount, and every bind
// mount of one, has in /proc/self/mountinfo.
const glusterFSType = "fuse.glusterfs"

// mountEntry is one line of /proc/self/mountinfo (see proc(5)).
type mountEntry struct {
	ID, Parent   int
	Major, Minor int
	// Root is the directory of the filesystem that the mount shows: "/"
	// for a whole-filesystem mount, the subdirectory for a bind mount of
	// one.
	Root string
	// MountPoint is the mount point, octal escapes decoded.
	MountPoint string
	// Options are the per-mount options ("rw" or "ro", relatime, ...).
	Options []string
	FSType  string
	// Source is the mount source ("host:/vol" for GlusterFS).
	Source string
}

// dev identifies the mounted filesystem: every bind mount of a FUSE mount has
// the same major:minor as the mount itself.
func (e *mountEntry) dev() [2]int { return [2]int{e.Major, e.Minor} }

// readOnly reports whether the mount itself is read-only.
func (e *mountEntry) readOnly() bool { return slices.Contains(e.Options, "ro") }

// isGluster reports whether the entry is a GlusterFS FUSE mount or a bind of one.
func (e *mountEntry) isGluster() bool { return e.FSType == glusterFSType }

// shows returns the volume path the mount shows, "/vol/dir": the path of the
// source (a deep mount's "host:/vol/dir") joined with the root (a bind mount's
// subdirectory). It returns "" for anything that is not GlusterFS.
func (e *mountEntry) shows() (host, volPath string) {
	if !e.isGluster() {
		return "", ""
	}
	i := strings.Index(e.Source, ":/")
	if i < 0 {
		return "", ""
	}
	return e.Source[:i], path.Join(e.Source[i+1:], e.Root)
}

// parseMountInfo parses the content of a mountinfo file.
func parseMountInfo(data []byte) ([]mountEntry, error) {
	var out []mountEntry
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := parseMountInfoLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseMountInfoLine parses
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfoLine(line string) (mountEntry, error) {
	var e mountEntry
	f := strings.Fields(line)
	sep := slices.Index(f, "-")
	if sep < 6 || len(f) < sep+3 {
		return e, fmt.Errorf("malformed: %q", line)
	}
	var err error
	if e.ID, err = strconv.Atoi(f[0]); err != nil {
		return e, fmt.Errorf("bad mount id %q", f[0])
	}
	if e.Parent, err = strconv.Atoi(f[1]); err != nil {
		return e, fmt.Errorf("bad parent id %q", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return e, fmt.Errorf("bad major:minor %q", f[2])
	}
	if e.Major, err = strconv.Atoi(maj); err != nil {
		return e, fmt.Errorf("bad major %q", maj)
	}
	if e.Minor, err = strconv.Atoi(min); err != nil {
		return e, fmt.Errorf("bad minor %q", min)
	}
	e.Root = unescapeOctal(f[3])
	e.MountPoint = unescapeOctal(f[4])
	e.Options = strings.Split(f[5], ",")
	e.FSType = unescapeOctal(f[sep+1])
	e.Source = unescapeOctal(f[sep+2])
	return e, nil
}

// unescapeOctal decodes the \NNN escapes the kernel uses for space, tab,
// newline and backslash in mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// readMountInfoFile reads a mountinfo file until two consecutive reads agree:
// the kernel produces it in pages, and a read that races with mount changes
// can skip or repeat lines.
func readMountInfoFile(name string) ([]mountEntry, error) {
	prev, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	for range 4 {
		cur, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(prev, cur) {
			break
		}
		prev = cur
	}
	return parseMountInfo(prev)
}

// table is a parsed mount table with the lookups the mounter needs.
type table []mountEntry

// at returns the entries mounted at mp, bottom first (the last is the one
// that is visible).
func (t table) at(mp string) []mountEntry {
	var out []mountEntry
	for _, e := range t {
		if e.MountPoint == mp {
			out = append(out, e)
		}
	}
	return out
}

// top returns the visible entry mounted at mp.
func (t table) top(mp string) (mountEntry, bool) {
	es := t.at(mp)
	if len(es) == 0 {
		return mountEntry{}, false
	}
	return es[len(es)-1], true
}

// sameDev returns the entries that show the filesystem of e, except those
// mounted at the mount points in skip.
func (t table) sameDev(e mountEntry, skip func(mp string) bool) []mountEntry {
	var out []mountEntry
	for _, o := range t {
		if o.dev() == e.dev() && !skip(o.MountPoint) {
			out = append(out, o)
		}
	}
	return out
}
