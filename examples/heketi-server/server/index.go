package server

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"
)

// index maps heketi ids to subvolume names. It is a cache of what the
// subvolumes' labels say, never the truth: every hit is checked with
// Pool.Get, and a miss re-reads the whole list from the volume (once for any
// number of concurrent misses), so volumes made or removed by another
// server, or by other programs, are seen at once. It is safe for concurrent
// use.
type index struct {
	pool *subvol.Pool
	log  *slog.Logger

	mu   sync.Mutex
	byID map[string]string
	last []*subvol.Subvol // the latest List's subvolumes with a heketi id

	listMu    sync.Mutex // one List at a time
	lastStart time.Time  // when the latest List began
	lastDone  time.Time  // when the latest successful List ended (under mu)
}

func (x *index) get(id string) (string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	dir, ok := x.byID[id]
	return dir, ok
}

func (x *index) put(id, dir string) {
	x.mu.Lock()
	x.byID[id] = dir
	x.mu.Unlock()
}

func (x *index) remove(id string) {
	x.mu.Lock()
	delete(x.byID, id)
	x.mu.Unlock()
}

// list reads every subvolume the server made (those with a heketi id
// label) from the volume and rebuilds the map from them.
func (x *index) list(ctx context.Context) ([]*subvol.Subvol, error) {
	x.listMu.Lock()
	defer x.listMu.Unlock()
	return x.listLocked(ctx)
}

func (x *index) listLocked(ctx context.Context) ([]*subvol.Subvol, error) {
	x.lastStart = time.Now()
	all, err := x.pool.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]string, len(all))
	var ours []*subvol.Subvol
	for _, sv := range all {
		id := sv.Labels[LabelID]
		if id == "" {
			continue // not made through this API
		}
		if other, dup := byID[id]; dup {
			// A copied owner marker, say. Answer for the first
			// (List is sorted by name) and say so.
			x.log.Warn("two subvolumes carry the same heketi id; the second is ignored", "id", id, "first", other, "second", sv.Name)
			continue
		}
		byID[id] = sv.Name
		ours = append(ours, sv)
	}
	x.mu.Lock()
	x.byID = byID
	x.last = ours
	x.lastDone = time.Now()
	x.mu.Unlock()
	return ours, nil
}

// recentList returns the subvolumes of the latest List if it ended less
// than maxAge ago, else those of a new List. Unlike recentIDs it does not
// follow this server's own creates and deletes since that List.
func (x *index) recentList(ctx context.Context, maxAge time.Duration) ([]*subvol.Subvol, error) {
	x.mu.Lock()
	if time.Since(x.lastDone) < maxAge {
		out := x.last
		x.mu.Unlock()
		return out, nil
	}
	x.mu.Unlock()
	return x.list(ctx)
}

// recentIDs returns the ids of the volumes, from the map if a List ended
// less than maxAge ago (the map also follows this server's own creates and
// deletes), else from a new List. Listing reads every subvolume's marker
// (about 1 ms each through FUSE), too slow for a call the in-tree
// provisioner makes on every create just to learn the nodes.
func (x *index) recentIDs(ctx context.Context, maxAge time.Duration) ([]string, error) {
	x.mu.Lock()
	if time.Since(x.lastDone) < maxAge {
		out := make([]string, 0, len(x.byID))
		for id := range x.byID {
			out = append(out, id)
		}
		x.mu.Unlock()
		slices.Sort(out)
		return out, nil
	}
	x.mu.Unlock()
	svs, err := x.list(ctx)
	if err != nil {
		return nil, err
	}
	return ids(svs), nil
}

// resolve returns the subvolume whose heketi id is id, or an error of kind
// NotFound.
func (x *index) resolve(ctx context.Context, id string) (*subvol.Subvol, error) {
	asked := time.Now()
	if sv, err := x.lookup(ctx, id); sv != nil || err != nil {
		return sv, err
	}
	// A miss: re-read the volume, unless a List that began after this
	// request did already.
	x.listMu.Lock()
	if !x.lastStart.After(asked) {
		if _, err := x.listLocked(ctx); err != nil {
			x.listMu.Unlock()
			return nil, err
		}
	}
	x.listMu.Unlock()
	if sv, err := x.lookup(ctx, id); sv != nil || err != nil {
		return sv, err
	}
	return nil, subvolkit.Errorf(subvolkit.NotFound, "resolve", "", "no volume with id %s", id)
}

// lookup checks the cached directory of id against the volume. It returns
// (nil, nil) on a miss or a stale entry.
func (x *index) lookup(ctx context.Context, id string) (*subvol.Subvol, error) {
	dir, ok := x.get(id)
	if !ok {
		return nil, nil
	}
	sv, err := x.pool.Get(ctx, dir)
	switch {
	case err == nil && sv.Labels[LabelID] == id:
		return sv, nil
	case err == nil, subvolkit.KindOf(err) == subvolkit.NotFound:
		return nil, nil
	}
	return nil, err
}
