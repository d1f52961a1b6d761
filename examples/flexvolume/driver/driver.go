package driver

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	mountutils "k8s.io/mount-utils"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/mount"
)

// Status is the status of a reply.
type Status string

// The statuses kubelet knows.
const (
	StatusSuccess      Status = "Success"
	StatusFailure      Status = "Failure"
	StatusNotSupported Status = "Not supported"
)

// Capabilities are what init reports to kubelet. kubelet assumes true for
// every capability a driver leaves out.
type Capabilities struct {
	// Attach false: there is nothing to attach, kubelet calls mount and
	// unmount only.
	Attach bool `json:"attach"`
	// SELinuxRelabel false: FUSE mounts cannot be relabelled.
	SELinuxRelabel bool `json:"selinuxRelabel"`
	// FSGroup false: kubelet does not chown the volume's files.
	FSGroup bool `json:"fsGroup"`
}

// Reply is the JSON object the driver prints.
type Reply struct {
	Status       Status        `json:"status"`
	Message      string        `json:"message,omitempty"`
	Capabilities *Capabilities `json:"capabilities,omitempty"`
}

// ExitCode is the exit status that goes with the reply: 1 for Failure,
// 0 otherwise (as glfs-subvol does, and as kubelet expects).
func (r *Reply) ExitCode() int {
	if r.Status == StatusFailure {
		return 1
	}
	return 0
}

func failure(format string, args ...any) Reply {
	return Reply{Status: StatusFailure, Message: fmt.Sprintf(format, args...)}
}

// Driver runs FlexVolume calls. A Driver is cheap; one is made per
// invocation. It is safe for concurrent use, and so are separate processes
// with the same Config.StateDir.
type Driver struct {
	cfg   Config
	iface mountutils.Interface
	log   *Log
	// background starts the driver again, detached, with args; nil
	// means init restores shared mounts itself.
	background func(args []string) error
}

// New returns a Driver. iface performs mounts; nil means the system's
// (mount-utils' mount.New("")), anything else is for tests (see package
// mount's Options.Interface). log may be nil.
func New(cfg *Config, iface mountutils.Interface, log *Log) *Driver {
	if log == nil {
		log = NewLog(nil, time.Now())
	}
	return &Driver{cfg: *cfg, iface: iface, log: log}
}

// mounter returns the node's mounter: shared mounts under StateDir.
func (d *Driver) mounter() (*mount.Mounter, error) {
	return mount.New(&mount.Options{
		Interface:    d.iface,
		Mode:         mount.ModeShared,
		StateDir:     d.cfg.StateDir,
		LogDir:       d.cfg.GlusterLogDir,
		LogLevel:     d.cfg.GlusterLogLevel,
		ProbeTimeout: d.cfg.ProbeTimeout,
		Logger:       slog.New(d.log.Handler()),
	})
}

// Run executes one call, args being the driver's arguments without the
// program name ("mount", "<dir>", "<json>"), and returns the reply.
func (d *Driver) Run(ctx context.Context, args []string) Reply {
	if len(args) == 0 {
		return Reply{Status: StatusNotSupported, Message: "no command given"}
	}
	switch args[0] {
	case "init":
		return d.init(ctx)
	case cmdHeal:
		return d.heal(ctx)
	case "mount":
		if len(args) != 3 {
			return failure("usage: mount <mount dir> <json options>")
		}
		return d.mount(ctx, args[1], args[2])
	case "unmount":
		if len(args) != 2 {
			return failure("usage: unmount <mount dir>")
		}
		return d.unmount(ctx, args[1])
	}
	return Reply{Status: StatusNotSupported, Message: fmt.Sprintf("%s is not supported", args[0])}
}

// cmdHeal is the driver's own call that restores shared mounts, run
// detached by init; kubelet never makes it.
const cmdHeal = "heal-shared-mounts"

