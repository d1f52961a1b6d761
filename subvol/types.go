package subvol

import (
	"maps"
	"slices"
	"time"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
)

// Subvol describes one subvolume: what a caller needs to account for it and
// what a mounter (package mount) needs to mount it. A Subvol is a value
// returned to the caller: changing it changes nothing on the backend.
type Subvol struct {
	// Name is the subvolume's name in the pool (unique per pool).
	Name string
	// ID is the backend's own identifier (a heketi volume id, a directory
	// path); equal to Name where the backend has no other.
	ID string
	// SizeBytes is the size (quota limit) after the backend's rounding.
	SizeBytes int64
	// Servers are the Gluster volfile servers, first the preferred one.
	Servers []string
	// Volume is the Gluster volume that holds the subvolume.
	Volume string
	// Path is the directory inside Volume, with a leading "/", or "" when
	// the subvolume is the whole volume (heketi, glusterd2).
	Path string
	// MountOptions are extra mount options the backend recommends (for
	// example heketi's backup-volfile-servers), without secrets.
	MountOptions map[string]string
	// Source is the name of the subvolume this one was cloned from, if any.
	Source string
	// SourceSnapshot is the name of the snapshot this one was restored
	// from, if any (see Pool.Restore).
	SourceSnapshot string
	// UID, GID and Mode are the owner and permission bits of the
	// subvolume's root directory, where the backend controls them; -1 and
	// 0 mean unknown.
	UID, GID int
	Mode     uint32
	// Created is when the subvolume was created, zero if unknown.
	Created time.Time
	// Labels are free-form key/value pairs stored with the subvolume.
	Labels map[string]string
	// State is "" for a live subvolume; Pool.ListAll also returns
	// "retained", "archived" and "broken" ones.
	State string
	// Usage is the subvolume's usage when it was asked for
	// (ListOptions.WithUsage), nil otherwise.
	Usage *quota.Usage
}

// Ownership sets the owner and permissions of a new subvolume's root
// directory. A nil *Ownership leaves the backend's default (root, 0o755 for
// directory backends).
type Ownership struct {
	UID  int    // owner user id, -1 to leave unchanged
	GID  int    // owner group id, -1 to leave unchanged
	Mode uint32 // permission bits (0o7777 mask), 0 for the default
}

// DeletePolicy says what Delete does with a subvolume's data.
type DeletePolicy int

const (
	// DeletePolicyDelete removes the data, then the quota limit.
	DeletePolicyDelete DeletePolicy = iota
	// DeletePolicyRetain removes the subvolume from the pool but keeps its
	// directory, data and limit.
	DeletePolicyRetain
	// DeletePolicyArchive moves the data to an archive location, out of the
	// pool's namespace.
	DeletePolicyArchive
)

// String returns "delete", "retain" or "archive".
func (p DeletePolicy) String() string { return backend.DeletePolicy(p).String() }

// ParseDeletePolicy reads "delete", "retain" or "archive" ("" is delete).
func ParseDeletePolicy(s string) (DeletePolicy, bool) {
	switch s {
	case "", "delete":
		return DeletePolicyDelete, true
	case "retain":
		return DeletePolicyRetain, true
	case "archive":
		return DeletePolicyArchive, true
	}
	return 0, false
}

// DeleteOptions tune Delete. A nil *DeleteOptions means DeletePolicyDelete.
type DeleteOptions struct {
	Policy DeletePolicy
}

// fromBackend converts a backend's description into the portable one. It
// copies slices and maps so that the caller cannot change the backend's state.
func fromBackend(b *backend.Subvol) *Subvol {
	if b == nil {
		return nil
	}
	return &Subvol{
		Name: b.Name, ID: b.ID, SizeBytes: b.SizeBytes,
		Servers: slices.Clone(b.Servers), Volume: b.Volume, Path: b.Path,
		MountOptions: maps.Clone(b.MountOptions), Source: b.Source, SourceSnapshot: b.SourceSnapshot,
		UID: b.UID, GID: b.GID, Mode: b.Mode, Created: b.Created,
		Labels: maps.Clone(b.Labels), State: b.State, Usage: cloneUsage(b.Usage),
	}
}

func cloneUsage(u *quota.Usage) *quota.Usage {
	if u == nil {
		return nil
	}
	c := *u
	return &c
}

func fromBackendAll(bs []*backend.Subvol) []*Subvol {
	out := make([]*Subvol, len(bs))
	for i, b := range bs {
		out[i] = fromBackend(b)
	}
	return out
}

func (o *Ownership) toBackend() *backend.Ownership {
	if o == nil {
		return nil
	}
	return &backend.Ownership{UID: o.UID, GID: o.GID, Mode: o.Mode}
}
