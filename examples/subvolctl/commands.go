package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// args checks the number of positional arguments, as a usage error.
func args(min, max int) cobra.PositionalArgs {
	return func(_ *cobra.Command, a []string) error {
		switch {
		case len(a) < min:
			return usageError{fmt.Errorf("want at least %d argument(s), got %d", min, len(a))}
		case max >= 0 && len(a) > max:
			return usageError{fmt.Errorf("want at most %d argument(s), got %d", max, len(a))}
		}
		return nil
	}
}

// completeNames completes subvolume names from the pool.
func (a *app) completeNames(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	if err := a.setup(); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pool, err := a.openPool(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	svs, err := pool.List(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, len(svs))
	for i, sv := range svs {
		names[i] = sv.Name
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// parseSize reads a size flag: a Kubernetes quantity ("10Gi", "500Mi",
// "1073741824", "1G" = 10^9) or, ending in B, a gluster size ("10GB",
// 1024-based as the gluster CLI reads it).
func parseSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, usageError{fmt.Errorf("--%s is required", flag)}
	}
	n, err := quota.ParseQuantity(s)
	if err != nil && strings.HasSuffix(strings.ToUpper(s), "B") {
		n, err = quota.ParseGlusterSize(s)
	}
	if err != nil {
		return 0, usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	return n, nil
}

// parseKV reads repeated key=value flags.
func parseKV(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want key=value", flag, kv)}
		}
		m[k] = v
	}
	return m, nil
}

// ownerFlags are --uid, --gid and --mode.
type ownerFlags struct {
	uid, gid int
	mode     string
}

func (o *ownerFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&o.uid, "uid", -1, "owner of the subvolume's root directory (-1: backend default)")
	cmd.Flags().IntVar(&o.gid, "gid", -1, "group of the subvolume's root directory (-1: backend default)")
	cmd.Flags().StringVar(&o.mode, "mode", "", "permission bits of the root directory, octal (e.g. 2775)")
}

func (o *ownerFlags) ownership() (*subvol.Ownership, error) {
	if o.uid < 0 && o.gid < 0 && o.mode == "" {
		return nil, nil
	}
	own := &subvol.Ownership{UID: o.uid, GID: o.gid}
	if o.mode != "" {
		m, err := strconv.ParseUint(o.mode, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, usageError{fmt.Errorf("--mode %q: want octal permission bits such as 2775", o.mode)}
		}
		own.Mode = uint32(m)
	}
	return own, nil
}

func (a *app) allocateCmd() *cobra.Command {
	var (
		size, limit     string
		labels, svParam []string
		own             ownerFlags
		dryRun          bool
	)
	cmd := &cobra.Command{
		Use:   "allocate NAME --size SIZE",
		Short: "Create a subvolume (idempotent: an existing one of a compatible size is returned)",
		Args:  args(1, 1),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			n, err := parseSize("size", size)
			if err != nil {
				return err
			}
			opts := &subvol.AllocateOptions{}
			if limit != "" {
				if opts.LimitBytes, err = parseSize("limit", limit); err != nil {
					return err
				}
			}
			if opts.Owner, err = own.ownership(); err != nil {
				return err
			}
			if opts.Labels, err = parseKV("label", labels); err != nil {
				return err
			}
			if opts.Parameters, err = parseKV("subvolume-param", svParam); err != nil {
				return err
			}
			if err := naming.ValidateSubvolName(args[0]); err != nil {
				return err
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				return a.dryRunCreate(ctx, pool, "allocate", args[0], n)
			}
			sv, err := pool.Allocate(ctx, args[0], n, opts)
			if err != nil {
				return err
			}
			return a.printSubvol(sv)
		}),
	}
	cmd.Flags().StringVarP(&size, "size", "s", "", "size (quota limit): 10Gi, 500Mi (Kubernetes quantities), 10GB (gluster's 1024-based units), bytes")
	cmd.Flags().StringVar(&limit, "limit", "", "largest size an existing subvolume may have and still be accepted")
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label key=value, repeatable")
	cmd.Flags().StringArrayVar(&svParam, "subvolume-param", nil, "backend-specific parameter of this subvolume, key=value, repeatable")
	own.add(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report what would be done; change nothing")
	return cmd
}

// dryRunCreate reports whether name would be created or already exists.
func (a *app) dryRunCreate(ctx context.Context, pool *subvol.Pool, action, name string, size int64) error {
	detail := "size " + quota.HumanSize(size)
	sv, err := pool.Get(ctx, name)
	switch {
	case err == nil:
		detail += "; it exists with size " + quota.HumanSize(sv.SizeBytes)
	case subvolkit.KindOf(err) == subvolkit.NotFound:
		detail += "; it does not exist"
	default:
		return err
	}
	return a.printDryRun(action, []string{name}, detail)
}

func (a *app) getCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "get NAME",
		Short:             "Show one subvolume",
		Args:              args(1, 1),
		ValidArgsFunction: a.completeNames,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			sv, err := pool.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printSubvol(sv)
		}),
	}
	return cmd
}

