package mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	mountutils "k8s.io/mount-utils"

	"github.com/hashicorp/go-multierror"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/subvol"
)

// Mode selects how Publish mounts a subvolume.
type Mode int

const (
	// ModeDeep gives every target its own FUSE mount of the subvolume's
	// directory ("host:/volume/dir"): one glusterfs process per target.
	ModeDeep Mode = iota
	// ModeShared mounts each volume once per node, under the state
	// directory, and bind-mounts the subvolume's directory on each target.
	ModeShared
)

// String returns "deep" or "shared".
func (m Mode) String() string {
	switch m {
	case ModeDeep:
		return "deep"
	case ModeShared:
		return "shared"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Defaults for Options.
const (
	DefaultStateDir     = "/run/subvolkit/mount"
	DefaultLogDir       = "/var/log/glusterfs/subvolkit"
	DefaultLogLevel     = "INFO"
	DefaultProbeTimeout = 1500 * time.Millisecond
	DefaultProbePort    = 24007
)

// Options configure a Mounter. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// Interface performs mounts and unmounts. Default: mount.New("") from
	// k8s.io/mount-utils, which runs mount(8) and umount(8). The mount
	// table is read from /proc/self/mountinfo and dead mounts are
	// unmounted lazily with umount2(MNT_DETACH), except with mount-utils'
	// *FakeMounter or a type that embeds it (anything with its GetLog
	// method): then List gives the table and Unmount is used for
	// everything, so code built on a Mounter can be unit-tested.
	Interface mountutils.Interface
	// Mode is ModeDeep (the default) or ModeShared.
	Mode Mode
	// StateDir holds the shared mounts, their descriptions and the lock
	// files. Default DefaultStateDir. Every process that publishes on a
	// node must use the same StateDir.
	StateDir string
	// LogDir receives one glusterfs client log per deep mount and per
	// shared mount. Default DefaultLogDir.
	LogDir string
	// LogLevel is the glusterfs client log level (CRITICAL, ERROR,
	// WARNING, INFO, DEBUG, TRACE or NONE). Default DefaultLogLevel. A
	// "log-level=" mount option overrides it for one mount.
	LogLevel string
	// ProbeTimeout bounds each TCP probe of a volfile server before a
	// mount. Default DefaultProbeTimeout; negative turns probing off.
	ProbeTimeout time.Duration
	// ProbePort is the port probed. Default DefaultProbePort (glusterd).
	ProbePort int
	// Logger receives what the Mounter does. Default: discard. Secret
	// mount options are never logged.
	Logger *slog.Logger
}

// PublishOptions tune one Publish. A nil *PublishOptions means a
// read-write mount with no extra options.
type PublishOptions struct {
	// ReadOnly publishes the subvolume read-only. A "ro" mount option
	// does the same.
	ReadOnly bool
	// MountOptions are passed to mount.glusterfs ("key=value" or "flag")
	// after the Subvol's own MountOptions; a later key replaces an
	// earlier one. backup-volfile-servers (colon- or comma-separated, as
	// heketi reports it) adds servers to the Subvol's
	// list; log-level and log-file replace the Mounter's choice. In
	// ModeShared they apply to the shared mount, so subvolumes published
	// with different options get different shared mounts.
	MountOptions []string
	// SensitiveOptions are passed to mount.glusterfs like MountOptions
	// but never logged, never written to disk, and masked in errors.
	// In ModeShared, Heal can only remount a shared mount that has
	// sensitive options from the process that published it.
	SensitiveOptions []string
}

// Mounter publishes subvolumes on target directories. It is safe for
// concurrent use by multiple goroutines, and by multiple processes that use
// the same StateDir.
type Mounter struct {
	iface        mountutils.Interface
	mode         Mode
	stateDir     string // canonical
	sharedDir    string // stateDir/shared: shared mount points and their descriptions
	logDir       string
	logLevel     string
	probeTimeout time.Duration
	probePort    int
	log          *slog.Logger
	locks        keyedlock.Locker

	// Hooks; tests replace them.
	mountTable func() (table, error)   // the current mount table
	checkPath  func(path string) error // statfs; a corrupted-mount error means stale
	detach     func(path string) error // lazy unmount

	mu      sync.Mutex
	secrets map[string][]string // shared key → sensitive options, never on disk
}

// New returns a Mounter. It creates StateDir and LogDir if they are missing.
// Invalid options are errors of kind InvalidArgument.
func New(opts *Options) (*Mounter, error) {
	const op = "mount.New"
	if opts == nil {
		opts = &Options{}
	}
	m := &Mounter{
		iface:        opts.Interface,
		mode:         opts.Mode,
		logDir:       opts.LogDir,
		logLevel:     strings.ToUpper(opts.LogLevel),
		probeTimeout: opts.ProbeTimeout,
		probePort:    opts.ProbePort,
		log:          opts.Logger,
		secrets:      map[string][]string{},
	}
	if m.mode != ModeDeep && m.mode != ModeShared {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "unknown mode %d", int(m.mode))
	}
	if m.logLevel == "" {
		m.logLevel = DefaultLogLevel
	}
	if !slices.Contains(logLevels, m.logLevel) {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "invalid log level %q: want one of %s",
			opts.LogLevel, strings.Join(logLevels, ", "))
	}
	if m.probeTimeout == 0 {
		m.probeTimeout = DefaultProbeTimeout
	}
	if m.probePort == 0 {
		m.probePort = DefaultProbePort
	}
	if m.probePort < 0 || m.probePort > 65535 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "invalid probe port %d", m.probePort)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if m.logDir == "" {
		m.logDir = DefaultLogDir
	}
	if !filepath.IsAbs(stateDir) || !filepath.IsAbs(m.logDir) {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "StateDir and LogDir must be absolute paths")
	}
	for _, d := range []string{filepath.Join(stateDir, "shared"), filepath.Join(stateDir, "locks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, subvolkit.E(subvolkit.Unknown, op, "", err)
		}
	}
	if err := os.MkdirAll(m.logDir, 0o755); err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, op, "", err)
	}
	// The mount table shows canonical paths.
	canon, err := filepath.EvalSymlinks(stateDir)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, op, "", err)
	}
	m.stateDir = canon
	m.sharedDir = filepath.Join(canon, "shared")
	// Named locks hold across goroutines (in memory) and across
	// processes (flock on <dir>/<name>.lock), since FlexVolume calls are
	// separate processes.
	m.locks = keyedlock.Stack(&keyedlock.Map{}, keyedlock.Files{Dir: filepath.Join(canon, "locks")})

	m.checkPath = statfsPath
	if m.iface == nil {
		m.iface = mountutils.New("")
	}
	if _, fake := m.iface.(fakeMounter); !fake {
		m.mountTable = func() (table, error) { return readMountInfoFile("/proc/self/mountinfo") }
		m.detach = func(p string) error {
			err := syscall.Unmount(p, syscall.MNT_DETACH)
			if errors.Is(err, syscall.EINVAL) { // not a mount point (any more)
				return nil
			}
			if err != nil {
				return &os.PathError{Op: "umount -l", Path: p, Err: err}
			}
			return nil
		}
	} else {
		iface := m.iface
		m.mountTable = func() (table, error) { return listTable(iface) }
		m.detach = iface.Unmount
	}
	return m, nil
}

