package memory

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

var _ backend.Reconciler = (*Backend)(nil)

// Reconcile implements backend.Reconciler. What applies to an in-process
// backend: data of deleted subvolumes a failed removal left in Dir's trash,
// archives past opts.ArchiveRetention (by their modification time), and
// subvolume directories that went missing behind the backend's back
// (reported only). Without Dir there is nothing to find.
func (b *Backend) Reconcile(ctx context.Context, opts *backend.ReconcileOptions) (*backend.ReconcileReport, error) {
	const op = "reconcile"
	if opts == nil {
		opts = &backend.ReconcileOptions{}
	}
	if err := b.lock(ctx, op, ""); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep := &backend.ReconcileReport{}
	var errs *multierror.Error
	var missing []string
	for name := range b.subvols {
		rep.Scanned++
		if b.dir != "" {
			if _, err := os.Stat(b.path(name)); os.IsNotExist(err) {
				missing = append(missing, name)
			}
		}
	}
	b.unlock()
	for _, name := range missing {
		rep.Items = append(rep.Items, backend.ReconcileItem{Problem: backend.ProblemLimitMismatch, Name: name,
			Path: b.path(name), Detail: "directory missing"})
	}
	if b.dir == "" {
		rep.Duration = time.Since(t0)
		return rep, nil
	}
	for _, area := range []string{trashDir, archiveDir} {
		ents, err := os.ReadDir(filepath.Join(b.dir, area))
		if err != nil && !os.IsNotExist(err) {
			errs = multierror.Append(errs, fsErr(op, "", err))
			continue
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return rep, subvolkit.E(subvolkit.Canceled, op, "", err)
			}
			rep.Scanned++
			p := filepath.Join(b.dir, area, e.Name())
			name := e.Name()
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				name = name[:i]
			}
			it := backend.ReconcileItem{Problem: backend.ProblemTrash, Name: name, Path: p, Detail: "deleted, data not removed"}
			if area == archiveDir {
				info, err := e.Info()
				if err != nil || opts.ArchiveRetention <= 0 || time.Since(info.ModTime()) <= opts.ArchiveRetention {
					continue
				}
				it.Problem, it.Detail = backend.ProblemArchiveExpired, "archive past its retention"
			}
			if opts.Repair {
				if err := os.RemoveAll(p); err != nil {
					errs = multierror.Append(errs, fsErr(op, name, err))
				} else {
					it.Repaired = true
				}
			}
			rep.Items = append(rep.Items, it)
		}
	}
	rep.Duration = time.Since(t0)
	return rep, errs.ErrorOrNil()
}
