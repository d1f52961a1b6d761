package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/subvolkit/subvolkit/backend"
	_ "github.com/subvolkit/subvolkit/backend/cli"       // registers "cli"
	_ "github.com/subvolkit/subvolkit/backend/glusterd2" // registers "glusterd2"
	_ "github.com/subvolkit/subvolkit/backend/heketi"    // registers "heketi"
	_ "github.com/subvolkit/subvolkit/backend/memory"    // registers "memory"
	"github.com/subvolkit/subvolkit/mount"
	"github.com/subvolkit/subvolkit/subvol"
)

// Environment variables.
const (
	envConfig      = "SUBVOLCTL_CONFIG"      // config file
	envBackend     = "SUBVOLCTL_BACKEND"     // backend name
	envParamPrefix = "SUBVOLCTL_PARAM_"      // SUBVOLCTL_PARAM_VOLUME=gv0 sets the parameter volume
	envOutput      = "SUBVOLCTL_OUTPUT"      // default -o
	defaultConfig  = "subvolctl/config.yaml" // under $XDG_CONFIG_HOME or ~/.config
)

// config is the configuration file:
//
//	backend: cli
//	params:
//	  volume: gv0
//	  servers: gfs1,gfs2,gfs3
type config struct {
	Backend string            `json:"backend"`
	Params  map[string]string `json:"params"`
}

// app is one run of subvolctl. Tests fill stdout, stderr, environ and args,
// and may set pool to run the commands on a Pool of their own (which the
// app then does not close).
type app struct {
	stdout, stderr io.Writer
	environ        []string
	args           []string
	pool           *subvol.Pool

	// Global flags.
	configPath  string
	backendName string
	params      []string
	output      string
	logLevel    string
	timeout     time.Duration
	noProgress  bool

	log     *slog.Logger
	ownPool bool
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, a *app) int {
	root := a.rootCmd()
	root.SetArgs(a.args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.As(err, new(runError)) {
		err = usageError{err} // cobra's own: unknown command, bad flag, wrong arguments
	}
	if a.ownPool && a.pool != nil {
		if cerr := a.pool.Close(); cerr != nil && err == nil {
			err = runError{cerr}
		}
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "subvolctl: %v\n", err)
	}
	return exitCode(err)
}

// runError marks errors of a command's work (as opposed to its command line).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// runE adapts a command body: its errors are runErrors, and the command
// runs under the global --timeout.
func (a *app) runE(f func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if a.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.timeout)
			defer cancel()
		}
		if err := f(ctx, cmd, args); err != nil {
			return runError{err} // a usageError inside keeps exit code 2
		}
		return nil
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "subvolctl",
		Short: "Manage the quota-limited subvolumes of a GlusterFS volume",
		Long: `subvolctl manages subvolumes (directories with a quota limit, or volumes of a
REST backend) through subvolkit, over any registered backend: cli (the gluster
CLI), heketi, glusterd2 or memory.

The backend and its parameters come from flags, then the environment
(SUBVOLCTL_BACKEND, SUBVOLCTL_PARAM_<NAME>), then the config file
($SUBVOLCTL_CONFIG, or ~/.config/subvolctl/config.yaml).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "config file (default $"+envConfig+" or ~/.config/"+defaultConfig+")")
	pf.StringVarP(&a.backendName, "backend", "b", "", "backend: "+strings.Join(backend.Names(), ", ")+" (env "+envBackend+")")
	pf.StringArrayVarP(&a.params, "param", "p", nil, "backend parameter key=value, repeatable (env "+envParamPrefix+"<KEY>)")
	pf.StringVarP(&a.output, "output", "o", "", "output format: table, json or yaml (env "+envOutput+"; default table)")
	pf.StringVar(&a.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	pf.DurationVar(&a.timeout, "timeout", 0, "give up after this long (0: never)")
	pf.BoolVar(&a.noProgress, "no-progress", false, "no progress bars, even on a terminal")
	_ = root.RegisterFlagCompletionFunc("backend", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return backend.Names(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion("table", "json", "yaml"))
	_ = root.RegisterFlagCompletionFunc("log-level", fixedCompletion("debug", "info", "warn", "error"))

	root.AddCommand(
		a.allocateCmd(), a.getCmd(), a.listCmd(), a.usageCmd(), a.resizeCmd(),
		a.cloneCmd(), a.deleteCmd(), a.bulkCreateCmd(), a.mountCmd(), a.umountCmd(),
	)
	for _, c := range a.extraCmds() {
		root.AddCommand(c)
	}
	return root
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// setup validates the global flags and sets up logging. klog, which
// mount-utils logs through, is routed to the same logger.
func (a *app) setup() error {
	if a.output == "" {
		a.output = a.getenv(envOutput)
	}
	if a.output == "" {
		a.output = "table"
	}
	switch a.output {
	case "table", "json", "yaml":
	default:
		return usageError{fmt.Errorf("--output %q: want table, json or yaml", a.output)}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)}
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
	mount.RouteKlog(a.log)
	return nil
}

func (a *app) getenv(key string) string {
	for _, kv := range slices.Backward(a.environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// resolve returns the backend name and parameters: flags over environment
// over config file.
func (a *app) resolve() (string, map[string]string, error) {
	var cfg config
	path, explicit := a.configPath, true
	if path == "" {
		path = a.getenv(envConfig)
	}
	if path == "" {
		explicit = false
		dir := a.getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home := a.getenv("HOME"); home != "" {
				dir = filepath.Join(home, ".config")
			}
		}
		if dir != "" {
			path = filepath.Join(dir, defaultConfig)
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
				return "", nil, usageError{fmt.Errorf("config file %s: %w", path, err)}
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return "", nil, usageError{fmt.Errorf("config file: %w", err)}
		}
	}
	name := cfg.Backend
	params := maps.Clone(cfg.Params)
	if params == nil {
		params = map[string]string{}
	}
	if v := a.getenv(envBackend); v != "" {
		name = v
	}
	for _, kv := range a.environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, envParamPrefix) && len(k) > len(envParamPrefix) {
			params[strings.ToLower(k[len(envParamPrefix):])] = v
		}
	}
	if a.backendName != "" {
		name = a.backendName
	}
	for _, kv := range a.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", nil, usageError{fmt.Errorf("--param %q: want key=value", kv)}
		}
		params[k] = v
	}
	if name == "" {
		return "", nil, usageError{fmt.Errorf("no backend: give --backend, $%s or a config file (registered: %s)",
			envBackend, strings.Join(backend.Names(), ", "))}
	}
	return name, params, nil
}

// openPool opens the Pool on first use.
func (a *app) openPool(ctx context.Context) (*subvol.Pool, error) {
	if a.pool != nil {
		return a.pool, nil
	}
	name, params, err := a.resolve()
	if err != nil {
		return nil, err
	}
	pool, err := subvol.Open(ctx, name, params, &subvol.Options{Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.pool, a.ownPool = pool, true
	return pool, nil
}

// tty reports whether stdout is a terminal.
func (a *app) tty() bool {
	f, ok := a.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// decorate reports whether to draw borders and progress bars: a table
// output on a terminal.
func (a *app) decorate() bool { return a.output == "table" && a.tty() }

// progress reports whether to draw progress bars.
func (a *app) progress() bool { return a.decorate() && !a.noProgress }
