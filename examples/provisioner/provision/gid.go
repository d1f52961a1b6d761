package provision

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/subvolkit/subvolkit"
)

// AnnGID is the annotation kubelet reads to add a supplemental group to the
// pods that use a PV; the in-tree glusterfs provisioner set it too.
const AnnGID = "pv.beta.kubernetes.io/gid"

// gids hands out group ids unique across PVs. It is filled, before the first
// allocation, from every PV's AnnGID and from the groups of the subvolumes
// already in the pools (which covers a claim whose subvolume was made by a
// provisioner that died before it created the PV). Each reservation is held
// under the claim's UID until the PV exists or the provisioning fails for
// good, so concurrent claims never get the same id.
type gids struct {
	mu    sync.Mutex
	owner map[int]string // gid -> claim UID or PV name
}

func newGids() *gids { return &gids{owner: map[int]string{}} }

// mark records gid as used by owner (a PV's or a claim's name). It reports
// whether gid was free or already owner's.
func (g *gids) mark(gid int, owner string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if o, ok := g.owner[gid]; ok && o != owner {
		return false
	}
	g.owner[gid] = owner
	return true
}

// allocate reserves the lowest free gid in [min, max] for owner; a gid owner
// already holds in the range is returned again.
func (g *gids) allocate(min, max int, owner string) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for gid, o := range g.owner {
		if o == owner && gid >= min && gid <= max {
			return gid, nil
		}
	}
	for gid := min; gid <= max && gid >= min; gid++ { // gid >= min: no wrap at MaxInt32
		if _, used := g.owner[gid]; !used {
			g.owner[gid] = owner
			return gid, nil
		}
		if gid == max {
			break
		}
	}
	return 0, subvolkit.Errorf(subvolkit.QuotaExceeded, "", "", "no free gid in [%d, %d]", min, max)
}

// rename moves owner's reservation of gid to newOwner (claim UID -> PV name).
func (g *gids) rename(gid int, owner, newOwner string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner[gid] == owner {
		g.owner[gid] = newOwner
	}
}

// release frees gid if owner holds it.
func (g *gids) release(gid int, owner string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owner[gid] == owner {
		delete(g.owner, gid)
	}
}

// parseGIDAnnotation reads AnnGID (ok false when absent).
func parseGIDAnnotation(ann map[string]string) (int, bool, error) {
	s, ok := ann[AnnGID]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, true, fmt.Errorf("annotation %s=%q: %w", AnnGID, s, err)
	}
	return int(n), true, nil
}
