package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// markerXattr holds the owner marker on every subvolume directory the backend
// makes. trusted.* attributes need CAP_SYS_ADMIN to write, so the workloads
// that use a subvolume cannot forge or remove it.
const markerXattr = "trusted.subvolkit.v1"

// Subvolume states recorded in the marker.
const (
	stateCreating = "creating" // made, limit not yet verified: never handed out
	stateReady    = "ready"
	stateDeleting = "deleting" // limit being removed, data about to go
	stateRetained = "retained" // out of the pool, data and limit kept
	stateArchived = "archived" // out of the pool, data moved to the archive
)

// marker is the JSON stored in markerXattr.
type marker struct {
	State   string            `json:"state"`
	Name    string            `json:"name"`
	Size    int64             `json:"size"`
	Source  string            `json:"source,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

var errNoMarker = errors.New("no subvolkit owner marker")

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

func writeMarker(path string, m *marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := syscall.Setxattr(path, markerXattr, b, 0); err != nil {
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
