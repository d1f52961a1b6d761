package mount

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strings"

	mountutils "k8s.io/mount-utils"
)

// listTable builds a mount table from an Interface's List, for mount-utils'
// FakeMounter. List gives no
// device numbers or roots, so they are inferred: each glusterfs mount gets
// its own device, and a mount whose source is a directory inside a glusterfs
// mount (a bind) gets that mount's device, source and the directory as root.
// Options are kept as List reports them ("ro" where present).
func listTable(iface mountutils.Interface) (table, error) {
	mps, err := iface.List()
	if err != nil {
		return nil, err
	}
	t := make(table, 0, len(mps))
	seen := map[string]int{}
	for i, mp := range mps {
		// A device number that stays the same while other mounts come
		// and go: from the mount point, source and how many mounts of
		// both are stacked below.
		id := mp.Path + "\x00" + mp.Device
		h := fnv.New32a()
		fmt.Fprintf(h, "%s\x00%d", id, seen[id])
		seen[id]++
		e := mountEntry{
			ID: i + 1, Major: 1000, Minor: int(h.Sum32() >> 1),
			Root: "/", MountPoint: filepath.Clean(mp.Path), FSType: mp.Type, Source: mp.Device,
			Options: []string{"rw"},
		}
		if slices.Contains(mp.Opts, "ro") {
			e.Options = []string{"ro"}
		}
		switch {
		case mp.Type == "glusterfs" || mp.Type == glusterFSType:
			e.FSType = glusterFSType
		case mp.Type == "" && !filepath.IsAbs(mp.Device):
			// FakeMounter replaces the source of a bind of a whole mount
			// point with that mount's source.
			for j := len(t) - 1; j >= 0; j-- {
				if t[j].isGluster() && t[j].Root == "/" && t[j].Source == mp.Device {
					e.Major, e.Minor, e.FSType = t[j].Major, t[j].Minor, glusterFSType
					break
				}
			}
		case filepath.IsAbs(mp.Device):
			// A bind: find the deepest glusterfs mount holding the source.
			best := -1
			for j := range t {
				if !t[j].isGluster() || t[j].Root != "/" {
					continue
				}
				if mountutils.PathWithinBase(mp.Device, t[j].MountPoint) &&
					(best < 0 || len(t[j].MountPoint) > len(t[best].MountPoint)) {
					best = j
				}
			}
			if best >= 0 {
				base := t[best]
				rel := strings.TrimPrefix(filepath.Clean(mp.Device), base.MountPoint)
				if rel == "" {
					rel = "/"
				}
				e.Major, e.Minor, e.FSType, e.Source, e.Root = base.Major, base.Minor, glusterFSType, base.Source, rel
			}
		}
		t = append(t, e)
	}
	return t, nil
}