// fakeMounter is implemented by mount-utils' FakeMounter and by types that
// embed it.
type fakeMounter interface {
	GetLog() []mountutils.FakeAction
}

// statfsPath is the health check: statfs always reaches the FUSE daemon,
// where stat may be answered from the kernel's attribute cache.
func statfsPath(p string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: p, Err: err}
	}
	return nil
}

// health checks that p answers, giving up when ctx ends (statfs on a FUSE
// mount whose servers are unreachable blocks for the ping timeout).
func (m *Mounter) health(ctx context.Context, p string) error {
	ch := make(chan error, 1)
	go func() { ch <- m.checkPath(p) }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Mounter) table() (table, error) {
	t, err := m.mountTable()
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return t, nil
}

// canonicalTarget checks that target is an absolute path outside the state
// directory and resolves symbolic links in it, as the mount table shows it.
func (m *Mounter) canonicalTarget(target string) (string, error) {
	if target == "" || !filepath.IsAbs(target) || strings.ContainsAny(target, ",\n\x00") {
		return "", kindErrorf(subvolkit.InvalidArgument, "target %q is not an absolute path", target)
	}
	target = filepath.Clean(target)
	if target == "/" {
		return "", kindErrorf(subvolkit.InvalidArgument, "target is /")
	}
	if fi, err := os.Lstat(target); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if r, err := filepath.EvalSymlinks(target); err == nil {
			target = r
		}
	} else if dir, err := filepath.EvalSymlinks(filepath.Dir(target)); err == nil {
		target = filepath.Join(dir, filepath.Base(target))
	}
	if mountutils.PathWithinBase(target, m.stateDir) {
		return "", kindErrorf(subvolkit.InvalidArgument, "target %q is inside the state directory %s", target, m.stateDir)
	}
	return target, nil
}

