package subvol

import (
	"context"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

// ReconcileOptions tune Reconcile. A nil *ReconcileOptions is a dry run.
type ReconcileOptions struct {
	// Repair makes Reconcile fix what it finds; false only reports.
	Repair bool
	// ArchiveRetention, if > 0, makes archived subvolumes older than it
	// expire; with Repair their data is removed.
	ArchiveRetention time.Duration
}

// ReconcileItem is one problem Reconcile found. Problem is one of
// "half-made", "half-deleted", "resize-pending", "limit-mismatch",
// "orphan-limit", "unmarked", "trash" and "archive-expired" (see the
// backend package's Problem constants).
type ReconcileItem struct {
	Problem  string
	Name     string
	Path     string
	Detail   string
	Repaired bool
}

// ReconcileReport is what Reconcile found and did.
type ReconcileReport struct {
	Scanned  int
	Items    []ReconcileItem
	Duration time.Duration
}

// Reconcile finds (and with opts.Repair fixes) what crashes, failures and
// outside hands left behind: half-made and half-deleted subvolumes of any
// name, interrupted resizes, limits that disagree with the recorded size,
// limits on paths that are gone, unmarked directories that look like ours,
// deleted data not purged yet and archives past their retention. It is a
// dry run by default. It returns the report even when some repairs fail;
// the error then gathers the per-item failures (a *multierror.Error), each
// with a kind. A backend without the capability answers Unimplemented.
func (p *Pool) Reconcile(ctx context.Context, opts *ReconcileOptions) (_ *ReconcileReport, err error) {
	const op = "reconcile"
	defer p.observe(op, "", time.Now(), &err)
	if opts == nil {
		opts = &ReconcileOptions{}
	}
	end, err := p.begin(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer end()
	r, ok := p.b.(backend.Reconciler)
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, op, "", "backend %T cannot reconcile", p.b)
	}
	rep, err := r.Reconcile(ctx, &backend.ReconcileOptions{Repair: opts.Repair, ArchiveRetention: opts.ArchiveRetention})
	var out *ReconcileReport
	if rep != nil {
		out = &ReconcileReport{Scanned: rep.Scanned, Duration: rep.Duration}
		for _, it := range rep.Items {
			out.Items = append(out.Items, ReconcileItem(it))
		}
	}
	if err != nil {
		return out, subvolkit.WithOp(op, "", err)
	}
	p.log.InfoContext(ctx, "reconciled", "repair", opts.Repair, "problems", len(rep.Items))
	return out, nil
}

// ListAll returns every subvolume the backend holds, sorted by ID: the
// live ones (State "") and, where the backend can tell, those out of the
// pool ("retained", "archived") and broken ones ("broken": half-made, or a
// limit that disagrees with the record; Reconcile repairs them).
func (p *Pool) ListAll(ctx context.Context) (_ []*Subvol, err error) {
	const op = "list"
	defer p.observe(op, "", time.Now(), &err)
	end, err := p.begin(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer end()
	var all []*Subvol
	opts := &backend.ListOptions{All: true}
	for {
		page, err := p.b.List(ctx, opts)
		if err != nil {
			return nil, subvolkit.WithOp(op, "", err)
		}
		all = append(all, fromBackendAll(page.Subvols)...)
		if page.NextPageToken == "" {
			return all, nil
		}
		if page.NextPageToken == opts.PageToken {
			return nil, subvolkit.Errorf(subvolkit.Internal, op, "", "backend returned the same page token %q twice", opts.PageToken)
		}
		opts = &backend.ListOptions{All: true, PageToken: page.NextPageToken}
	}
}
