package mount

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNodeMountStates(t *testing.T) {
	tab := table{
		{MountPoint: "/ok", FSType: glusterFSType, Source: "h:/v", Root: "/"},
		{MountPoint: "/stale", FSType: glusterFSType, Source: "h:/v/d", Root: "/"},
		{MountPoint: "/hung", FSType: glusterFSType, Source: "h:/v", Root: "/"},
		{MountPoint: "/bind", FSType: glusterFSType, Source: "h:/v", Root: "/d"},
		{MountPoint: "/gone", FSType: glusterFSType, Source: "h:/v", Root: "/"},
		{MountPoint: "/xfs", FSType: "xfs", Source: "/dev/sda", Root: "/"},
	}
	release := make(chan struct{})
	defer close(release)
	check := func(p string) error {
		switch p {
		case "/stale":
			return &os.PathError{Op: "statfs", Path: p, Err: syscall.ENOTCONN}
		case "/hung":
			<-release
		case "/gone":
			return &os.PathError{Op: "statfs", Path: p, Err: syscall.ENOENT}
		}
		return nil
	}
	start := time.Now()
	got := nodeMounts(context.Background(), tab, 100*time.Millisecond, check)
	assert.Less(t, time.Since(start), 2*time.Second, "a hung mount is bounded by the timeout")
	assert.Equal(t, []NodeMount{
		{MountPoint: "/ok", Source: "h:/v", State: MountOK},
		{MountPoint: "/stale", Source: "h:/v/d", State: MountStale},
		{MountPoint: "/hung", Source: "h:/v", State: MountUnresponsive},
		{MountPoint: "/bind", Source: "h:/v", Bind: true, State: MountOK},
		{MountPoint: "/gone", Source: "h:/v", State: MountError},
	}, got)
}

func TestNodeMountsReadsTheRealTable(t *testing.T) {
	_, err := NodeMounts(context.Background(), 0)
	assert.NoError(t, err)
}
