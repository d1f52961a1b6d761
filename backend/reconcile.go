package backend

import (
	"context"
	"time"
)

// ReconcileOptions tune Reconcile. A nil *ReconcileOptions is a dry run with
// the defaults.
type ReconcileOptions struct {
	// Repair makes Reconcile fix what it finds. False (the default) only
	// reports: a dry run changes nothing.
	Repair bool
	// ArchiveRetention, if > 0, reports archived subvolumes older than it
	// (ProblemArchiveExpired); with Repair their data is removed.
	ArchiveRetention time.Duration
}

// Problems a Reconcile finds.
const (
	// ProblemHalfMade is a subvolume a crash or failure left half-made
	// (a staging leftover, or a "creating" directory of an older
	// version): it was never handed out; repair removes it.
	ProblemHalfMade = "half-made"
	// ProblemHalfDeleted is a subvolume a crash left half-deleted or
	// half-archived; repair finishes the job.
	ProblemHalfDeleted = "half-deleted"
	// ProblemResizePending is a Resize a crash interrupted; repair
	// completes it.
	ProblemResizePending = "resize-pending"
	// ProblemLimitMismatch is a subvolume whose quota limit disagrees
	// with its recorded size (or is missing); repair sets the limit.
	ProblemLimitMismatch = "limit-mismatch"
	// ProblemOrphanLimit is a quota limit on a path that is no longer a
	// subvolume (or no longer exists); repair removes the limit.
	ProblemOrphanLimit = "orphan-limit"
	// ProblemUnmarked is a directory without the owner marker. One that is
	// empty, without a limit, looks like a crash of an older version right
	// after mkdir and is removed on repair; any other is only reported.
	ProblemUnmarked = "unmarked"
	// ProblemTrash is a deleted subvolume whose data is not purged yet;
	// repair runs a purge pass (busy entries stay and are retried).
	ProblemTrash = "trash"
	// ProblemArchiveExpired is an archived subvolume past
	// ReconcileOptions.ArchiveRetention; repair removes its data.
	ProblemArchiveExpired = "archive-expired"
)

// ReconcileItem is one thing Reconcile found.
type ReconcileItem struct {
	Problem  string // one of the Problem constants
	Name     string // the subvolume's name, "" if unknown
	Path     string // the backend's path or ID of what was found
	Detail   string // human-readable detail
	Repaired bool   // whether Repair fixed it
}

// ReconcileReport is what Reconcile found and did.
type ReconcileReport struct {
	// Scanned is the number of entries examined.
	Scanned int
	// Items are the problems found, repaired or not.
	Items []ReconcileItem
	// Duration is how long the run took.
	Duration time.Duration
}

// Reconciler is implemented by backends that can find and repair what
// crashes, failures and outside hands left behind.
type Reconciler interface {
	// Reconcile scans the backend's storage and reports (and with
	// opts.Repair fixes) half-made and half-deleted subvolumes,
	// interrupted resizes, limit mismatches, orphaned limits and data.
	// It returns the report even when some repairs fail; err then
	// gathers the per-item failures (a *multierror.Error from
	// github.com/hashicorp/go-multierror), each with a kind.
	Reconcile(ctx context.Context, opts *ReconcileOptions) (*ReconcileReport, error)
}