// init prepares the state directory and has the shared mounts whose FUSE
// client died restored (kubelet calls init when it starts and when it
// finds the driver). kubelet holds its plugin lock during init and puts no
// bound on it, so init returns at once: the restore runs in a detached
// process of the driver (cmdHeal), bounded by Config.Timeout. Without one
// (d.background nil) init restores them itself.
func (d *Driver) init(ctx context.Context) Reply {
	if _, err := d.mounter(); err != nil {
		return failure("cannot prepare %s: %v", d.cfg.StateDir, err)
	}
	r := Reply{Status: StatusSuccess, Capabilities: &Capabilities{FSGroup: d.cfg.FSGroup}}
	if d.background == nil {
		h := d.heal(ctx)
		r.Message = h.Message
		return r
	}
	if err := d.background([]string{cmdHeal}); err != nil {
		// The next mount of each volume restores it.
		d.log.Printf("WARN cannot start the restore of shared mounts: %v", err)
		return r
	}
	d.log.Printf("restoring dead shared mounts in the background")
	return r
}

// heal restores every shared mount whose FUSE client died. A failed
// restore is reported in the message but does not fail the call: the next
// mount of the volume retries it.
func (d *Driver) heal(ctx context.Context) Reply {
	m, err := d.mounter()
	if err != nil {
		return failure("cannot prepare %s: %v", d.cfg.StateDir, err)
	}
	r := Reply{Status: StatusSuccess}
	healed, err := m.Heal(ctx)
	if len(healed) > 0 {
		d.log.Printf("restored %d mount(s): %s", len(healed), strings.Join(healed, " "))
		r.Message = fmt.Sprintf("restored %d mount(s) whose GlusterFS client had died", len(healed))
	}
	if err != nil {
		d.log.Printf("WARN restoring shared mounts: %v", err)
		r.Message = strings.TrimPrefix(r.Message+"; ", "; ") + "could not restore every shared mount: " + oneLine(err.Error())
	}
	return r
}

func (d *Driver) mount(ctx context.Context, target, options string) Reply {
	req, err := ParseOptions(options)
	if err != nil {
		return failure("%v", err)
	}
	if !filepath.IsAbs(target) {
		return failure("mount dir %q is not an absolute path", target)
	}
	d.log.Printf("volserver %s", req.Servers[0])
	d.log.Printf("backupservers %s", strings.Join(req.Servers[1:], ":"))
	if len(req.Ignored) > 0 {
		d.log.Printf("ignoring options %s (glfs-subvol ignores them too)", strings.Join(req.Ignored, " "))
	}
	m, err := d.mounter()
	if err != nil {
		return failure("cannot prepare %s: %v", d.cfg.StateDir, err)
	}
	err = m.Publish(ctx, req.Subvol(), target, &mount.PublishOptions{ReadOnly: req.ReadOnly})
	if err != nil {
		return failure("cannot mount %s of volume %s from %s on %s: %s",
			req.Dir, req.Volume, strings.Join(req.Servers, ", "), target, d.explain(ctx, req, err))
	}
	msg := fmt.Sprintf("volserver=%s backup=%s volume=%s", req.Servers[0], strings.Join(req.Servers[1:], ":"), req.Volume)
	if sh, ok := sharedOf(m, target); ok {
		msg += fmt.Sprintf(" mountpoint=%s source=%s", sh.Path, sh.Source)
	}
	msg += fmt.Sprintf(" bindto=%s dir=%s readonly=%t", target, req.Dir, req.ReadOnly)
	return Reply{Status: StatusSuccess, Message: msg}
}

