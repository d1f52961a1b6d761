package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// retainedDir indexes the retained subvolumes, which stay at the volume's
// root (their names stay taken): one empty file per name, made before the
// marker says "retained" and removed after the retained subvolume is
// deleted. A names-only List subtracts it from the root's listing; a stale
// entry is harmless, as List checks the marker of every indexed name.
const retainedDir = metaDir + "/retained"

// listWorkers bounds the goroutines that read many subvolumes' extended
// attributes at once: FUSE round trips are latency-bound, so a few more
// workers than cores keep the client busy.
const listWorkers = 16

// auxWorkers bounds the goroutines reading quota attributes on the aux
// mount: measured, 4 workers were no faster than one there, so a few are
// enough.
const auxWorkers = 4

// List implements backend.Backend: the ready subvolumes at the volume's
// root, sorted by name; the page token is the last name of the previous
// page. Names come from one read of the root directory (the root only
// holds complete subvolumes: they are built in the staging area), details
// from the owner markers and usage from the quota aux mount's extended
// attributes, read in parallel for the whole page (or, without the aux
// mount, from one `quota list` call). See the package documentation for
// what ListOptions.NamesOnly may include.
func (b *Backend) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	const op = "list"
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "MaxResults %d is negative", opts.MaxResults)
	}
	if opts.All {
		if err := b.checkOpen(ctx, op, ""); err != nil {
			return nil, err
		}
		return b.listAll(ctx, opts)
	}
	if err := b.checkArgs(ctx, op, ""); err != nil {
		return nil, err
	}
	var page *backend.ListPage
	err := b.healing(ctx, func() error {
		var err error
		page, err = b.list(ctx, opts)
		return err
	})
	return page, err
}

func (b *Backend) list(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	// A page with usage is read through the list mount: its ReadDir brings
	// every entry's attributes, owner marker and quota size into that
	// client's cache (see listMount and auxCacheOptions), so the reads
	// that follow need no round trip to the bricks each. If it cannot be
	// read, the main mount is.
	if !opts.WithUsage {
		return b.listIn(ctx, b.mnt, opts)
	}
	if mnt := b.listMount(ctx); mnt != "" {
		var page *backend.ListPage
		var err error
		if opts.MaxResults == 0 {
			page, err = b.listAuxAll(ctx, mnt, opts)
		} else {
			page, err = b.listIn(ctx, mnt, opts)
		}
		if subvolkit.KindOf(err) != subvolkit.Unavailable {
			return page, err
		}
		b.log.InfoContext(ctx, "cannot list through the list mount; listing through the main mount", "err", err)
	}
	return b.listIn(ctx, b.mnt, opts)
}