// lockErr classifies a failure to take a lock.
func lockErr(op, name string, err error) error {
	return subvolkit.E(subvolkit.Unknown, op, name, fmt.Errorf("taking the lock: %w", err))
}

// Publish mounts the subvolume sv on target, creating the target directory
// if needed. It verifies the mount in the mount table before it returns,
// and undoes it if it is not there (glusterfs reports success for a missing
// directory or a refused client and exits afterwards); the error then
// quotes the reason from the glusterfs client log.
//
// Publishing the same subvolume (same volume and path, from one of its
// servers, same read-only setting) on the same target again does nothing; a
// different one on a mounted target is AlreadyExists. A target whose FUSE
// client has died is cleaned up and mounted again (in ModeShared, the
// shared mount and all its binds are restored).
//
// Errors: InvalidArgument for bad input (nothing is mounted), NotFound when
// the directory does not exist on the volume, PermissionDenied when the
// servers refuse this client, Unavailable when no server could be reached.
func (m *Mounter) Publish(ctx context.Context, sv *subvol.Subvol, target string, opts *PublishOptions) error {
	const op = "publish"
	p, err := newPlan(sv, opts)
	if err != nil {
		return err
	}
	target, err = m.canonicalTarget(target)
	if err != nil {
		return subvolkit.WithOp(op, p.name, err)
	}
	unlock, err := m.locks.Lock(ctx, "target-"+hashName(target))
	if err != nil {
		return lockErr(op, p.name, err)
	}
	defer unlock()
	if m.mode == ModeShared {
		err = m.publishShared(ctx, p, target)
	} else {
		err = m.publishDeep(ctx, p, target)
	}
	if err != nil {
		return subvolkit.WithOp(op, p.name, err)
	}
	return nil
}

// errDone means the target already shows what was asked for.
var errDone = errors.New("already published")

// checkTarget looks at what is mounted on target. It returns errDone when
// the plan is already published there, nil when target is free, stale=true
// (and nil) when target has a mount of the plan whose client has died, and
// an error when target holds something else.
func (m *Mounter) checkTarget(ctx context.Context, p *plan, target string, t table) (stale bool, err error) {
	top, ok := t.top(target)
	if !ok {
		return false, nil
	}
	host, shows := top.shows()
	if !p.matches(top) {
		what := top.Source + " (" + top.FSType + ")"
		if shows != "" {
			what = host + ":" + shows
		}
		return false, kindErrorf(subvolkit.AlreadyExists, "target %s already has %s mounted, want %s", target, what, p.want())
	}
	herr := m.health(ctx, target)
	switch {
	case herr == nil:
	case isStale(herr):
		m.log.Warn("stale mount on target", "target", target, "source", top.Source, "err", herr)
		return true, nil
	default:
		return false, fmt.Errorf("checking %s: %w", target, herr)
	}
	if top.readOnly() != p.readOnly {
		return false, kindErrorf(subvolkit.AlreadyExists, "target %s already has %s mounted with read-only=%t, want read-only=%t",
			target, p.want(), top.readOnly(), p.readOnly)
	}
	m.log.Debug("already published", "target", target, "volume", p.volume, "path", p.subdir)
	return false, errDone
}

// matches reports whether e shows the plan's directory from one of its servers.
func (p *plan) matches(e mountEntry) bool {
	host, shows := e.shows()
	return shows == p.want() && slices.Contains(p.servers, host)
}

