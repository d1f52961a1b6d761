package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
)

// prepareCmd readies a volume for the cli backend (cli.Prepare): the one
// backend-specific command, since opening a backend never changes volume
// settings.
func (a *app) prepareCmd() *cobra.Command {
	var strict, dryRun bool
	cmd := &cobra.Command{
		Use:   "prepare [--strict-quota]",
		Short: "Ready the cli backend's volume, once: enable quota, and with --strict-quota set the quota timeouts to 0",
		Args:  args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			name, params, err := a.resolve()
			if err != nil {
				return err
			}
			if name != "cli" {
				return subvolkit.Errorf(subvolkit.Unimplemented, "prepare", "", "backend %q needs no preparation (only cli does)", name)
			}
			opts, err := cli.OptionsFromParams(params)
			if err != nil {
				return err
			}
			detail := "enable quota"
			if strict {
				detail += "; set features.hard-timeout and features.soft-timeout to 0"
			}
			if dryRun {
				return a.printDryRun("prepare volume", []string{opts.Volume}, detail)
			}
			if err := cli.Prepare(ctx, opts.Runner, opts.Volume, &cli.PrepareOptions{StrictQuota: strict}); err != nil {
				return err
			}
			if a.output != "table" {
				return a.printData(map[string]any{"volume": opts.Volume, "prepared": true, "strictQuota": strict})
			}
			_, err = fmt.Fprintf(a.stdout, "volume %s prepared (%s)\n", opts.Volume, detail)
			return err
		}),
	}
	cmd.Flags().BoolVar(&strict, "strict-quota", false, "bricks re-check usage on every write: limits hold within ~2 MiB instead of tens of MiB")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	return cmd
}
