// Command flexvolume is a Kubernetes FlexVolume driver for GlusterFS
// subvolumes, compatible with gluster-subvol's glfs-subvol (driver
// "rht/glfs-subvol"): install it as
//
//	/usr/libexec/kubernetes/kubelet-plugins/volume/exec/rht~glfs-subvol/glfs-subvol
//
// See the README and package driver for its options, configuration and log.
package main

import (
	"os"

	"github.com/subvolkit/subvolkit/examples/flexvolume/driver"
)

func main() {
	os.Exit(driver.Main(os.Args[1:], os.Getenv, os.Stdout))
}
