package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

var _ backend.Reconciler = (*Backend)(nil)

// listAllLimits returns every row of `volume quota VOL list`.
func (g *glusterCLI) listAllLimits(ctx context.Context) ([]quotaLimit, error) {
	out, err := g.call(ctx, true, "volume", "quota", g.volume, "list")
	if err != nil {
		var ce *CLIError
		if errors.As(err, &ce) && strings.Contains(ce.Message, "No quota configured") {
			return nil, nil
		}
		return nil, err
	}
	if out.VolQuota == nil {
		return nil, nil
	}
	var ls []quotaLimit
	for _, x := range out.VolQuota.Limits {
		l, err := x.parse()
		if err != nil {
			return nil, subvolkit.E(subvolkit.Unknown, "", "", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// reconciler is one Reconcile run.
type reconciler struct {
	b      *Backend
	opts   *backend.ReconcileOptions
	rep    *backend.ReconcileReport
	errs   *multierror.Error
	claims map[string]bool // paths whose limits are expected
	// retained are the names of the retained subvolumes at the root.
	retained map[string]bool
}

func (r *reconciler) found(problem, name, path, detail string, repair func() error) {
	it := backend.ReconcileItem{Problem: problem, Name: name, Path: path, Detail: detail}
	if r.opts.Repair && repair != nil {
		if err := repair(); err != nil {
			r.errs = multierror.Append(r.errs, fmt.Errorf("repairing %s %s: %w", problem, name+" "+it.Path, kindOr(subvolkit.Unknown, err)))
		} else {
			it.Repaired = true
		}
	}
	r.rep.Items = append(r.rep.Items, it)
}

// Reconcile implements backend.Reconciler. Every repair of a name is done
// under that name's cluster-wide lock; a name locked by a running operation
// (in this or another process) is skipped, its staging entry left alone.
func (b *Backend) Reconcile(ctx context.Context, opts *backend.ReconcileOptions) (*backend.ReconcileReport, error) {
	if opts == nil {
		opts = &backend.ReconcileOptions{}
	}
	if err := b.checkOpen(ctx, "reconcile", ""); err != nil {
		return nil, err
	}
	t0 := time.Now()
	r := &reconciler{b: b, opts: opts, rep: &backend.ReconcileReport{}, claims: map[string]bool{}, retained: map[string]bool{}}
	steps := []func(context.Context) error{r.staging, r.root, r.archive, r.warm, r.trash, r.limits}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return r.rep, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		if err := step(ctx); err != nil {
			r.errs = multierror.Append(r.errs, err)
		}
	}
	r.rep.Duration = time.Since(t0)
	return r.rep, r.errs.ErrorOrNil()
}

// withName runs f under name's lock if nobody holds it; busy reports that
// someone does (a running operation: nothing to repair).
func (r *reconciler) withName(name string, f func() error) (busy bool, err error) {
	unlock, ok, err := r.b.locker.tryLock(name)
	if err != nil {
		return false, err
	}
	if !ok {
		return true, nil
	}
	defer unlock()
	return false, f()
}

// staging: every entry whose name is not locked is a crash's leftover.
func (r *reconciler) staging(ctx context.Context) error {
	b := r.b
	ents, err := b.readArea(stagingDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		r.rep.Scanned++
		rel := stagingDir + "/" + e.Name()
		name, ok := entryName(e.Name())
		if !ok {
			name = e.Name()
		}
		unlock, free, err := b.locker.tryLock(name)
		if err != nil {
			return err
		}
		if !free {
			r.claims[volPath(rel)] = true // being built right now
			continue
		}
		r.found(backend.ProblemHalfMade, name, volPath(rel), "staging leftover of an interrupted create or clone", func() error {
			return b.trash(ctx, rel, name)
		})
		unlock()
	}
	return nil
}

// root checks every directory at the volume's root.
func (r *reconciler) root(ctx context.Context) error {
	b := r.b
	ents, err := os.ReadDir(b.mnt)
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	for _, e := range ents {
		if ctx.Err() != nil {
			return subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
		}
		name := e.Name()
		if !e.IsDir() || naming.ValidateSubvolName(name) != nil {
			continue
		}
		r.rep.Scanned++
		busy, err := r.withName(name, func() error { return r.rootEntry(ctx, name) })
		if busy {
			r.claims[volPath(name)] = true
		}
		if err != nil {
			r.errs = multierror.Append(r.errs, fmt.Errorf("%s: %w", volPath(name), err))
		}
	}
	if r.opts.Repair {
		r.retainedIndex(ctx)
	}
	return nil
}

// retainedIndex brings the index of retained subvolumes (an internal cache
// of names-only List) in line with the markers: an entry for each retained
// subvolume, none for other names. It is no problem of the volume's, so it
// is not reported; a name in use is left for later.
func (r *reconciler) retainedIndex(ctx context.Context) {
	b := r.b
	idx, err := b.retainedIndex()
	if err != nil {
		r.errs = multierror.Append(r.errs, err)
		return
	}
	for name := range r.retained {
		if !idx[name] {
			_, _ = r.withName(name, func() error { return b.indexRetained(name) })
		}
	}
	for name := range idx {
		if r.retained[name] {
			continue
		}
		_, _ = r.withName(name, func() error {
			if m, err := readMarker(b.dir(name)); err == nil && m.State == stateRetained {
				return nil // retained meanwhile
			}
			b.unindexRetained(ctx, name)
			return nil
		})
	}
}

func (r *reconciler) rootEntry(ctx context.Context, name string) error {
	b := r.b
	path := volPath(name)
	m, _, err := b.inspect(name)
	switch {
	case err == nil && m == nil:
		return nil // gone meanwhile
	case errors.Is(err, errNoMarker):
		ents, rerr := os.ReadDir(b.dir(name))
		l, lerr := b.readLimit(ctx, name)
		hasLimit := lerr == nil && l.Hard >= 0
		if hasLimit {
			r.claims[path] = true // not ours to remove
		}
		if rerr == nil && len(ents) == 0 && lerr == nil && !hasLimit {
			r.found(backend.ProblemUnmarked, name, path, "empty directory without owner marker or limit (an interrupted create of an older version?)", func() error {
				if err := os.Remove(b.dir(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return subvolkit.E(subvolkit.Unavailable, "", "", err)
				}
				return nil
			})
			return nil
		}
		r.found(backend.ProblemUnmarked, name, path, "directory without owner marker, not empty or limited: left alone", nil)
		return nil
	case err != nil:
		return err
	}
	switch m.State {
	case stateCreating:
		r.found(backend.ProblemHalfMade, name, path, "\"creating\" directory of an older version", func() error { return b.trash(ctx, name, name) })
		return nil
	case stateDeleting:
		r.found(backend.ProblemHalfDeleted, name, path, "\"deleting\" directory of an older version", func() error { return b.trash(ctx, name, name) })
		return nil
	case stateArchived:
		r.found(backend.ProblemHalfDeleted, name, path, "archive interrupted before the move", func() error { return b.archive(ctx, name, m) })
		return nil
	}
	// ready or retained: the limit must match the record.
	r.claims[path] = true
	if m.State == stateRetained {
		r.retained[name] = true
	}
	l, err := b.readLimit(ctx, name)
	if err != nil {
		return err
	}
	if m.State == stateReady && m.Pending != 0 {
		r.found(backend.ProblemResizePending, name, path,
			fmt.Sprintf("resize from %d to %d bytes interrupted (limit %d)", m.Size, m.Pending, l.Hard), func() error {
				return b.finishResize(ctx, name, m, l)
			})
		return nil
	}
	if l.Hard != m.Size {
		r.found(backend.ProblemLimitMismatch, name, path, fmt.Sprintf("limit %d bytes, recorded size %d", l.Hard, m.Size), func() error {
			return b.setLimit(ctx, name, m.Size)
		})
	}
	return nil
}

// finishResize completes an interrupted Resize: forward to the pending
// size, or back to the recorded one if the data no longer fits.
func (b *Backend) finishResize(ctx context.Context, name string, m *marker, l quotaLimit) error {
	target := m.Pending
	if l.Used > target {
		target = m.Size
	}
	if l.Hard != target {
		if err := b.setLimit(ctx, name, target); err != nil {
			return err
		}
	}
	m.Size, m.Pending = target, 0
	return writeMarker(b.dir(name), m)
}

// archive checks the archive area: expired entries, and entries that kept
// their limit (an archive interrupted after the move).
func (r *reconciler) archive(ctx context.Context) error {
	b := r.b
	ents, err := b.readArea(archiveDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		r.rep.Scanned++
		rel := archiveDir + "/" + e.Name()
		name, at, ok := archivedAt(e.Name())
		if ok && r.opts.ArchiveRetention > 0 && time.Since(at) > r.opts.ArchiveRetention {
			r.found(backend.ProblemArchiveExpired, name, volPath(rel),
				fmt.Sprintf("archived %s ago", time.Since(at).Round(time.Second)), func() error {
					unlock, err := b.locker.Lock(ctx, "archive/"+e.Name())
					if err != nil {
						return err
					}
					defer unlock()
					return b.trash(ctx, rel, name)
				})
		}
	}
	return nil
}

// trash reports entries waiting for the purge and, on repair, runs a pass.
func (r *reconciler) trash(ctx context.Context) error {
	b := r.b
	ents, err := b.readArea(trashDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		r.claims[volPath(trashDir+"/"+e.Name())] = true
	}
	if len(ents) == 0 {
		return nil
	}
	r.rep.Scanned += len(ents)
	var left map[string]bool
	if r.opts.Repair {
		_, err := b.purger.pass(ctx)
		if err != nil {
			r.errs = multierror.Append(r.errs, err)
		}
		after, _ := os.ReadDir(filepath.Join(b.mnt, trashDir))
		left = map[string]bool{}
		for _, e := range after {
			left[e.Name()] = true
		}
	}
	for _, e := range ents {
		name, _ := entryName(e.Name())
		it := backend.ReconcileItem{Problem: backend.ProblemTrash, Name: name, Path: volPath(trashDir + "/" + e.Name()),
			Detail: "deleted, data not purged yet"}
		if left != nil {
			it.Repaired = !left[e.Name()]
			if !it.Repaired {
				it.Detail = "deleted, purge still busy (retried in the background)"
			}
		}
		r.rep.Items = append(r.rep.Items, it)
	}
	return nil
}

// limits looks for limits on paths that are not (or no longer) subvolumes.
func (r *reconciler) limits(ctx context.Context) error {
	b := r.b
	ls, err := b.g.listAllLimits(ctx)
	if err != nil {
		if k := subvolkit.KindOf(err); k == subvolkit.Canceled || k == subvolkit.DeadlineExceeded || k == subvolkit.Unavailable {
			return err
		}
		// `quota list` answers nothing at all when a limit is set on a
		// path that no longer exists (removed behind subvolkit's back);
		// Gluster can neither list nor remove such a limit by path. The
		// subvolumes' own limits were checked one by one above.
		r.found(backend.ProblemOrphanLimit, "", "", "`quota list` fails: a limit is probably set on a path removed outside subvolkit; "+
			"Gluster cannot list or remove it by path (recreate the path, `quota remove` it, remove the path again)", nil)
		return subvolkit.E(subvolkit.FailedPrecondition, "", "", fmt.Errorf("listing the volume's limits: %w", err))
	}
	for _, l := range ls {
		if r.claims[l.Path] || l.Hard < 0 || l.Path == "/" {
			continue
		}
		// A trash entry that appeared after the scan is the purger's.
		if strings.HasPrefix(l.Path, "/"+trashDir+"/") {
			continue
		}
		if strings.HasPrefix(l.Path, "/"+stagingDir+"/") || isWarmPath(l.Path) {
			if _, err := os.Lstat(filepath.Join(b.mnt, l.Path)); err == nil {
				continue // a staging or warm entry that appeared after the scan
			}
		}
		if !strings.HasPrefix(l.Path, "/"+metaDir+"/") {
			if _, err := os.Lstat(filepath.Join(b.mnt, l.Path)); err == nil {
				continue // a directory of someone else's, or one that appeared after the scan
			}
		}
		path := l.Path
		r.found(backend.ProblemOrphanLimit, "", path, fmt.Sprintf("limit %s on a path that is not a subvolume", quota.HumanSize(l.Hard)), func() error {
			return b.g.removeLimit(ctx, path)
		})
	}
	return nil
}
