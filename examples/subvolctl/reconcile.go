package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit/subvol"
)

// reconcileView is what reconcile prints with -o json|yaml.
type reconcileView struct {
	Repair  bool            `json:"repair"`
	Scanned int             `json:"scanned"`
	Seconds float64         `json:"seconds"`
	Items   []reconcileItem `json:"items"`
}

// reconcileItem is one problem found.
type reconcileItem struct {
	Problem  string `json:"problem"`
	Name     string `json:"name,omitempty"`
	Path     string `json:"path,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Repaired bool   `json:"repaired"`
}

func (a *app) reconcileCmd() *cobra.Command {
	var (
		repair, dryRun bool
		retention      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile [--repair]",
		Short: "Find (and with --repair fix) what crashes and failures left: half-made or half-deleted subvolumes, limits that disagree, unpurged trash",
		Long: `reconcile scans the backend for half-made and half-deleted subvolumes,
interrupted resizes, limits that disagree with the recorded size, limits on
removed paths, unmarked directories that look like ours, deleted data not
purged yet and archives past --archive-retention. Without --repair it is a
dry run (reports only); --dry-run says so explicitly.`,
		Args: args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			if repair && dryRun {
				return usageError{fmt.Errorf("--repair and --dry-run contradict each other")}
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			rep, err := pool.Reconcile(ctx, &subvol.ReconcileOptions{Repair: repair, ArchiveRetention: retention})
			if rep != nil {
				if perr := a.printReconcile(repair, rep); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "fix what is found")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report only (the default)")
	cmd.Flags().DurationVar(&retention, "archive-retention", 0, "archives older than this expire (0: never)")
	return cmd
}

func (a *app) printReconcile(repair bool, rep *subvol.ReconcileReport) error {
	if a.output != "table" {
		items := make([]reconcileItem, len(rep.Items))
		for i, it := range rep.Items {
			items[i] = reconcileItem(it)
		}
		return a.printData(reconcileView{Repair: repair, Scanned: rep.Scanned, Seconds: rep.Duration.Seconds(), Items: items})
	}
	rows := make([][]string, len(rep.Items))
	for i, it := range rep.Items {
		done := "no"
		if it.Repaired {
			done = "yes"
		}
		rows[i] = []string{it.Problem, it.Name, it.Path, it.Detail, done}
	}
	if err := a.printTable([]string{"PROBLEM", "NAME", "PATH", "DETAIL", "REPAIRED"}, rows); err != nil {
		return err
	}
	mode := "dry run"
	if repair {
		mode = "repair"
	}
	_, err := fmt.Fprintf(a.stdout, "%s: %d scanned, %d problems, %s\n", mode, rep.Scanned, len(rep.Items), rep.Duration.Round(time.Millisecond))
	return err
}