func (a *app) listCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the subvolumes, sorted by name",
		Args:    args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			list := pool.List
			if all {
				list = pool.ListAll
			}
			svs, err := list(ctx)
			if err != nil {
				return err
			}
			return a.printSubvols(svs)
		}),
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also those out of the pool (retained, archived) and broken ones (see reconcile), with their state")
	return cmd
}

func (a *app) usageCmd() *cobra.Command {
	var parallel int
	cmd := &cobra.Command{
		Use:               "usage [NAME...]",
		Short:             "Show limit, used and available space and files (all subvolumes without NAME)",
		ValidArgsFunction: a.completeNames,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			var rows []usageView
			var firstErr error
			if len(args) == 0 {
				rows, firstErr = usageListed(ctx, pool, parallel)
			} else {
				rows, firstErr = usageAll(ctx, pool, args, parallel)
			}
			if len(args) == 1 && firstErr != nil {
				return firstErr // one subvolume asked for: its error is the answer
			}
			if a.output != "table" {
				if err := a.printData(rows); err != nil {
					return err
				}
			} else {
				h, r := usageRows(rows)
				if err := a.printTable(h, r); err != nil {
					return err
				}
			}
			return firstErr
		}),
	}
	cmd.Flags().IntVar(&parallel, "parallel", 8, "usage reads in flight")
	return cmd
}