// explain turns a mount error into a one-line message for a person.
func (d *Driver) explain(ctx context.Context, req *Request, err error) string {
	var hint string
	switch subvolkit.KindOf(err) {
	case subvolkit.NotFound:
		hint = "the directory does not exist on the volume (create it first)"
	case subvolkit.PermissionDenied:
		hint = "the servers refused this node (auth.allow?)"
	case subvolkit.AlreadyExists:
		hint = "something else is mounted there"
	case subvolkit.Canceled, subvolkit.DeadlineExceeded:
		hint = "the driver ran out of time or was stopped"
	case subvolkit.InvalidArgument:
	default:
		// Say that no server answers only when none does (the mount
		// package probes only when there are several); otherwise the
		// glusterfs client's own reason, quoted in err, is the cause.
		if why := d.unreachable(ctx, req.Servers); why != "" {
			hint = "no server of the cluster could be reached (" + why + ")"
		} else if missingVolume(err) {
			hint = fmt.Sprintf("the servers do not serve volume %q (is it created and started?)", req.Volume)
		}
	}
	msg := oneLine(err.Error())
	if hint == "" {
		return msg
	}
	return hint + ": " + msg
}

// missingVolume reports whether a mount failed because the servers have no
// such volume: glusterd refuses the volfile ("failed to fetch volume
// file", "Server-side volume ... does not exist").
func missingVolume(err error) bool {
	m := err.Error()
	return strings.Contains(m, "failed to fetch volume file") || strings.Contains(m, "failed to get the 'volume file'") ||
		(strings.Contains(m, "volume") && strings.Contains(m, "does not exist"))
}