func (m *Mounter) publishDeep(ctx context.Context, p *plan, target string) error {
	t, err := m.table()
	if err != nil {
		return err
	}
	stale, err := m.checkTarget(ctx, p, target, t)
	if errors.Is(err, errDone) {
		return nil
	}
	if err != nil {
		return err
	}
	if stale {
		if err := m.unmountAll(ctx, target, true); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return withKind(subvolkit.Unknown, err)
	}
	logFile := p.logFile
	if logFile == "" {
		logFile = m.deepLog(target)
	}
	_, err = m.mountFUSE(ctx, p, p.subdir, target, logFile, p.readOnly)
	return err
}

// deepLog is the client log of a deep mount on target.
func (m *Mounter) deepLog(target string) string {
	return filepath.Join(m.logDir, "deep-"+hashName(target)+".log")
}

// sharedLog is the client log of the shared mount key.
func (m *Mounter) sharedLog(key string) string {
	return filepath.Join(m.logDir, "shared-"+key+".log")
}

// mountFUSE mounts sub ("" or "/dir") of the plan's volume on mp with
// glusterfs, after probing the servers, and verifies it. On failure it
// removes whatever it left on mp. It returns the new mount's entry.
func (m *Mounter) mountFUSE(ctx context.Context, p *plan, sub, mp, logFile string, readOnly bool) (mountEntry, error) {
	if err := ctx.Err(); err != nil {
		return mountEntry{}, err
	}
	order := probeResult{ordered: p.servers, live: -1}
	if m.probeTimeout > 0 && len(p.servers) > 1 {
		var err error
		if order, err = probe(ctx, p.servers, m.probePort, m.probeTimeout); err != nil {
			return mountEntry{}, err
		}
		if order.live == 0 {
			m.log.Warn("no volfile server answered the probe; trying them in the given order",
				"servers", p.servers, "port", m.probePort, "timeout", m.probeTimeout)
		}
	}
	if order.live == 0 {
		order.ordered = p.servers
	}
	level := p.logLevel
	if level == "" {
		level = m.logLevel
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return mountEntry{}, err
	}
	var offset int64
	if fi, err := os.Stat(logFile); err == nil {
		offset = fi.Size()
	}
	src := order.ordered[0] + ":" + volPath(p.volume, sub)
	opts := fuseOptions(p, order.ordered, logFile, level, readOnly)
	msk := newMasker(p.sensitive)
	start := time.Now()
	mountErr := m.iface.MountSensitive(src, mp, "glusterfs", opts, p.sensitive)
	if mountErr != nil {
		// mount-utils' error spans lines (command, arguments, output).
		mountErr = errors.New(strings.ReplaceAll(strings.TrimSpace(mountErr.Error()), "\n", "; "))
	}
	var e mountEntry
	if mountErr == nil {
		e, mountErr = m.verify(ctx, mp, func(e mountEntry) bool {
			host, shows := e.shows()
			return host == order.ordered[0] && shows == volPath(p.volume, sub) && e.Root == "/"
		})
	}
	if mountErr != nil {
		if err := m.unmountAll(context.WithoutCancel(ctx), mp, true); err != nil {
			m.log.Error("cleaning up after a failed mount", "mountpoint", mp, "err", msk.maskErr(err))
		}
		if errors.Is(mountErr, context.Canceled) || errors.Is(mountErr, context.DeadlineExceeded) {
			return mountEntry{}, mountErr
		}
		reason, kind := logReason(readLogTail(logFile, offset))
		if kind == subvolkit.Unknown && order.live < 0 && m.probeTimeout > 0 {
			// Not probed before the mount (one server): an unreachable
			// server is Unavailable, whatever the client logged.
			if pr, err := probe(context.WithoutCancel(ctx), p.servers, m.probePort, m.probeTimeout); err == nil && pr.live == 0 {
				order.live = 0
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "mount %s on %s: ", src, mp)
		if reason != "" {
			fmt.Fprintf(&b, "%s: ", reason)
		}
		if order.live == 0 {
			if kind == subvolkit.Unknown {
				kind = subvolkit.Unavailable
			}
			fmt.Fprintf(&b, "(no volfile server answered on port %d within %s; tried %s in the given order) ",
				m.probePort, m.probeTimeout, strings.Join(p.servers, ", "))
		}
		err := fmt.Errorf("%s%w (client log %s)", b.String(), mountErr, logFile)
		m.log.Error("mount failed", "source", src, "mountpoint", mp, "options", opts,
			"sensitive_options", len(p.sensitive), "err", msk.maskErr(err))
		return mountEntry{}, withKind(kind, msk.maskErr(err))
	}
	if err := ctx.Err(); err != nil {
		if uerr := m.unmountAll(context.WithoutCancel(ctx), mp, false); uerr != nil {
			m.log.Error("undoing a mount after cancellation", "mountpoint", mp, "err", uerr)
		}
		return mountEntry{}, err
	}
	m.log.Info("mounted", "source", src, "mountpoint", mp, "options", opts,
		"sensitive_options", len(p.sensitive), "servers_live", order.live, "duration", time.Since(start))
	return e, nil
}

// errNotMounted is the verification failure when mount(8) succeeded but
// nothing (or something else) is mounted.
var errNotMounted = errors.New("mount reported success but the mount is not in the mount table")

// verify checks that mp answers statfs and that the mount table shows a
// mount on mp that ok accepts, and returns it.
func (m *Mounter) verify(ctx context.Context, mp string, ok func(mountEntry) bool) (mountEntry, error) {
	if err := m.health(ctx, mp); err != nil {
		if ctx.Err() != nil {
			return mountEntry{}, ctx.Err()
		}
		return mountEntry{}, fmt.Errorf("mount reported success but %w", err)
	}
	t, err := m.table()
	if err != nil {
		return mountEntry{}, err
	}
	e, found := t.top(mp)
	if !found || !ok(e) {
		return mountEntry{}, errNotMounted
	}
	return e, nil
}

// unmountAll removes every mount stacked on mp: a lazy unmount when lazy is
// set or when a mount's client has died, umount(8) otherwise. It returns nil
// when nothing is mounted on mp any more.
func (m *Mounter) unmountAll(ctx context.Context, mp string, lazy bool) error {
	// A mount is often busy for a moment only (a FUSE flush after the last
	// close, another process's stat in flight): retry "busy" for a bounded
	// time before reporting it.
	busyDelay, busyBudget := 50*time.Millisecond, 3*time.Second
	for range 16 {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := m.table()
		if err != nil {
			return err
		}
		e, ok := t.top(mp)
		if !ok {
			return nil
		}
		if lazy {
			err = m.detach(mp)
		} else if err = m.iface.Unmount(mp); err != nil {
			if herr := m.health(ctx, mp); isStale(herr) {
				err = m.detach(mp)
			}
		}
		for err != nil && !lazy && strings.Contains(err.Error(), "busy") && busyBudget > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(busyDelay):
			}
			busyBudget -= busyDelay
			busyDelay = min(2*busyDelay, 800*time.Millisecond)
			err = m.iface.Unmount(mp)
		}
		if err != nil {
			kind := subvolkit.Unknown
			if strings.Contains(err.Error(), "busy") {
				kind = subvolkit.FailedPrecondition
			}
			return withKind(kind, fmt.Errorf("unmounting %s from %s: %w", e.Source, mp, err))
		}
		m.log.Info("unmounted", "mountpoint", mp, "source", e.Source, "lazy", lazy)
	}
	return kindErrorf(subvolkit.Internal, "%s is still mounted after 16 unmounts", mp)
}

