package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// snapshotView is a snapshot as -o json and -o yaml print it.
type snapshotView struct {
	Name      string            `json:"name"`
	ID        string            `json:"id,omitempty"`
	Source    string            `json:"source"`
	SizeBytes int64             `json:"sizeBytes"`
	Size      string            `json:"size"`
	Created   *time.Time        `json:"created,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

func snapshotViewOf(s *subvol.Snapshot) snapshotView {
	v := snapshotView{Name: s.Name, ID: s.ID, Source: s.Source, SizeBytes: s.SizeBytes,
		Size: quota.HumanSize(s.SizeBytes), Labels: s.Labels}
	if !s.Created.IsZero() {
		c := s.Created.UTC()
		v.Created = &c
	}
	return v
}

func (a *app) printSnapshots(snaps []*subvol.Snapshot) error {
	if a.output != "table" {
		views := make([]snapshotView, len(snaps))
		for i, s := range snaps {
			views[i] = snapshotViewOf(s)
		}
		return a.printData(views)
	}
	rows := make([][]string, len(snaps))
	for i, s := range snaps {
		created := ""
		if !s.Created.IsZero() {
			created = s.Created.UTC().Format(time.RFC3339)
		}
		rows[i] = []string{s.Name, s.Source, quota.HumanSize(s.SizeBytes), created}
	}
	return a.printTable([]string{"NAME", "SOURCE", "SIZE", "CREATED"}, rows)
}

func (a *app) printSnapshot(s *subvol.Snapshot) error {
	if a.output != "table" {
		return a.printData(snapshotViewOf(s))
	}
	return a.printSnapshots([]*subvol.Snapshot{s})
}

// completeSnapshots completes snapshot names from the pool.
func (a *app) completeSnapshots(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	if err := a.setup(); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pool, err := a.openPool(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	snaps, err := pool.ListSnapshots(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, len(snaps))
	for i, s := range snaps {
		names[i] = s.Name
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeFirst completes only the first argument, with f.
func completeFirst(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// completeSecond completes only the second argument, with f.
func completeSecond(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) != 1 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// snapshotDeleteView is what snapshot delete prints with -o json|yaml.
type snapshotDeleteView struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func (a *app) snapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot",
		Aliases: []string{"snap"},
		Short:   "Snapshots: read-only copies of a subvolume, outside the pool, restored into new subvolumes",
	}
	cmd.AddCommand(a.snapshotCreateCmd(), a.snapshotGetCmd(), a.snapshotListCmd(), a.snapshotDeleteCmd(), a.snapshotRestoreCmd())
	return cmd
}

func (a *app) snapshotCreateCmd() *cobra.Command {
	var (
		labels []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:               "create NAME SOURCE",
		Short:             "Take the snapshot NAME of the subvolume SOURCE (idempotent)",
		Args:              args(2, 2),
		ValidArgsFunction: completeSecond(a.completeNames),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			lbl, err := parseKV("label", labels)
			if err != nil {
				return err
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				src, err := pool.Get(ctx, args[1])
				if err != nil {
					return err
				}
				detail := "of " + src.Name + ", " + quota.HumanSize(src.SizeBytes)
				switch s, err := pool.GetSnapshot(ctx, args[0]); {
				case err == nil:
					detail += "; a snapshot of " + s.Source + " exists under that name"
				case subvolkit.KindOf(err) != subvolkit.NotFound:
					return err
				}
				return a.printDryRun("snapshot", args[:1], detail)
			}
			bar := a.spinner("snapshot " + args[1] + " -> " + args[0])
			s, err := pool.CreateSnapshot(ctx, args[0], args[1], &subvol.SnapshotOptions{Labels: lbl})
			bar.finish()
			if err != nil {
				return err
			}
			return a.printSnapshot(s)
		}),
	}
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label key=value, repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	return cmd
}

func (a *app) snapshotGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "get NAME",
		Short:             "Show one snapshot",
		Args:              args(1, 1),
		ValidArgsFunction: completeFirst(a.completeSnapshots),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			s, err := pool.GetSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printSnapshot(s)
		}),
	}
}

func (a *app) snapshotListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the snapshots",
		Args:    args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			snaps, err := pool.ListSnapshots(ctx)
			if err != nil {
				return err
			}
			return a.printSnapshots(snaps)
		}),
	}
}

func (a *app) snapshotDeleteCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:               "delete NAME...",
		Aliases:           []string{"rm"},
		Short:             "Delete snapshots (a missing one is not an error)",
		Args:              args(1, -1),
		ValidArgsFunction: a.completeSnapshots,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				return a.printDryRun("delete snapshot", args, "")
			}
			b := a.newBar(len(args), "delete")
			if len(args) == 1 {
				b = nil
			}
			errs, firstErr := runEach(len(args), 4, b, func(i int) error { return pool.DeleteSnapshot(ctx, args[i]) })
			views := make([]snapshotDeleteView, len(args))
			for i, err := range errs {
				views[i] = snapshotDeleteView{Name: args[i], Deleted: err == nil, Error: errString(err)}
			}
			if a.output != "table" {
				if err := a.printData(views); err != nil {
					return err
				}
			} else {
				rows := make([][]string, len(views))
				for i, v := range views {
					res := "deleted"
					if v.Error != "" {
						res = v.Error
					}
					rows[i] = []string{v.Name, res}
				}
				if err := a.printTable([]string{"SNAPSHOT", "RESULT"}, rows); err != nil {
					return err
				}
			}
			return firstErr
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	return cmd
}

func (a *app) snapshotRestoreCmd() *cobra.Command {
	return a.copyCmd(copyCmdSpec{
		use: "restore SNAPSHOT NAME", short: "Create the subvolume NAME with the snapshot's content (idempotent)",
		verb: "restore", sizeHelp: "size of the new subvolume (default: the snapshot's)",
		complete: completeFirst(a.completeSnapshots),
		sourceSize: func(ctx context.Context, pool *subvol.Pool, snap string) (int64, error) {
			s, err := pool.GetSnapshot(ctx, snap)
			if err != nil {
				return 0, err
			}
			return s.SizeBytes, nil
		},
		run: (*subvol.Pool).Restore,
	})
}