// usageListed reads every subvolume's usage with the listing (in bulk where
// the backend can); those the listing has none for are read one by one.
func usageListed(ctx context.Context, pool *subvol.Pool, parallel int) ([]usageView, error) {
	var rows []usageView
	var missing []string
	at := map[string]int{}
	opts := &subvol.ListOptions{WithUsage: true}
	for {
		page, err := pool.ListPage(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, sv := range page.Subvols {
			if sv.Usage == nil {
				at[sv.Name] = len(rows)
				missing = append(missing, sv.Name)
			}
			rows = append(rows, usageView{Name: sv.Name})
			if sv.Usage != nil {
				rows[len(rows)-1] = usageOf(sv.Name, sv.Usage)
			}
		}
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	more, err := usageAll(ctx, pool, missing, parallel)
	for _, r := range more {
		rows[at[r.Name]] = r
	}
	return rows, err
}

// usageAll reads the usage of names, parallel at a time. A failed read is
// a row with Error set; the first error is returned too.
func usageAll(ctx context.Context, pool *subvol.Pool, names []string, parallel int) ([]usageView, error) {
	if parallel < 1 {
		parallel = 1
	}
	rows := make([]usageView, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := pool.Usage(ctx, name)
			if err != nil {
				rows[i], errs[i] = usageView{Name: name, Files: -1, Dirs: -1, Error: err.Error()}, err
				return
			}
			rows[i] = usageOf(name, u)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func (a *app) resizeCmd() *cobra.Command {
	var (
		size   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:               "resize NAME --size SIZE",
		Short:             "Set a subvolume's size (absolute, not a delta)",
		Args:              args(1, 1),
		ValidArgsFunction: a.completeNames,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			n, err := parseSize("size", size)
			if err != nil {
				return err
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				sv, err := pool.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printDryRun("resize", args, quota.HumanSize(sv.SizeBytes)+" -> "+quota.HumanSize(n))
			}
			sv, err := pool.Resize(ctx, args[0], n)
			if err != nil {
				return err
			}
			return a.printSubvol(sv)
		}),
	}
	cmd.Flags().StringVarP(&size, "size", "s", "", "new size")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	return cmd
}

func (a *app) cloneCmd() *cobra.Command {
	return a.copyCmd(copyCmdSpec{
		use: "clone SOURCE NAME", short: "Create NAME with a copy of SOURCE's content",
		verb: "clone", sizeHelp: "size of the copy (default: the source's)",
		complete: a.completeNames,
		sourceSize: func(ctx context.Context, pool *subvol.Pool, src string) (int64, error) {
			sv, err := pool.Get(ctx, src)
			if err != nil {
				return 0, err
			}
			return sv.SizeBytes, nil
		},
		run: (*subvol.Pool).Clone,
	})
}

// copyCmdSpec describes a command that makes a subvolume from a source
// (clone from a subvolume, restore from a snapshot).
type copyCmdSpec struct {
	use, short, verb, sizeHelp string
	complete                   cobra.CompletionFunc
	// sourceSize is the source's size, for --dry-run.
	sourceSize func(ctx context.Context, pool *subvol.Pool, src string) (int64, error)
	run        func(pool *subvol.Pool, ctx context.Context, src, dst string, opts *subvol.CloneOptions) (*subvol.Subvol, error)
}

// copyCmd builds a clone-like command: SOURCE NAME, --size, --label, the
// owner flags and --dry-run.
func (a *app) copyCmd(spec copyCmdSpec) *cobra.Command {
	var (
		size   string
		labels []string
		own    ownerFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:               spec.use,
		Short:             spec.short,
		Args:              args(2, 2),
		ValidArgsFunction: spec.complete,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			opts := &subvol.CloneOptions{}
			var err error
			if size != "" {
				if opts.SizeBytes, err = parseSize("size", size); err != nil {
					return err
				}
			}
			if opts.Owner, err = own.ownership(); err != nil {
				return err
			}
			if opts.Labels, err = parseKV("label", labels); err != nil {
				return err
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				want := opts.SizeBytes
				if want == 0 {
					if want, err = spec.sourceSize(ctx, pool, args[0]); err != nil {
						return err
					}
				}
				return a.dryRunCreate(ctx, pool, spec.verb+" "+args[0]+" to", args[1], want)
			}
			bar := a.spinner(spec.verb + " " + args[0] + " -> " + args[1])
			sv, err := spec.run(pool, ctx, args[0], args[1], opts)
			bar.finish()
			if err != nil {
				return err
			}
			return a.printSubvol(sv)
		}),
	}
	cmd.Flags().StringVarP(&size, "size", "s", "", spec.sizeHelp)
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label key=value, repeatable")
	own.add(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	return cmd
}

// deleteView is what delete prints with -o json|yaml.
type deleteView struct {
	Name    string `json:"name"`
	Policy  string `json:"policy"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func (a *app) deleteCmd() *cobra.Command {
	var (
		policy   string
		dryRun   bool
		parallel int
	)
	cmd := &cobra.Command{
		Use:               "delete NAME...",
		Aliases:           []string{"rm"},
		Short:             "Delete subvolumes (a missing one is not an error)",
		Args:              args(1, -1),
		ValidArgsFunction: a.completeNames,
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
			p, ok := subvol.ParseDeletePolicy(policy)
			if !ok {
				return usageError{fmt.Errorf("--policy %q: want delete, retain or archive", policy)}
			}
			for _, n := range args {
				if err := naming.ValidateSubvolName(n); err != nil {
					return err
				}
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			if dryRun {
				var existing []string
				for _, n := range args {
					switch _, err := pool.Get(ctx, n); {
					case err == nil:
						existing = append(existing, n)
					case subvolkit.KindOf(err) != subvolkit.NotFound:
						return err
					}
				}
				return a.printDryRun("delete", args, fmt.Sprintf("policy %s; %d of %d exist", p, len(existing), len(args)))
			}
			var bar *bar
			if len(args) > 1 {
				bar = a.newBar(len(args), "delete")
			}
			errs, firstErr := runEach(len(args), parallel, bar, func(i int) error {
				return pool.Delete(ctx, args[i], &subvol.DeleteOptions{Policy: p})
			})
			views := make([]deleteView, len(args))
			for i, err := range errs {
				views[i] = deleteView{Name: args[i], Policy: p.String(), Deleted: err == nil, Error: errString(err)}
			}
			if a.output != "table" {
				if err := a.printData(views); err != nil {
					return err
				}
			} else {
				rows := make([][]string, len(views))
				for i, v := range views {
					status := "deleted"
					if v.Error != "" {
						status = v.Error
					}
					rows[i] = []string{v.Name, v.Policy, status}
				}
				if err := a.printTable([]string{"NAME", "POLICY", "RESULT"}, rows); err != nil {
					return err
				}
			}
			return firstErr
		}),
	}
	cmd.Flags().StringVar(&policy, "policy", "delete", "delete, retain (keep the data, leave the pool) or archive")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be done; change nothing")
	cmd.Flags().IntVar(&parallel, "parallel", 4, "deletes in flight")
	_ = cmd.RegisterFlagCompletionFunc("policy", fixedCompletion("delete", "retain", "archive"))
	return cmd
}

// runParallel calls f(0..n-1), at most parallel at a time.
// runEach runs f for 0..n-1, at most parallel at a time, ticking bar (which
// it finishes), and returns each call's error and the first one.
func runEach(n, parallel int, bar *bar, f func(i int) error) (errs []error, first error) {
	errs = make([]error, n)
	runParallel(n, parallel, func(i int) {
		errs[i] = f(i)
		bar.add()
	})
	bar.finish()
	for _, err := range errs {
		if err != nil {
			return errs, err
		}
	}
	return errs, nil
}

// errString is err's message, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func runParallel(n, parallel int, f func(i int)) {
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// bar is a progress bar, or nothing (a nil *bar) when stdout is not a
// terminal. Its methods are safe for concurrent use.
type bar struct {
	mu   sync.Mutex
	pb   *progressbar.ProgressBar
	stop chan struct{} // closed to stop a spinner's ticker...
	done chan struct{} // ...which closes this when it has stopped
}

func (a *app) newBar(total int, desc string) *bar {
	if !a.progress() {
		return nil
	}
	w := a.stdout
	return &bar{pb: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// spinner is a bar of unknown length, for work without steps (a clone).
func (a *app) spinner(desc string) *bar {
	if !a.progress() {
		return nil
	}
	w := a.stdout
	b := &bar{pb: progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
	_ = b.pb.RenderBlank()
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(b.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.add()
			}
		}
	}()
	return b
}

func (b *bar) add() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.pb.Add(1)
}

func (b *bar) finish() {
	if b == nil {
		return
	}
	if b.stop != nil {
		close(b.stop)
		<-b.done
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.pb.Finish()
}