// Unpublish unmounts target and removes the target directory if it is
// empty. A target that is not mounted, or does not exist, is success. In
// ModeShared (and for any target that is a bind of a shared mount, whatever
// the Mounter's mode), the shared mount is unmounted when its last bind goes.
// A target whose FUSE client has died is unmounted lazily.
//
// Errors: InvalidArgument for a relative target; FailedPrecondition when
// the target is busy.
func (m *Mounter) Unpublish(ctx context.Context, target string) error {
	const op = "unpublish"
	target, err := m.canonicalTarget(target)
	if err != nil {
		return subvolkit.WithOp(op, "", err)
	}
	unlock, err := m.locks.Lock(ctx, "target-"+hashName(target))
	if err != nil {
		return lockErr(op, "", err)
	}
	defer unlock()
	if err := m.unpublish(ctx, target); err != nil {
		return subvolkit.WithOp(op, "", err)
	}
	return nil
}

func (m *Mounter) unpublish(ctx context.Context, target string) error {
	t, err := m.table()
	if err != nil {
		return err
	}
	top, ok := t.top(target)
	if !ok {
		m.removeTarget(target)
		return nil
	}
	key, shared := m.sharedOf(t, top)
	if !shared {
		if err := m.unmountAll(ctx, target, false); err != nil {
			return err
		}
		if top.isGluster() {
			_ = os.Remove(m.deepLog(target))
		}
		m.removeTarget(target)
		return nil
	}
	unlock, err := m.locks.Lock(ctx, "shared-"+key)
	if err != nil {
		return fmt.Errorf("taking the lock: %w", err)
	}
	defer unlock()
	if err := m.unmountAll(ctx, target, false); err != nil {
		return err
	}
	m.removeTarget(target)
	return m.releaseShared(ctx, key)
}

