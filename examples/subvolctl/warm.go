package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// warmView is one warm class as warm fill prints it with -o json|yaml.
type warmView struct {
	Size      string `json:"size"`
	SizeBytes int64  `json:"sizeBytes"`
	Target    int    `json:"target"`
	Ready     int    `json:"ready"`
}

// warmDrainView is what warm drain prints with -o json|yaml.
type warmDrainView struct {
	Removed int `json:"removed"`
}

func (a *app) warmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "warm",
		Short: "Fill the stock of warm subvolumes before a burst of allocations, or drain it",
		Long: `Warm subvolumes are pre-made, pre-limited and unnamed; an allocation of
exactly their size is served by renames, without a quota call (see
subvol.Pool.SetWarm). The stock is shared by every process using the volume:
"warm fill" makes it up to the given counts and returns, "warm drain" removes
it (data and limits are purged in the background). A long-running front end
(the CSI controller's pool "warm" setting) keeps it filled by itself.`,
		Args: args(0, 0),
	}
	cmd.AddCommand(a.warmFillCmd(), a.warmDrainCmd())
	return cmd
}

func (a *app) warmFillCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "fill SIZE:COUNT[,SIZE:COUNT...]",
		Short: "Make warm subvolumes up to the given counts (for example 1Gi:20,10Gi:5) and wait for them",
		Args:  args(1, 1),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			classes, err := subvol.ParseWarmClasses(args[0])
			if err != nil {
				return usageError{err}
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if err := pool.SetWarm(classes); err != nil {
				return err
			}
			bar := a.spinner("warm fill " + args[0])
			err = pool.WaitWarm(ctx)
			bar.finish()
			if err != nil {
				return err
			}
			st := pool.WarmStatus()
			if a.output != "table" {
				views := make([]warmView, len(st))
				for i, s := range st {
					views[i] = warmView{Size: quota.FormatQuantity(s.SizeBytes), SizeBytes: s.SizeBytes, Target: s.Target, Ready: s.Ready}
				}
				return a.printData(views)
			}
			rows := make([][]string, len(st))
			for i, s := range st {
				rows[i] = []string{quota.FormatQuantity(s.SizeBytes), strconv.Itoa(s.Target), strconv.Itoa(s.Ready)}
			}
			return a.printTable([]string{"SIZE", "TARGET", "READY"}, rows)
		}),
	}
}

func (a *app) warmDrainCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "drain",
		Short: "Remove every warm subvolume (their data and limits are purged in the background)",
		Args:  args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if err := pool.SetWarm(nil); err != nil { // keep nothing
				return err
			}
			n, err := pool.DrainWarm(ctx)
			if err != nil {
				return err
			}
			if a.output != "table" {
				return a.printData(warmDrainView{Removed: n})
			}
			return a.printTable([]string{"REMOVED"}, [][]string{{strconv.Itoa(n)}})
		}),
	}
}
