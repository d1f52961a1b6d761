package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
)

// markerXattr holds the owner marker on every subvolume directory the backend
// makes. trusted.* attributes need CAP_SYS_ADMIN to write, so the workloads
// that use a subvolume cannot forge or remove it.
const markerXattr = "trusted.subvolkit.v1"

// Subvolume states recorded in the marker.
const (
	stateCreating = "creating" // being built in the staging area: never handed out
	stateReady    = "ready"
	stateDeleting = "deleting" // left by older versions: limit being removed, data about to go
	stateRetained = "retained" // out of the pool, data and limit kept
	stateArchived = "archived" // out of the pool, data moved to the archive
	stateWarm     = "warm"     // complete, unnamed, a warm entry at the root: handed out by TakeWarm
)

// marker is the JSON stored in markerXattr.
type marker struct {
	State  string `json:"state"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Source string `json:"source,omitempty"`
	// Snapshot is the snapshot a restored subvolume was made from.
	Snapshot string            `json:"snapshot,omitempty"`
	Created  time.Time         `json:"created"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Pending is the size a Resize is setting (0: none). It is written
	// before the limit changes and cleared after, so a crash in between is
	// seen and completed by the next Resize or Reconcile.
	Pending int64 `json:"pending,omitempty"`
}

// maxMarker bounds the encoded marker: a brick's file system stores every
// extended attribute of an inode in one block (ext4: 4 KiB, shared with
// Gluster's own attributes), so larger labels are refused up front.
const maxMarker = 3072

var (
	errNoMarker = errors.New("no subvolkit owner marker")
	// errGone is a directory that went away between its lookup and the
	// read of its marker (renamed or removed by another process).
	errGone = errors.New("directory went away")
)

func readMarker(path string) (*marker, error) {
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Getxattr(path, markerXattr, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, syscall.ENODATA) {
			return nil, errNoMarker
		}
		if errors.Is(err, syscall.ENOENT) {
			return nil, errGone
		}
		if err != nil {
			return nil, &pathErr{"getxattr", path, err}
		}
		var m marker
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return nil, fmt.Errorf("%s: corrupt owner marker: %w", path, err)
		}
		return &m, nil
	}
}

func errMarkerTooBig(n int) error {
	return subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
		"labels too large: the owner marker would be %d bytes, at most %d fit in an extended attribute", n, maxMarker)
}

// checkMarker refuses a marker that cannot be stored.
func checkMarker(m *marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	if len(b) > maxMarker {
		return errMarkerTooBig(len(b))
	}
	return nil
}

func writeMarker(path string, m *marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMarker {
		return errMarkerTooBig(len(b))
	}
	if err := syscall.Setxattr(path, markerXattr, b, 0); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.E2BIG) || errors.Is(err, syscall.ERANGE) {
			return subvolkit.E(subvolkit.InvalidArgument, "", "", fmt.Errorf("labels too large for the owner marker: %w", &pathErr{"setxattr", path, err}))
		}
		return &pathErr{"setxattr", path, err}
	}
	return nil
}

// pathErr is an *os.PathError-like error that keeps the errno reachable.
type pathErr struct {
	op, path string
	err      error
}

func (e *pathErr) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathErr) Unwrap() error { return e.err }
