package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
)

// listAll lists everything of ours: subvolumes at the root in any state,
// the archive, and staging leftovers, sorted by ID (the path), which is
// also the page token.
func (b *Backend) listAll(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	var all []*backend.Subvol
	add := func(rel, name string, m *marker, st *syscall.Stat_t, state string) {
		sv := b.subvol(name, m, st)
		sv.ID, sv.Path, sv.State = volPath(rel), volPath(rel), state
		all = append(all, sv)
	}
	root, err := os.ReadDir(b.mnt)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	for _, e := range root {
		if err := ctx.Err(); err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		if !e.IsDir() || naming.ValidateSubvolName(e.Name()) != nil {
			continue
		}
		m, st, err := b.inspectListed(e.Name())
		if err != nil || m == nil {
			continue // foreign, or gone
		}
		state := ""
		switch m.State {
		case stateRetained:
			state = backend.StateRetained
		case stateArchived:
			state = backend.StateArchived
		case stateReady:
			if m.Pending != 0 {
				state = backend.StateBroken
			}
		default:
			state = backend.StateBroken
		}
		add(e.Name(), e.Name(), m, st, state)
	}
	for _, area := range []string{archiveDir, stagingDir} {
		ents, err := b.readArea(area)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			rel := area + "/" + e.Name()
			var st syscall.Stat_t
			if syscall.Lstat(filepath.Join(b.mnt, rel), &st) != nil {
				continue
			}
			m, err := readMarker(filepath.Join(b.mnt, rel))
			if err != nil && area == stagingDir && !errors.Is(err, errGone) {
				// A crash right after the mkdir leaves no marker yet:
				// the entry's name says whose it is.
				name, ok := entryName(e.Name())
				if !ok {
					continue
				}
				m, err = &marker{Name: name}, nil
			}
			if err != nil {
				continue
			}
			state := backend.StateArchived
			if area == stagingDir {
				state = backend.StateBroken
			}
			add(rel, m.Name, m, &st, state)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	page := &backend.ListPage{}
	for _, sv := range all {
		if sv.ID <= opts.PageToken {
			continue
		}
		if opts.MaxResults > 0 && len(page.Subvols) == opts.MaxResults {
			page.NextPageToken = page.Subvols[len(page.Subvols)-1].ID
			break
		}
		page.Subvols = append(page.Subvols, sv)
	}
	return page, nil
}
