package mount

import (
	"flag"
	"io"
	"log/slog"

	"k8s.io/klog/v2"
)

// RouteKlog sends what k8s.io/klog/v2 logs to logger (nil: discard it), and
// nothing to stderr or to klog's own files.
//
// Package mount logs only through Options.Logger, but the mount-utils
// library it runs mount(8) and umount(8) through logs through klog, a
// process-wide logger that writes to stderr by default ("Mounting cmd
// (mount) with arguments (...)", at klog verbosity 4; mount-utils masks
// sensitive options itself). klog is global, so this package never changes
// it on its own: a program that wants those lines in its slog log calls
// RouteKlog once, from main, before it mounts anything. RouteKlog sets
// klog's verbosity to 4 so that the mount commands reach logger; klog's
// verbosity-V lines arrive at slog level Info-V (V(4) is Debug), so
// logger's handler decides what is kept. It is safe to call again: the
// last call wins.
func RouteKlog(logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"v": "4", "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(k, v)
	}
	klog.SetSlogLogger(logger)
}