// removeTarget removes the target directory if it is empty.
func (m *Mounter) removeTarget(target string) {
	err := os.Remove(target)
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.ENOTDIR) {
		m.log.Warn("removing target directory", "target", target, "err", err)
	}
}

// sharedOf returns the key of the shared mount that e is a bind of.
func (m *Mounter) sharedOf(t table, e mountEntry) (key string, ok bool) {
	if !e.isGluster() {
		return "", false
	}
	for _, o := range t {
		if o.dev() == e.dev() && o.isGluster() && filepath.Dir(o.MountPoint) == m.sharedDir {
			return filepath.Base(o.MountPoint), true
		}
	}
	return "", false
}

// isShared reports whether mp is one of the shared mount points.
func (m *Mounter) isShared(mp string) bool { return filepath.Dir(mp) == m.sharedDir }

// Heal restores every shared mount whose FUSE client has died ("Transport
// endpoint is not connected"): it lazily unmounts it, mounts the volume
// again and replaces each of its bind mounts with a fresh one showing the
// same directory, read-only where it was. It also unmounts shared mounts
// that no target uses any more (left by a crash). It returns the targets it
// restored. Deep mounts are not healed here; Publish remounts them.
//
// Processes already using a restored target keep the dead mount: containers
// see the new one only if their mount propagation is HostToContainer.
func (m *Mounter) Heal(ctx context.Context) (healed []string, err error) {
	const op = "heal"
	t, err := m.table()
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, op, "", err)
	}
	var keys []string
	for _, e := range t {
		if e.isGluster() && m.isShared(e.MountPoint) {
			keys = append(keys, filepath.Base(e.MountPoint))
		}
	}
	keys = append(keys, m.restoreKeys()...) // restores that failed earlier
	slices.Sort(keys)
	// One failed shared mount does not stop the others: the failures are
	// gathered, each with its kind.
	var errs *multierror.Error
	for _, key := range slices.Compact(keys) {
		h, err := m.healKey(ctx, key)
		healed = append(healed, h...)
		if err != nil {
			errs = multierror.Append(errs, subvolkit.WithOp(op, "", fmt.Errorf("shared mount %s: %w", key, err)))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return healed, errs.ErrorOrNil()
}

func (m *Mounter) healKey(ctx context.Context, key string) ([]string, error) {
	unlock, err := m.locks.Lock(ctx, "shared-"+key)
	if err != nil {
		return nil, fmt.Errorf("taking the lock: %w", err)
	}
	defer unlock()
	t, err := m.table()
	if err != nil {
		return nil, err
	}
	mp := filepath.Join(m.sharedDir, key)
	if _, ok := t.top(mp); !ok {
		if len(m.readRestore(key)) > 0 {
			return m.healShared(ctx, key, nil) // a restore that failed earlier
		}
		return nil, nil
	}
	herr := m.health(ctx, mp)
	switch {
	case herr == nil:
		return nil, m.releaseShared(ctx, key)
	case isStale(herr):
		return m.healShared(ctx, key, nil)
	default:
		return nil, herr
	}
}
