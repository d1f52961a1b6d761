// Command heketi-server serves heketi's REST API over one Gluster volume, so
// that unmodified heketi clients (heketi-cli, the heketi Go client, the
// Kubernetes in-tree glusterfs provisioner) get quota-limited subvolumes
// (directories, deep-mounted) instead of whole Gluster volumes. See
// README.md and package server.
//
// Every flag can also be set from the environment (flags win):
//
//	-listen          SVK_HEKETI_LISTEN          address to listen on (default 127.0.0.1:8080)
//	-volume          SVK_HEKETI_VOLUME          the Gluster volume (required)
//	-servers         SVK_HEKETI_SERVERS         its servers, comma-separated (required)
//	-admin-key-file  SVK_HEKETI_ADMIN_KEY_FILE  file holding the JWT secret of "admin"
//	-user-key-file   SVK_HEKETI_USER_KEY_FILE   file holding the JWT secret of "user" (optional)
//	-disable-auth    SVK_HEKETI_DISABLE_AUTH    serve without authentication (explicit only)
//	-max-inflight    SVK_HEKETI_MAX_INFLIGHT    operations in flight before 429 (default 8)
//	-cluster-id      SVK_HEKETI_CLUSTER_ID      heketi cluster id (default: derived from the volume)
//	-delete-policy   SVK_HEKETI_DELETE_POLICY   delete, archive or retain (default delete)
//	-mount-dir       SVK_HEKETI_MOUNT_DIR       where the backend mounts the volume
//	-gluster         SVK_HEKETI_GLUSTER         gluster CLI binary (default gluster in PATH)
//	-gluster-args    SVK_HEKETI_GLUSTER_ARGS    extra CLI arguments, such as --glusterd-sock=PATH
//	-strict-quota    SVK_HEKETI_STRICT_QUOTA    set quota timeouts to 0 (default true)
//	-tls-cert        SVK_HEKETI_TLS_CERT        serve HTTPS with this certificate...
//	-tls-key         SVK_HEKETI_TLS_KEY         ...and this key
//
// Secrets are read from files only, never from flags or the environment
// (where other users can read them in /proc or the shell history).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
	"github.com/subvolkit/subvolkit/examples/metrics"
	"github.com/subvolkit/subvolkit/subvol"
)

// options are the parsed flags and environment.
type options struct {
	listen       string
	cli          cli.Options
	prepare      cli.PrepareOptions
	srv          server.Config
	tlsCert      string
	tlsKey       string
	shutdownWait time.Duration
	// openBackend opens the backend the Pool serves; nil means cli.Open
	// with the cli options.
	openBackend func(context.Context) (backend.Backend, error)
}

const envPrefix = "SVK_HEKETI_"

