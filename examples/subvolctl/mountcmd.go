package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit/mount"
)

// mountFlags configure the node's Mounter.
type mountFlags struct {
	mode, stateDir, logDir, logLevel string
}

func (m *mountFlags) add(cmd *cobra.Command, withMode bool) {
	if withMode {
		cmd.Flags().StringVar(&m.mode, "mode", "deep", "deep (one FUSE mount per target) or shared (one per volume, a bind per target)")
		_ = cmd.RegisterFlagCompletionFunc("mode", fixedCompletion("deep", "shared"))
	}
	cmd.Flags().StringVar(&m.stateDir, "state-dir", mount.DefaultStateDir, "the Mounter's state directory (shared mounts, locks); the same for every process on the node")
	cmd.Flags().StringVar(&m.logDir, "log-dir", mount.DefaultLogDir, "glusterfs client logs")
	cmd.Flags().StringVar(&m.logLevel, "client-log-level", mount.DefaultLogLevel, "glusterfs client log level")
}

func (a *app) mounter(m *mountFlags) (*mount.Mounter, error) {
	opts := &mount.Options{StateDir: m.stateDir, LogDir: m.logDir, LogLevel: m.logLevel, Logger: a.log}
	switch m.mode {
	case "", "deep":
		opts.Mode = mount.ModeDeep
	case "shared":
		opts.Mode = mount.ModeShared
	default:
		return nil, usageError{fmt.Errorf("--mode %q: want deep or shared", m.mode)}
	}
	return mount.New(opts)
}

func (a *app) mountCmd() *cobra.Command {
	var (
		m        mountFlags
		readOnly bool
		options  []string
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:               "mount NAME TARGET",
		Short:             "Mount a subvolume on a directory of this node (idempotent)",
		Args:              args(2, 2),
		ValidArgsFunction: a.completeNames,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			mnt, err := a.mounter(&m)
			if err != nil {
				return err
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			sv, err := pool.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if dryRun {
				server := ""
				if len(sv.Servers) > 0 {
					server = sv.Servers[0]
				}
				return a.printDryRun("mount", args[:1], fmt.Sprintf("%s on %s, %s mode", mount.Source(sv, server), args[1], m.mode))
			}
			if err := mnt.Publish(ctx, sv, args[1], &mount.PublishOptions{ReadOnly: readOnly, MountOptions: options}); err != nil {
				return err
			}
			if a.output != "table" {
				return a.printData(map[string]string{"name": sv.Name, "target": args[1], "mode": m.mode})
			}
			_, err = fmt.Fprintf(a.stdout, "mounted %s on %s\n", sv.Name, args[1])
			return err
		}),
	}
	m.add(cmd, true)
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "mount read-only")
	cmd.Flags().StringArrayVar(&options, "option", nil, "extra glusterfs mount option, repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be mounted; mount nothing")
	return cmd
}

func (a *app) umountCmd() *cobra.Command {
	var (
		m      mountFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:     "umount TARGET",
		Aliases: []string{"unmount"},
		Short:   "Unmount what mount mounted on TARGET (idempotent; a shared mount goes with its last bind)",
		Args:    args(1, 1),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			mnt, err := a.mounter(&m)
			if err != nil {
				return err
			}
			if dryRun {
				return a.printDryRun("unmount", args, "")
			}
			if err := mnt.Unpublish(ctx, args[0]); err != nil {
				return err
			}
			if a.output != "table" {
				return a.printData(map[string]string{"target": args[0]})
			}
			_, err = fmt.Fprintf(a.stdout, "unmounted %s\n", args[0])
			return err
		}),
	}
	m.add(cmd, false)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be unmounted; unmount nothing")
	return cmd
}
