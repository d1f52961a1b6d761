package subvol

import (
	"context"
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
	// backend can, else with one usage call per entry (backends that
	// report usage). An entry deleted meanwhile keeps a nil Usage.
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

// fillUsage asks the backend, one call each, for the usage of the entries
// its List left without one.
func (p *Pool) fillUsage(ctx context.Context, svs []*Subvol) error {
	const op = "list"
	u, ok := p.b.(backend.UsageReader)
	if !ok {
		return nil
	}
	for _, sv := range svs {
		if sv.Usage != nil {
			continue
		}
		us, err := u.Usage(ctx, sv.Name)
		switch {
		case err == nil:
			sv.Usage = us
		case subvolkit.KindOf(err) == subvolkit.NotFound:
			// deleted meanwhile
		default:
			return subvolkit.WithOp(op, sv.Name, err)
		}
	}
	return nil
}