// parseOptions reads args (without the program name) and the environment
// through getenv, and the key files.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("heketi-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(envPrefix + name); v != "" {
			return v
		}
		return def
	}
	envBool := func(name string, def bool) bool {
		v, err := strconv.ParseBool(env(name, strconv.FormatBool(def)))
		if err != nil {
			return def
		}
		return v
	}
	envInt := func(name string, def int) int {
		v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
		if err != nil {
			return def
		}
		return v
	}
	listen := fs.String("listen", env("LISTEN", "127.0.0.1:8080"), "address to listen on")
	volume := fs.String("volume", env("VOLUME", ""), "the Gluster volume that holds the subvolumes (required)")
	servers := fs.String("servers", env("SERVERS", ""), "the volume's servers, comma-separated, preferred first (required)")
	adminKeyFile := fs.String("admin-key-file", env("ADMIN_KEY_FILE", ""), "file holding the JWT secret of the admin issuer")
	userKeyFile := fs.String("user-key-file", env("USER_KEY_FILE", ""), "file holding the JWT secret of the user issuer (optional)")
	disableAuth := fs.Bool("disable-auth", envBool("DISABLE_AUTH", false), "serve without authentication")
	maxInflight := fs.Int("max-inflight", envInt("MAX_INFLIGHT", server.DefaultMaxInFlight), "operations in flight before answering 429")
	clusterID := fs.String("cluster-id", env("CLUSTER_ID", ""), "heketi cluster id, 32 hex digits (default: derived from the volume)")
	deletePolicy := fs.String("delete-policy", env("DELETE_POLICY", "delete"), "what DELETE does with the data: delete, archive or retain")
	mountDir := fs.String("mount-dir", env("MOUNT_DIR", ""), "where the backend mounts the volume (default /run/subvolkit/cli/...)")
	gluster := fs.String("gluster", env("GLUSTER", ""), "gluster CLI binary (default: gluster in PATH)")
	glusterArgs := fs.String("gluster-args", env("GLUSTER_ARGS", ""), "extra gluster CLI arguments, space-separated")
	strict := fs.Bool("strict-quota", envBool("STRICT_QUOTA", true), "set features.hard-timeout and soft-timeout to 0 (limits hold within ~2 MiB)")
	tlsCert := fs.String("tls-cert", env("TLS_CERT", ""), "serve HTTPS with this certificate file")
	tlsKey := fs.String("tls-key", env("TLS_KEY", ""), "and this key file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	o := &options{listen: *listen, tlsCert: *tlsCert, tlsKey: *tlsKey, shutdownWait: 30 * time.Second}
	if *volume == "" || *servers == "" {
		return nil, errors.New("-volume and -servers are required")
	}
	var hosts []string
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			hosts = append(hosts, s)
		}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	policy, err := parsePolicy(*deletePolicy)
	if err != nil {
		return nil, err
	}
	o.cli = cli.Options{
		Volume: *volume, Servers: hosts, MountDir: *mountDir,
		Runner: &cli.ShellRunner{Path: *gluster, ExtraArgs: strings.Fields(*glusterArgs)},
	}
	o.prepare = cli.PrepareOptions{StrictQuota: *strict}
	o.srv = server.Config{
		Volume: *volume, Servers: hosts, ClusterID: *clusterID, DisableAuth: *disableAuth,
		MaxInFlight: *maxInflight, DeletePolicy: policy,
	}
	if *disableAuth && (*adminKeyFile != "" || *userKeyFile != "") {
		return nil, errors.New("-disable-auth and key files contradict each other")
	}
	if !*disableAuth {
		if *adminKeyFile == "" {
			return nil, errors.New("-admin-key-file is required (or -disable-auth, explicitly)")
		}
		if o.srv.AdminKey, err = readKey(*adminKeyFile); err != nil {
			return nil, err
		}
		if *userKeyFile != "" {
			if o.srv.UserKey, err = readKey(*userKeyFile); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

func parsePolicy(s string) (subvol.DeletePolicy, error) {
	for _, p := range []subvol.DeletePolicy{subvol.DeletePolicyDelete, subvol.DeletePolicyArchive, subvol.DeletePolicyRetain} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("-delete-policy %q: want delete, archive or retain", s)
}

// readKey reads a secret from a file, without the trailing newline.
func readKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading key: %w", err)
	}
	k := strings.TrimRight(string(b), "\r\n")
	if k == "" {
		return "", fmt.Errorf("key file %s is empty", path)
	}
	return k, nil
}

func main() {
	level := new(slog.LevelVar) // heketi-cli loglevel set changes it
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heketi-server:", err)
		os.Exit(2)
	}
	o.srv.LogLevel = level
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	if err := run(ctx, o, ln, log); err != nil {
		log.Error("heketi-server", "err", err)
		os.Exit(1)
	}
}

// run opens the backend, serves on ln until ctx is done, then shuts down:
// no new requests, running operations get o.shutdownWait to finish.
func run(ctx context.Context, o *options, ln net.Listener, log *slog.Logger) error {
	defer ln.Close()
	o.cli.Logger = log
	open := o.openBackend
	if open == nil {
		open = func(ctx context.Context) (backend.Backend, error) {
			if err := cli.Prepare(ctx, o.cli.Runner, o.cli.Volume, &o.prepare); err != nil {
				return nil, err
			}
			return cli.Open(ctx, &o.cli)
		}
	}
	b, err := open(ctx)
	if err != nil {
		return err
	}
	// subvolkit's metrics follow heketi's on /metrics (no token, as heketi).
	m := metrics.New(&metrics.Options{Backend: "cli", Logger: log})
	pool := subvol.NewPool(b, &subvol.Options{Logger: log, Observer: m.Observe})
	defer pool.Close()
	go m.Run(ctx, pool)
	o.srv.Logger = log
	srv, err := server.New(ctx, o.srv, pool)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: m.Wrap(srv), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		log.Info("serving heketi's API", "addr", ln.Addr().String(), "volume", o.srv.Volume, "auth", !o.srv.DisableAuth, "tls", o.tlsCert != "")
		if o.tlsCert != "" {
			errc <- hs.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownWait)
	defer cancel()
	herr := hs.Shutdown(sctx)
	serr := srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(herr, serr)
}
