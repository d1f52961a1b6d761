package fsutil

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	Device     string // "major:minor" of the mounted file system
	MountPoint string
	FSType     string
	Source     string
}

// ReadMountinfo parses /proc/self/mountinfo in kernel order (oldest
// first; the last entry for a mount point is the visible one).
func ReadMountinfo() ([]MountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []MountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if e, ok := ParseMountinfoLine(sc.Text()); ok {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// ParseMountinfoLine parses one mountinfo line, such as
// "36 35 0:40 / /mnt/a\040b rw,relatime - fuse.glusterfs h:/vol rw".
func ParseMountinfoLine(line string) (MountEntry, bool) {
	sep := strings.Index(line, " - ")
	if sep < 0 {
		return MountEntry{}, false
	}
	left := strings.Fields(line[:sep])
	right := strings.Fields(line[sep+3:])
	if len(left) < 5 || len(right) < 2 {
		return MountEntry{}, false
	}
	return MountEntry{
		Device:     left[2],
		MountPoint: unescapeMount(left[4]),
		FSType:     right[0],
		Source:     unescapeMount(right[1]),
	}, true
}

// unescapeMount decodes the \ooo octal escapes of mountinfo fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