// listIn is list, reading names, markers and owners in mnt (the main or
// the list mount), and usage in mnt if it is not the main one.
func (b *Backend) listIn(ctx context.Context, mnt string, opts *backend.ListOptions) (*backend.ListPage, error) {
	names, err := rootNames(mnt, opts.PageToken)
	if err != nil {
		return nil, err
	}
	var retained map[string]bool
	if opts.NamesOnly {
		if retained, err = b.retainedIndex(); err != nil {
			return nil, err
		}
	}
	// limits are the recorded sizes of the entries read in full with no
	// resize pending: their quota limits, for the usage.
	limits := map[string]int64{}
	page := &backend.ListPage{}
	for len(names) > 0 {
		chunk := names
		if opts.MaxResults > 0 {
			chunk = names[:min(len(names), opts.MaxResults-len(page.Subvols))]
		}
		names = names[len(chunk):]
		var svs []*backend.Subvol
		if opts.NamesOnly {
			svs, err = b.namesOnly(ctx, mnt, chunk, retained)
		} else {
			svs, err = b.details(ctx, mnt, chunk, limits)
		}
		if err != nil {
			return nil, err
		}
		page.Subvols = append(page.Subvols, svs...)
		if opts.MaxResults > 0 && len(page.Subvols) == opts.MaxResults {
			if len(names) > 0 {
				page.NextPageToken = page.Subvols[len(page.Subvols)-1].Name
			}
			break
		}
	}
	if opts.WithUsage {
		todo := page.Subvols
		if mnt != b.mnt {
			// Read where the names were (the list mount's cache has
			// their usage); what it cannot answer, bulkUsage reads.
			if todo, _, err = b.auxUsages(ctx, mnt, todo, limits); err != nil {
				return nil, err
			}
		}
		if err := b.bulkUsage(ctx, todo, limits); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// auxBatch is how many entries of the list mount's root listAuxAll reads
// before it reads their details and usage.
const auxBatch = 256

// listAuxAll is list with usage of everything after the page token in one
// page (no MaxResults), through mnt, the list mount. A ReadDir of
// thousands of entries takes longer than its client's cache keeps a value
// (1 s, see auxCacheOptions), so the root is read in batches and each
// batch's markers, owners and usage are read as soon as it arrives, while
// the cache holds them.
func (b *Backend) listAuxAll(ctx context.Context, mnt string, opts *backend.ListOptions) (*backend.ListPage, error) {
	var retained map[string]bool
	if opts.NamesOnly {
		var err error
		if retained, err = b.retainedIndex(); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(mnt)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	defer func() { _ = f.Close() }()
	limits := map[string]int64{}
	var all, failed []*backend.Subvol
	for {
		ents, rerr := f.ReadDir(auxBatch)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, subvolkit.E(subvolkit.Unavailable, "", "", rerr)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if e.IsDir() && e.Name() > opts.PageToken && naming.ValidateSubvolName(e.Name()) == nil {
				names = append(names, e.Name())
			}
		}
		var svs []*backend.Subvol
		if opts.NamesOnly {
			svs, err = b.namesOnly(ctx, mnt, names, retained)
		} else {
			svs, err = b.details(ctx, mnt, names, limits)
		}
		if err != nil {
			return nil, err
		}
		bad, _, err := b.auxUsages(ctx, mnt, svs, limits)
		if err != nil {
			return nil, err
		}
		all, failed = append(all, svs...), append(failed, bad...)
		if rerr != nil {
			break // io.EOF
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	// What the aux mount could not answer (it trails the main mount for a
	// moment, or its client died) is read again, healed or through the CLI.
	if err := b.bulkUsage(ctx, failed, limits); err != nil {
		return nil, err
	}
	return &backend.ListPage{Subvols: all}, nil
}

// rootNames reads the volume's root, mounted on mnt: the names of the
// directories that could be subvolumes, sorted, after the token.
func rootNames(mnt, after string) ([]string, error) {
	entries, err := os.ReadDir(mnt)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() && e.Name() > after && naming.ValidateSubvolName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// retainedIndex reads the index of retained subvolumes.
func (b *Backend) retainedIndex() (map[string]bool, error) {
	entries, err := b.readArea(retainedDir)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]bool, len(entries))
	for _, e := range entries {
		idx[e.Name()] = true
	}
	return idx, nil
}

// namesOnly describes names without reading them, except those the
// retained index names: their markers say whether they are still retained.
func (b *Backend) namesOnly(ctx context.Context, mnt string, names []string, retained map[string]bool) ([]*backend.Subvol, error) {
	var check []int
	for i, n := range names {
		if retained[n] {
			check = append(check, i)
		}
	}
	drop := make([]bool, len(names))
	if err := parallel(ctx, len(check), func(j int) {
		i := check[j]
		m, err := readMarker(filepath.Join(mnt, names[i]))
		drop[i] = errors.Is(err, errGone) || (err == nil && m.State == stateRetained)
	}); err != nil {
		return nil, err
	}
	svs := make([]*backend.Subvol, 0, len(names))
	for i, n := range names {
		if !drop[i] {
			svs = append(svs, &backend.Subvol{Name: n, ID: volPath(n), Path: volPath(n), Volume: b.opts.Volume,
				Servers: append([]string(nil), b.opts.Servers...)})
		}
	}
	return svs, nil
}

// details reads the marker and owner of every name in mnt, in parallel,
// and returns the ready subvolumes among them in order.
func (b *Backend) details(ctx context.Context, mnt string, names []string, limits map[string]int64) ([]*backend.Subvol, error) {
	out := make([]*backend.Subvol, len(names))
	errs := make([]error, len(names))
	pending := make([]int64, len(names))
	if err := parallel(ctx, len(names), func(i int) {
		// The marker first: its look-up also refreshes the attributes
		// the lstat then reads (from the kernel's cache, mostly).
		dir := filepath.Join(mnt, names[i])
		m, err := readMarker(dir)
		if err != nil {
			if !errors.Is(err, errGone) && !errors.Is(err, errNoMarker) {
				errs[i] = err
			}
			return
		}
		if m.State != stateReady {
			return
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(dir, &st); err != nil {
			if !errors.Is(err, syscall.ENOENT) {
				errs[i] = &pathErr{"lstat", dir, err}
			}
			return
		}
		out[i], pending[i] = b.subvol(names[i], m, &st), m.Pending
	}); err != nil {
		return nil, err
	}
	svs := make([]*backend.Subvol, 0, len(names))
	for i, sv := range out {
		if errs[i] != nil && deadMountErr(errs[i]) {
			return nil, subvolkit.E(subvolkit.Unavailable, "", "", errs[i])
		}
		if sv != nil {
			svs = append(svs, sv)
		}
		if sv != nil && pending[i] == 0 {
			limits[sv.Name] = sv.SizeBytes
		}
	}
	return svs, nil
}

// bulkUsage fills the Usage of every entry: from the quota extended
// attributes on the aux mount, read in parallel, or else (no aux mount, or
// it failed and cannot be healed) from one `quota list` call for all. An
// entry whose usage cannot be read keeps a nil Usage.
func (b *Backend) bulkUsage(ctx context.Context, svs []*backend.Subvol, limits map[string]int64) error {
	if len(svs) == 0 {
		return nil
	}
	todo := svs
	if b.aux != "" {
		failed, dead, err := b.auxUsages(ctx, b.aux, svs, limits)
		if err != nil {
			return err
		}
		if dead {
			if herr := b.healAux(ctx); herr == nil {
				if failed, dead, err = b.auxUsages(ctx, b.aux, failed, limits); err != nil {
					return err
				}
			}
		}
		if !dead {
			return nil
		}
		b.log.InfoContext(ctx, "usage not readable through the quota aux mount; reading it through the CLI", "entries", len(failed))
		todo = failed
	}
	ls, err := b.g.listAllLimits(ctx)
	if err != nil {
		return subvolkit.WithOp("", "", err)
	}
	byPath := make(map[string]quotaLimit, len(ls))
	for _, l := range ls {
		byPath[l.Path] = l
	}
	for _, sv := range todo {
		if l, ok := byPath[sv.Path]; ok && l.Hard >= 0 {
			u := quota.NewUsage(l.Hard, l.Used)
			sv.Usage = &u
		}
	}
	return nil
}

// auxUsages reads the limit and usage of every entry through mnt, an aux
// mount (the quota or the list mount). It returns the entries it could
// not read (dead is then true).
//
// list has just read mnt's root (ReadDir), whose answer (READDIRPLUS)
// left every entry in the kernel's cache, so that these calls need no
// look-up each; on the quota aux mount each is a round trip to a brick, on
// the list mount an answer from its client's cache. An entry whose details were
// read (a full List) and that has no resize pending takes its limit from
// the marker, the size Reconcile keeps the limit equal to; only its usage
// is read. An aux mount's client answers these calls one at a time, so a
// few workers are enough.
func (b *Backend) auxUsages(ctx context.Context, mnt string, svs []*backend.Subvol, limits map[string]int64) (failed []*backend.Subvol, dead bool, err error) {
	bad := make([]bool, len(svs))
	var anyDead atomic.Bool
	if err := parallelN(ctx, auxWorkers, len(svs), func(i int) {
		path := svs[i].Path[1:]
		hard, ok := limits[svs[i].Name]
		var err error
		if !ok {
			hard, err = b.auxLimit(mnt, path)
			if errors.Is(err, syscall.ENODATA) {
				hard, err = -1, nil // no limit, as Usage reports it
			}
		}
		if err == nil {
			used, files, dirs, uerr := b.auxUsage(mnt, path)
			switch {
			case errors.Is(uerr, syscall.ENODATA):
				// Nothing accounted yet (a new, empty directory): as
				// Usage reports it.
				used, files, dirs = 0, -1, -1
			case uerr != nil:
				err = uerr
			}
			if err == nil {
				u := quota.NewUsage(hard, used)
				u.Files, u.Dirs = files, dirs
				svs[i].Usage = &u
				return
			}
		}
		// ENOENT too: the aux mount can trail the main one for a moment
		// (the entry was listed there); a second try, then the CLI, tell.
		bad[i] = true
		if deadMountErr(err) || deadMount(err) {
			anyDead.Store(true)
		}
	}); err != nil {
		return nil, false, err
	}
	for i, sv := range svs {
		if bad[i] {
			failed = append(failed, sv)
		}
	}
	return failed, anyDead.Load() || len(failed) > 0, nil
}

// parallel runs f(0) … f(n-1) on up to listWorkers goroutines and stops
// handing out indexes when ctx is done (an error of kind Canceled).
func parallel(ctx context.Context, n int, f func(i int)) error {
	return parallelN(ctx, listWorkers, n, f)
}

// parallelN is parallel with up to workers goroutines.
func parallelN(ctx context.Context, workers, n int, f func(i int)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	return nil
}
