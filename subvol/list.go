package subvol

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

// ListOptions tune ListPage. A nil *ListOptions lists from the start with
// the backend's default page size and full details.
type ListOptions struct {
	// PageToken continues a previous ListPage; "" starts at the beginning.
	// It is opaque: pass back a ListPage.NextPageToken unchanged.
	PageToken string
	// MaxResults bounds the page size (and so the memory one call needs);
	// 0 means the backend's default.
	MaxResults int
	// NamesOnly asks for names only: a backend may then fill only Name,
	// ID, Path, Volume and Servers, which for directory backends is one
	// read of a directory instead of one look-up per subvolume. What a
	// names-only listing may include besides complete subvolumes is the
	// backend's to document.
	NamesOnly bool
	// WithUsage fills Subvol.Usage of every entry: in bulk where the
	// backend can, else with one usage call per entry (a few at a time,
	// for backends that report usage). An entry whose usage cannot be read
	// (deleted meanwhile, or a failed read) keeps a nil Usage.
	WithUsage bool
}

// ListPage is one page of subvolumes, sorted by name.
type ListPage struct {
	Subvols []*Subvol
	// NextPageToken continues the listing; "" on the last page. Tokens are
	// stable: subvolumes created or deleted between pages never make a
	// page skip or repeat a subvolume that exists throughout.
	NextPageToken string
}

// ListPage returns one page of subvolumes sorted by name (see ListOptions).
func (p *Pool) ListPage(ctx context.Context, opts *ListOptions) (_ *ListPage, err error) {
	const op = "list"
	defer p.observe(op, "", time.Now(), &err)
	if opts == nil {
		opts = &ListOptions{}
	}
	end, err := p.begin(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer end()
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "MaxResults %d is negative", opts.MaxResults)
	}
	page, err := p.b.List(ctx, &backend.ListOptions{
		PageToken: opts.PageToken, MaxResults: opts.MaxResults,
		NamesOnly: opts.NamesOnly, WithUsage: opts.WithUsage,
	})
	if err != nil {
		return nil, subvolkit.WithOp(op, "", err)
	}
	out := &ListPage{Subvols: fromBackendAll(page.Subvols), NextPageToken: page.NextPageToken}
	if opts.WithUsage {
		if err := p.fillUsage(ctx, out.Subvols); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillUsageWorkers bounds the usage calls fillUsage makes at once.
const fillUsageWorkers = 8

// fillUsage asks the backend, one call each (a few at a time), for the
// usage of the entries its List left without one. An entry whose usage
// cannot be read (deleted meanwhile, a failed call: logged) keeps a nil
// Usage; a backend that cannot report usage leaves them all nil.
func (p *Pool) fillUsage(ctx context.Context, svs []*Subvol) error {
	const op = "list"
	u, ok := p.b.(backend.UsageReader)
	if !ok {
		return nil
	}
	var todo []*Subvol
	for _, sv := range svs {
		if sv.Usage == nil {
			todo = append(todo, sv)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(fillUsageWorkers, len(todo)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) || ctx.Err() != nil {
					return
				}
				us, err := u.Usage(ctx, todo[i].Name)
				if err == nil {
					todo[i].Usage = us
				} else if k := subvolkit.KindOf(err); k != subvolkit.NotFound && k != subvolkit.Unimplemented {
					p.log.WarnContext(ctx, "usage of a listed subvolume", "name", todo[i].Name, "err", err)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, op, "", err)
	}
	return nil
}
