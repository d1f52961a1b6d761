package mount_test

import (
	"fmt"

	"github.com/subvolkit/subvolkit/mount"
	"github.com/subvolkit/subvolkit/subvol"
)

// Source is what `mount -t glusterfs` takes for a subvolume: a directory of
// a volume (the cli backend) deep-mounts as server:/volume/dir, a whole
// volume (heketi, glusterd2) as server:/volume.
func ExampleSource() {
	dir := &subvol.Subvol{Name: "pvc-1", Volume: "gv0", Path: "/pvc-1", Servers: []string{"gfs1", "gfs2"}}
	whole := &subvol.Subvol{Name: "vol_7", Volume: "vol_7", Path: "", Servers: []string{"gfs2"}}
	fmt.Println(mount.Source(dir, dir.Servers[0]))
	fmt.Println(mount.Source(dir, "gfs2"))
	fmt.Println(mount.Source(whole, whole.Servers[0]))
	// Output:
	// gfs1:/gv0/pvc-1
	// gfs2:/gv0/pvc-1
	// gfs2:/vol_7
}
