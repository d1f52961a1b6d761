package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit/quota"
)

// run executes the command line and returns the exit code: 0, 1 for a
// failed run, 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := rootCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "subvolkit-bench: %v\n", err)
	if errors.As(err, new(runError)) {
		return 1
	}
	return 2 // cobra's own errors and the checks of the flags
}

// runError marks the errors of a run, as opposed to its command line.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// asRunError makes err (if any) a runError.
func asRunError(err error) error {
	if err == nil {
		return nil
	}
	return runError{err}
}

// globalFlags are the flags of every command.
type globalFlags struct {
	target targetFlags
	output string
	quiet  bool
}

func (g *globalFlags) check(cmd *cobra.Command) error {
	switch g.output {
	case "table", "markdown", "json":
	default:
		return fmt.Errorf("--output %q: want table, markdown or json", g.output)
	}
	own := g.target.volume != "" || g.target.servers != ""
	if cmd.Flags().Changed("throwaway") && g.target.throwaway == own {
		return errors.New("give either --throwaway or --volume and --servers")
	}
	if own && (g.target.volume == "" || g.target.servers == "") {
		return errors.New("give both --volume and --servers, or neither (for a throwaway cluster)")
	}
	g.target.throwaway = !own
	if g.target.nodes < 1 || g.target.nodes > 3 {
		return fmt.Errorf("--nodes %d: want 1 to 3", g.target.nodes)
	}
	return nil
}

func rootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	cfg := config{size: quota.GiB}
	var sections string
	root := &cobra.Command{
		Use:   "subvolkit-bench",
		Short: "Measure subvolkit against the raw gluster CLI, side by side",
		Long: `subvolkit-bench measures subvolkit's Pool against the raw gluster CLI calls a
script would make (mkdir + quota limit-usage, quota remove + rm -rf, cp -a,
quota list --xml, ReadDir), interleaved round by round, and prints ours, the
baseline and their ratio.

Without --volume it starts a throwaway GlusterFS on this host (root and the
GlusterFS server programs needed) and tears it down after. With --volume and
--servers it works on that volume (prepared for the cli backend; run it on a
node of the cluster), only on names starting with bench-<random>-, and
removes all it made, also when interrupted.

Sections: ` + strings.Join(sectionNames, ", ") + `.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.check(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			var want []string
			for _, s := range strings.Split(sections, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if !slices.Contains(sectionNames, s) {
					return fmt.Errorf("--sections: unknown section %q (have %s)", s, strings.Join(sectionNames, ", "))
				}
				want = append(want, s)
			}
			if cfg.count < 1 || cfg.rounds < 1 || cfg.bigRounds < 1 || cfg.files < 1 || cfg.bigMiB < 1 {
				return errors.New("--count, --rounds, --big-rounds, --files and --big-mib must be at least 1")
			}
			return asRunError(runSections(cmd.Context(), g, cfg, want, stdout, stderr))
		},
	}
	pf := root.PersistentFlags()
	pf.BoolVar(&g.target.throwaway, "throwaway", true, "start a throwaway GlusterFS (the default when no --volume is given)")
	pf.IntVar(&g.target.nodes, "nodes", 1, "nodes of the throwaway cluster (1: distribute, 2 or 3: replica)")
	pf.StringVar(&g.target.volume, "volume", "", "an existing volume, prepared for the cli backend")
	pf.StringVar(&g.target.servers, "servers", "", "its volfile servers, comma-separated")
	pf.StringVar(&g.target.glusterPath, "gluster-path", "", "the gluster CLI binary (default gluster in PATH)")
	pf.StringVar(&g.target.glusterArgs, "gluster-args", "", "extra gluster CLI arguments, space-separated (such as --glusterd-sock=/path)")
	pf.StringVar(&g.target.mountDir, "mount-dir", "", "where to mount the volume (default a temporary directory)")
	pf.StringVarP(&g.output, "output", "o", "table", "output: table, markdown or json")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress messages on stderr")
	f := root.Flags()
	f.StringVar(&sections, "sections", strings.Join(sectionNames, ","), "sections to run, comma-separated")
	f.IntVar(&cfg.count, "count", 100, "subvolumes of the burst, list and usage sections")
	f.IntVar(&cfg.rounds, "rounds", 20, "rounds of the allocate, delete, concurrent and list sections")
	f.IntVar(&cfg.bigRounds, "big-rounds", 2, "rounds of the burst, clone and usage sections")
	f.IntVar(&cfg.files, "files", 1000, "small files of the clone section")
	f.IntVar(&cfg.bigMiB, "big-mib", 200, "size of the clone section's big file, in MiB")
	root.AddCommand(scaleCmd(g, stdout, stderr))
	return root
}

// runSections opens the target, runs the sections and prints the report,
// also the part measured before a failure.
func runSections(ctx context.Context, g *globalFlags, cfg config, sections []string, stdout, stderr io.Writer) (err error) {
	logw := stderr
	if g.quiet {
		logw = io.Discard
	}
	t, err := openTarget(ctx, &g.target, logw)
	if err != nil {
		return err
	}
	defer func() {
		t.logf("cleaning up")
		err = errors.Join(err, t.close(ctx))
	}()
	rep := &Report{Target: t.desc, Count: cfg.count, Rounds: cfg.rounds}
	b := &bench{t: t, cfg: cfg}
	for _, name := range sections {
		t.logf("section %s", name)
		s, serr := b.run(ctx, name)
		rep.Sections = append(rep.Sections, s)
		if serr != nil {
			err = fmt.Errorf("section %s: %w", name, serr)
			break
		}
	}
	return errors.Join(err, rep.write(stdout, g.output))
}
