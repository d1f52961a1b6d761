// Command provisioner is a Kubernetes external provisioner that carves
// quota-limited subvolumes out of GlusterFS volumes through subvolkit, for
// StorageClasses of provisioner subvolkit.io/glusterfs (or gluster.org/glusterfile).
// It accepts the in-tree kubernetes.io/glusterfs plugin's StorageClass
// parameters; see README.md.
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
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
	libmetrics "sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller/metrics"

	"github.com/subvolkit/subvolkit/examples/metrics"
	"github.com/subvolkit/subvolkit/examples/provisioner/provision"
	"github.com/subvolkit/subvolkit/subvol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

type flags struct {
	name, kubeconfig, metricsAddr  string
	leaderElect                    bool
	leNamespace                    string
	leaseDuration, renew, retry    time.Duration
	glusterPath, glusterArgs       string
	endpointsResync, retryStart    time.Duration
	threads, resizeWorkers         int
	crossNamespaceClone, debugLogs bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("provisioner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.name, "provisioner-name", provision.DefaultName, "the provisioner name StorageClasses name; "+provision.LegacyName+" is always accepted too")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&f.metricsAddr, "metrics-address", ":9810", "address of the /metrics endpoint (empty: none)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader among replicas (a Lease named after the provisioner)")
	fs.StringVar(&f.leNamespace, "leader-elect-namespace", envOr("POD_NAMESPACE", "default"), "namespace of the leader election Lease")
	fs.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "leader election lease duration")
	fs.DurationVar(&f.renew, "leader-elect-renew-deadline", 10*time.Second, "leader election renew deadline")
	fs.DurationVar(&f.retry, "leader-elect-retry-period", 2*time.Second, "leader election retry period")
	fs.StringVar(&f.glusterPath, "gluster-path", "", "gluster CLI binary for the cli backend (default: gluster in PATH)")
	fs.StringVar(&f.glusterArgs, "gluster-args", "", "extra gluster CLI arguments for the cli backend, space-separated (such as --glusterd-sock=PATH)")
	fs.DurationVar(&f.endpointsResync, "endpoints-resync", 30*time.Second, "how often Endpoints and Services of glusterfs PVs are checked (deletions are seen at once)")
	fs.DurationVar(&f.retryStart, "retry-interval-start", time.Second, "first retry delay of a failed provisioning or deletion (doubles up to 5 minutes)")
	fs.IntVar(&f.threads, "worker-threads", 8, "concurrent provisioning and deletion operations")
	fs.IntVar(&f.resizeWorkers, "resize-workers", 2, "concurrent expansions")
	fs.BoolVar(&f.crossNamespaceClone, "allow-cross-namespace-clone", false, "let k8s.io/CloneRequest name a claim of another namespace")
	fs.BoolVar(&f.debugLogs, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if f.name == "" || strings.Count(f.name, "/") > 1 {
		return nil, fmt.Errorf("--provisioner-name %q: want a name such as %s", f.name, provision.DefaultName)
	}
	return f, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "provisioner:", err)
		return 2
	}
	level := slog.LevelInfo
	if f.debugLogs {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, f, logger); err != nil {
		logger.Error("provisioner stopped", "err", err)
		return 1
	}
	return 0
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return rest.InClusterConfig()
}

func serve(ctx context.Context, f *flags, logger *slog.Logger) error {
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	provMetrics := provision.NewMetrics(reg)
	// Pool operations through the metrics every front end mounts, one
	// instance (registry) per backend label.
	gatherers := prometheus.Gatherers{reg}
	observers := map[string]subvol.Observer{}
	for _, be := range []string{provision.BackendCLI, provision.BackendHeketi} {
		r := prometheus.NewRegistry()
		observers[be] = metrics.New(&metrics.Options{Backend: be, Registry: r, NoNode: true, Logger: logger}).Observe
		gatherers = append(gatherers, r)
	}
	lib := libmetrics.New("controller")
	reg.MustRegister(lib.PersistentVolumeClaimProvisionTotal, lib.PersistentVolumeClaimProvisionFailedTotal,
		lib.PersistentVolumeClaimProvisionDurationSeconds, lib.PersistentVolumeDeleteTotal,
		lib.PersistentVolumeDeleteFailedTotal, lib.PersistentVolumeDeleteDurationSeconds)
	if f.metricsAddr != "" {
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		logger.Info("serving metrics", "address", ln.Addr().String())
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: strings.ReplaceAll(f.name, "/", "-")})

	backendParams := map[string]map[string]string{provision.BackendCLI: {}}
	if f.glusterPath != "" {
		backendParams[provision.BackendCLI]["glusterpath"] = f.glusterPath
	}
	if f.glusterArgs != "" {
		backendParams[provision.BackendCLI]["glusterargs"] = f.glusterArgs
	}
	prov := provision.New(provision.Config{
		Name:                     f.name,
		Client:                   client,
		BackendParams:            backendParams,
		AllowCrossNamespaceClone: f.crossNamespaceClone,
		Logger:                   logger,
		Metrics:                  provMetrics,
		PoolObservers:            observers,
		Events:                   recorder,
	})
	defer prov.Close()

	lead := func(ctx context.Context) {
		names := prov.Names()
		pc := controller.NewProvisionController(ctx, client, names[0], prov,
			controller.AdditionalProvisionerNames(names[1:]),
			controller.LeaderElection(false), // done here, for every loop
			controller.MetricsInstance(lib),
			controller.MetricsPort(0),
			controller.Threadiness(f.threads),
			controller.RateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[string](f.retryStart, 5*time.Minute)),
			controller.FailedProvisionThreshold(0),
			controller.FailedDeleteThreshold(0),
		)
		go prov.KeepEndpoints(ctx, f.endpointsResync)
		go prov.ResizeLoop(ctx, f.resizeWorkers)
		logger.Info("provisioning", "names", names)
		pc.Run(ctx)
	}
	if !f.leaderElect {
		lead(ctx)
		return nil
	}
	host, _ := os.Hostname()
	id := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, f.leNamespace, strings.ReplaceAll(f.name, "/", "-"),
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
	if err != nil {
		return err
	}
	lost := make(chan struct{})
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   f.leaseDuration,
		RenewDeadline:   f.renew,
		RetryPeriod:     f.retry,
		ReleaseOnCancel: true,
		Name:            f.name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				logger.Info("became leader", "id", id)
				lead(ctx)
			},
			OnStoppedLeading: func() { close(lost) },
		},
	})
	if ctx.Err() != nil {
		return nil
	}
	select {
	case <-lost:
		return errors.New("lost the leader election")
	default:
		return nil
	}
}