// unreachable dials glusterd's port on every server, in parallel, and
// returns why none answered, or "" if one did (or probing is off).
func (d *Driver) unreachable(ctx context.Context, servers []string) string {
	timeout := d.cfg.ProbeTimeout
	if timeout < 0 || ctx.Err() != nil {
		return ""
	}
	if timeout == 0 {
		timeout = mount.DefaultProbeTimeout
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dl := net.Dialer{Timeout: timeout}
			c, err := dl.DialContext(ctx, "tcp", net.JoinHostPort(s, strconv.Itoa(mount.DefaultProbePort)))
			if err == nil {
				_ = c.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var why []string
	for _, err := range errs {
		if err == nil {
			return ""
		}
		why = append(why, err.Error())
	}
	return strings.Join(why, "; ")
}

// oneLine joins the lines of s (mount-utils quotes mount's output).
func oneLine(s string) string {
	var parts []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// sharedOf finds the shared mount that target is bound to.
func sharedOf(m *mount.Mounter, target string) (mount.SharedMount, bool) {
	sms, err := m.SharedMounts()
	if err != nil {
		return mount.SharedMount{}, false
	}
	canon := target
	if r, err := filepath.EvalSymlinks(target); err == nil {
		canon = r
	}
	for _, sm := range sms {
		for _, b := range sm.Binds {
			if b.Target == canon || b.Target == target {
				return sm, true
			}
		}
	}
	return mount.SharedMount{}, false
}

func (d *Driver) unmount(ctx context.Context, target string) Reply {
	if !filepath.IsAbs(target) {
		return failure("mount dir %q is not an absolute path", target)
	}
	m, err := d.mounter()
	if err != nil {
		return failure("cannot prepare %s: %v", d.cfg.StateDir, err)
	}
	sh, wasShared := sharedOf(m, target)
	legacy, wasLegacy := d.legacyOf(target)
	wasMounted := wasShared || wasLegacy || d.mountedAt(target)
	if err := m.Unpublish(ctx, target); err != nil {
		return failure("cannot unmount %s: %v", target, err)
	}
	switch {
	case wasLegacy:
		released, err := d.releaseLegacy(ctx, legacy)
		if err != nil {
			return failure("unmounted %s, but not glfs-subvol's shared mount %s: %v", target, legacy, err)
		}
		msg := fmt.Sprintf("unmounted %s from glfs-subvol's shared mount %s", target, legacy)
		if released {
			msg += "; it was the last one, the shared mount is unmounted"
		}
		return Reply{Status: StatusSuccess, Message: msg}
	case !wasMounted:
		return Reply{Status: StatusSuccess, Message: fmt.Sprintf("%s was not mounted", target)}
	case !wasShared:
		return Reply{Status: StatusSuccess, Message: fmt.Sprintf("unmounted %s (it was not a bind of a shared mount)", target)}
	}
	msg := fmt.Sprintf("unmounted %s from %s", target, sh.Path)
	if after, ok := sharedByPath(m, sh.Path); ok {
		msg += fmt.Sprintf("; the shared mount stays for %d other mount(s)", len(after.Binds))
	} else {
		msg += "; it was the last one, the shared mount is unmounted"
	}
	return Reply{Status: StatusSuccess, Message: msg}
}

// mountedAt reports whether something is mounted on target, from the
// mount table (a stat could hang on a dead FUSE mount). When the table
// cannot be read it says true.
func (d *Driver) mountedAt(target string) bool {
	canon := target
	if r, err := filepath.EvalSymlinks(target); err == nil {
		canon = r
	}
	if d.iface != nil {
		mps, err := d.iface.List()
		if err != nil {
			return true
		}
		for _, mp := range mps {
			if mp.Path == canon || mp.Path == target {
				return true
			}
		}
		return false
	}
	infos, err := mountutils.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, mi := range infos {
		if p := unescapeOctal(mi.MountPoint); p == canon || p == target {
			return true
		}
	}
	return false
}

// unescapeOctal decodes the \NNN escapes of mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func sharedByPath(m *mount.Mounter, p string) (mount.SharedMount, bool) {
	sms, err := m.SharedMounts()
	if err != nil {
		return mount.SharedMount{}, false
	}
	for _, sm := range sms {
		if sm.Path == p {
			return sm, true
		}
	}
	return mount.SharedMount{}, false
}

// Main is the whole driver program: it reads its configuration with
// getenv, runs the call in args (os.Args[1:]), writes the JSON reply to
// stdout and returns the exit code. It routes klog (which mount-utils logs
// through) into the driver's log, a process-wide setting: call it once per
// process.
func Main(args []string, getenv func(string) string, stdout io.Writer) int {
	start := time.Now()
	cfg, cfgErr := ConfigFromEnv(getenv)
	// Log even when the rest of the configuration is wrong (but not to a
	// file the administrator did not choose).
	logFile, err := LogFileFromEnv(getenv)
	if err != nil {
		logFile = ""
	}
	log, _ := OpenLog(logFile, start) // the driver works without its log
	defer log.Close()
	routeKlog(log.Handler())
	logArgs(log, args)

	var reply Reply
	if cfgErr != nil {
		reply = failure("configuration: %v", cfgErr)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		if cfg.LegacyMountDir == "" {
			if exe, err := os.Executable(); err == nil {
				cfg.LegacyMountDir = filepath.Join(filepath.Dir(exe), ".mnt")
			}
		}
		d := New(cfg, nil, log)
		d.background = spawn
		reply = d.Run(ctx, args)
	}
	out, err := json.Marshal(reply)
	if err != nil { // cannot happen: Reply has only strings and bools
		out = []byte(`{"status":"Failure","message":"cannot encode the reply"}`)
		reply.Status = StatusFailure
	}
	code := reply.ExitCode()
	log.Reply(code, string(out))
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		log.Printf("writing the reply: %v", err)
		return 1
	}
	return code
}

// spawn starts this program again with args, detached: in a session of
// its own, with no standard streams (kubelet reads the driver's output until
// every writer has closed it), not waited for.
func spawn(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// logArgs logs the arguments, with the secrets kubelet passes in the mount
// options masked.
func logArgs(log *Log, args []string) {
	if len(args) == 3 && args[0] == "mount" {
		args = []string{args[0], args[1], maskSecrets(args[2])}
	}
	log.Args(args)
}

// routeKlog sends klog's output, which must never reach stdout or stderr
// (kubelet parses the combined output), to h, at verbosity 4, where
// mount-utils logs the mount and umount commands it runs.
func routeKlog(h slog.Handler) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	klog.InitFlags(fs)
	_ = fs.Set("v", "4")
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	klog.SetSlogLogger(slog.New(h))
}
