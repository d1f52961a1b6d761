package cli

import (
	"context"
	"strings"

	"github.com/subvolkit/subvolkit/internal/fsutil"
)

// copyTree copies the content of src into the existing directory dst,
// keeping file types, ownership, permission bits (setuid, setgid and sticky
// included), times, symlinks, device nodes and extended attributes, except
// Gluster's and subvolkit's own. Hard links inside src stay hard links and
// sparse files keep their holes. The copy runs under watchMount: a
// wedged client of the backend's mount, or one that lost a request of the
// copy, cannot hold it forever.
func (b *Backend) copyTree(ctx context.Context, src, dst string) error {
	return b.watchMount(ctx, func(alive func()) error {
		return fsutil.CopyTree(ctx, src, dst, &fsutil.CopyOptions{
			Owner: true, Xattrs: true, SkipXattr: skipXattr, Times: true, Special: true,
			Progress: func(fsutil.CopyProgress) { alive() },
		})
	})
}

// skipXattr reports whether an attribute is Gluster's or ours, never copied.
func skipXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.glusterfs.") || strings.HasPrefix(name, "trusted.gfid") ||
		strings.HasPrefix(name, "trusted.afr.") || strings.HasPrefix(name, "trusted.ec.") ||
		strings.HasPrefix(name, "trusted.subvolkit.") || strings.HasPrefix(name, "glusterfs.")
}
