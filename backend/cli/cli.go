package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mountutils "k8s.io/mount-utils"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// metaDir is the backend's own directory at the root of the volume. Its
// name starts with a dot, which subvolume names never do.
const metaDir = ".subvolkit"

// Options configure the backend. Volume and Servers are required.
type Options struct {
	// Volume is the Gluster volume that holds the subvolumes. It must be
	// started and prepared (quota enabled; see Prepare).
	Volume string
	// Servers are the volume's volfile servers (host names or addresses),
	// the preferred first. The backend mounts the volume from them and
	// reports them in every Subvol for mounters.
	Servers []string
	// Runner runs the gluster CLI; nil means a ShellRunner of the local
	// binary, which the backend closes on Close. Mutating
	// quota calls must reach a glusterd of the pool's trusted storage pool
	// through its local socket (glusterd refuses them from --remote-host).
	Runner Runner
	// MountDir is the backend's own directory on this host; every file
	// the backend writes lives in it: the volume's FUSE mount for
	// directory work (MountDir/volume), the quota aux mount
	// (MountDir/quota), the list mount (MountDir/list, made by the first
	// List with usage) and their glusterfs client logs
	// (MountDir/volume.log, quota.log, list.log). "" means
	// /run/subvolkit/cli/<volume>-<hash of servers>. The backend mounts
	// on Open (or reuses live mounts there: Backends that share a
	// MountDir, in one process or many, share the mounts) and on Close
	// unmounts what it mounted and removes those mount points and logs.
	MountDir string
	// Mounter mounts the volume; nil means mount-utils' mount.New("").
	Mounter mountutils.Interface
	// MountOptions are extra glusterfs mount options for the backend's
	// own mount, such as "log-level=WARNING".
	MountOptions []string
	// RetryMaxAttempts bounds the retries of a CLI call that found the
	// volume lock busy ("Another transaction is in progress");
	// 0 means DefaultRetryMaxAttempts, negative never retries.
	RetryMaxAttempts int
	// RetryMinDelay and RetryMaxDelay bound the delay between retries,
	// which doubles from the minimum (jittered); 0 means the defaults.
	RetryMinDelay, RetryMaxDelay time.Duration
	// NoQuotaAuxMount turns off the backend's second, read-only use of
	// the volume: a FUSE mount made with glusterd's quota client pid,
	// through which limits and usage are read from extended attributes in
	// well under a millisecond. Without it (or when that mount cannot be
	// made) every read-back and Usage is a `quota list <path>` CLI call,
	// about 50 ms and serialized with the volume's other quota calls. It
	// turns off the list mount too: List with usage then reads through
	// the main mount and one `quota list`.
	NoQuotaAuxMount bool
	// GlusterfsPath is the glusterfs client binary for the aux mount;
	// "" means "glusterfs" in PATH.
	GlusterfsPath string
	// Logger receives debug records of CLI calls (nil: silent).
	Logger *slog.Logger
	// PurgeBusyAge is how recently a file in a deleted subvolume may have
	// been modified for the background purge to leave it (bounded by the
	// subvolume's limit, which stays until the purge finishes) and retry
	// later: a writer that still has a file open keeps writing into a
	// limited directory instead of into an unlinked, unlimited file. 0
	// means 5 s; a negative value removes every file at once.
	PurgeBusyAge time.Duration
	// WedgeTimeout is how long a statfs of the backend's own mount may go
	// unanswered, while a copy (Clone, snapshots) runs in it, before its
	// glusterfs client is taken to be wedged and the mount's FUSE
	// connection is aborted (see the package documentation, "Wedged
	// clients"). 0 means DefaultWedgeTimeout; a negative value never
	// aborts.
	WedgeTimeout time.Duration

	// closeRunner: Runner is the backend's own (Open's default, or
	// OptionsFromParams's), closed by Close.
	closeRunner bool
}

// Defaults for the Options fields left zero.
const (
	DefaultRetryMaxAttempts = 20
	DefaultRetryMinDelay    = 50 * time.Millisecond
	DefaultRetryMaxDelay    = 2 * time.Second
)

// Backend is the gluster CLI backend. It is safe for concurrent use by
// multiple goroutines, and several Backends (in one or many processes, on
// one or many hosts) may share a volume: per-name locks are record locks on
// a file in the volume, which Gluster enforces across clients.
type Backend struct {
	opts        Options
	g           *glusterCLI
	mounter     mountutils.Interface
	ownDir      string      // Options.MountDir: everything the backend writes is in it
	mnt         string      // the backend's FUSE mount of the volume, ownDir/volume
	mounted     atomic.Bool // whether the backend mounted it (so Close unmounts it)
	aux         string      // the quota aux mount, "" if there is none
	auxMounted  atomic.Bool // whether the backend mounted aux
	listMu      sync.Mutex  // guards listDir: the list mount is made on first use (listMount)
	listDir     string      // the list mount, "" until made
	listMounted atomic.Bool // whether the backend mounted listDir
	remountMu   sync.Mutex  // serializes the healing of dead mounts
	locker      nameLocker
	log         *slog.Logger
	mu          sync.RWMutex
	closed      bool
	capacity    int64 // volume size in bytes at Open
	umask       int   // the process's umask at Open, -1 if unknown (mkdir then cannot set the final mode)
	purger      *purger
	warmCache   warmCache                         // see warm.go
	failHook    atomic.Pointer[func(step string)] // crash tests only (export_test.go)
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Resizer     = (*Backend)(nil)
	_ backend.Cloner      = (*Backend)(nil)
	_ backend.UsageReader = (*Backend)(nil)
	_ backend.Pinger      = (*Backend)(nil)
	_ backend.Aser        = (*Backend)(nil)
)

func init() {
	backend.Register("cli", func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		opts, err := OptionsFromParams(params)
		if err != nil {
			return nil, err
		}
		return Open(ctx, opts)
	})
}

// Parameter names of OptionsFromParams (and of backend.Open("cli", …)). The
// retry keys are spelled the same in every backend.
const (
	ParamVolume           = "volume"           // required
	ParamServers          = "servers"          // comma list, required
	ParamMountDir         = "mountdir"         // Options.MountDir
	ParamGlusterPath      = "glusterpath"      // the gluster CLI binary
	ParamGlusterArgs      = "glusterargs"      // space-separated extra CLI arguments, such as --glusterd-sock=/path
	ParamRetryMaxAttempts = "retrymaxattempts" // Options.RetryMaxAttempts, an integer
	ParamRetryMinDelay    = "retrymindelay"    // Options.RetryMinDelay, a Go duration ("50ms")
	ParamRetryMaxDelay    = "retrymaxdelay"    // Options.RetryMaxDelay, a Go duration ("2s")
)

// OptionsFromParams turns string parameters (a StorageClass's, or those
// given to backend.Open("cli", …)) into Options; see the Param constants.
// Unknown or malformed parameters are errors of kind InvalidArgument.
func OptionsFromParams(params map[string]string) (*Options, error) {
	const op = "cli options"
	opts := &Options{}
	r := &ShellRunner{}
	for k, v := range params {
		var err error
		switch k {
		case ParamVolume:
			opts.Volume = v
		case ParamServers:
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					opts.Servers = append(opts.Servers, s)
				}
			}
		case ParamMountDir:
			opts.MountDir = v
		case ParamGlusterPath:
			r.Path = v
		case ParamGlusterArgs:
			r.ExtraArgs = strings.Fields(v)
		case ParamRetryMaxAttempts:
			opts.RetryMaxAttempts, err = strconv.Atoi(strings.TrimSpace(v))
		case ParamRetryMinDelay:
			opts.RetryMinDelay, err = time.ParseDuration(strings.TrimSpace(v))
		case ParamRetryMaxDelay:
			opts.RetryMaxDelay, err = time.ParseDuration(strings.TrimSpace(v))
		default:
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "unknown parameter %q", k)
		}
		if err != nil {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter %s=%q: %v", k, v, err)
		}
	}
	opts.Runner, opts.closeRunner = r, true
	return opts, nil
}

// Open checks the volume (it must exist, be started and have quota enabled)
// and mounts it for the backend's directory work. Like sql.Open, it changes
// no setting of the volume: preparing one (enabling quota, strict quota
// timeouts) is Prepare's job, called once per volume. A volume without quota
// is an error of kind FailedPrecondition that says to call Prepare. The
// caller must Close the backend.
func Open(ctx context.Context, opts *Options) (*Backend, error) {
	const op = "open cli backend"
	if opts == nil || opts.Volume == "" {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "a volume name is required")
	}
	if strings.ContainsAny(opts.Volume, "/ \x00") || strings.HasPrefix(opts.Volume, "-") {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "bad volume name %q", opts.Volume)
	}
	if len(opts.Servers) == 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "at least one server is required")
	}
	for _, s := range opts.Servers {
		if s == "" || strings.ContainsAny(s, "/:, \x00") && !strings.HasPrefix(s, "[") {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "bad server %q", s)
		}
	}
	o := *opts
	o.Servers = append([]string(nil), opts.Servers...)
	if o.Runner == nil {
		o.Runner, o.closeRunner = &ShellRunner{}, true
	}
	switch {
	case o.RetryMaxAttempts == 0:
		o.RetryMaxAttempts = DefaultRetryMaxAttempts
	case o.RetryMaxAttempts < 0:
		o.RetryMaxAttempts = 0
	}
	if o.RetryMinDelay <= 0 {
		o.RetryMinDelay = DefaultRetryMinDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	o.RetryMaxDelay = max(o.RetryMaxDelay, o.RetryMinDelay)
	if o.GlusterfsPath == "" {
		o.GlusterfsPath = "glusterfs"
	}
	if o.PurgeBusyAge == 0 {
		o.PurgeBusyAge = 5 * time.Second
	}
	if o.WedgeTimeout == 0 {
		o.WedgeTimeout = DefaultWedgeTimeout
	}
	if o.MountDir == "" {
		h := sha256.Sum256([]byte(strings.Join(o.Servers, ",")))
		o.MountDir = filepath.Join("/run/subvolkit/cli", o.Volume+"-"+hex.EncodeToString(h[:4]))
	}
	b := &Backend{
		opts:    o,
		g:       newGlusterCLI(o.Runner, o.Volume, o.RetryMaxAttempts, o.RetryMinDelay, o.RetryMaxDelay),
		mounter: o.Mounter,
		ownDir:  o.MountDir,
		mnt:     filepath.Join(o.MountDir, "volume"),
		log:     o.Logger,
		umask:   processUmask(),
	}
	if b.mounter == nil {
		b.mounter = mountutils.New("")
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if err := b.checkVolume(ctx); err != nil {
		return nil, subvolkit.WithOp(op, "", err)
	}
	mounted, err := b.mountVolume(ctx)
	if err != nil {
		return nil, subvolkit.WithOp(op, "", err)
	}
	b.mounted.Store(mounted)
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.mnt, &st); err == nil {
		b.capacity = int64(st.Blocks) * int64(st.Bsize)
	}
	if err := b.prepareMeta(); err != nil {
		b.Close()
		return nil, subvolkit.WithOp(op, "", err)
	}
	if !o.NoQuotaAuxMount {
		dir := filepath.Join(b.ownDir, "quota")
		mounted, err := b.mountAux(ctx, dir, false)
		switch {
		case err == nil:
			b.aux = dir
			b.auxMounted.Store(mounted)
		case ctx.Err() != nil:
			b.Close()
			return nil, subvolkit.E(subvolkit.Canceled, op, "", ctx.Err())
		default:
			b.log.WarnContext(ctx, "no quota aux mount; limits are read back through the CLI", "err", err)
		}
	}
	// The purger resumes, in the background, purges that an earlier
	// process (or a crash) left in the trash.
	b.purger = newPurger(b)
	go b.purger.run()
	return b, nil
}

// checkVolume checks that the volume is started and prepared; it changes
// nothing.
func (b *Backend) checkVolume(ctx context.Context) error {
	info, err := b.g.volumeInfo(ctx)
	if err != nil {
		return err
	}
	if info.StatusStr != "Started" {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "volume %s is %s, not Started", b.opts.Volume, info.StatusStr)
	}
	if v, _ := info.option("features.quota"); v != "on" {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
			"quota is not enabled on volume %s: prepare the volume once with cli.Prepare (or `gluster volume quota %s enable`)",
			b.opts.Volume, b.opts.Volume)
	}
	return nil
}

// mountVolume mounts the volume at b.mnt, or reuses a working mount of it
// there, and reports whether it mounted it.
func (b *Backend) mountVolume(ctx context.Context) (mounted bool, err error) {
	if err := os.MkdirAll(b.mnt, 0o700); err != nil && !errors.Is(err, syscall.ENOTCONN) {
		return false, subvolkit.E(subvolkit.Unavailable, "mount volume", "", err)
	}
	if ok, err := b.mounter.IsMountPoint(b.mnt); err == nil && ok {
		if _, serr := os.Stat(filepath.Join(b.mnt, ".")); serr == nil {
			return false, nil // a live mount from an earlier Open: reuse it
		}
	}
	// A dead FUSE mount ("transport endpoint is not connected") is cleared first.
	if _, err := os.Stat(b.mnt); err != nil && deadMount(err) {
		_ = syscall.Unmount(b.mnt, syscall.MNT_DETACH)
	}
	logFile := filepath.Join(b.ownDir, "volume.log")
	mopts := []string{"log-file=" + logFile}
	if len(b.opts.Servers) > 1 {
		mopts = append(mopts, "backup-volfile-servers="+strings.Join(b.opts.Servers[1:], ":"))
	}
	mopts = append(mopts, b.opts.MountOptions...)
	src := b.opts.Servers[0] + ":/" + b.opts.Volume
	if err := ctx.Err(); err != nil {
		return false, subvolkit.E(subvolkit.Canceled, "mount volume", "", err)
	}
	if err := b.mounter.Mount(src, b.mnt, "glusterfs", mopts); err != nil {
		return false, subvolkit.E(subvolkit.Unavailable, "mount volume", "", err)
	}
	// mount.glusterfs answers 0 even when the client dies right after:
	// believe the mount table only.
	if ok, err := b.mounter.IsMountPoint(b.mnt); err != nil || !ok {
		return false, subvolkit.Errorf(subvolkit.Unavailable, "mount volume", "",
			"mounting %s on %s reported success but nothing is mounted (see %s)", src, b.mnt, logFile)
	}
	if _, err := os.Stat(b.mnt); err != nil {
		_ = b.mounter.Unmount(b.mnt)
		return false, subvolkit.E(subvolkit.Unavailable, "mount volume", "", err)
	}
	return true, nil
}

// deadMount reports whether err says a FUSE mount's client has died
// ("transport endpoint is not connected", or ECONNABORTED on newer kernels).
func deadMount(err error) bool {
	return mountutils.IsCorruptedMnt(err) || errors.Is(err, syscall.ECONNABORTED)
}

// ensureMounted checks the backend's mount of the volume and, if its FUSE
// client has died, lazily unmounts it and mounts the volume again, so a
// long-running process survives a killed or crashed glusterfs client. The
// check is a statfs of the mount point (a stat could be answered from the
// kernel's cache of a dead mount): a fraction of a millisecond. Most
// operations do not call it up front: they learn of a dead mount from their
// own first call on it (see healing and begin).
func (b *Backend) ensureMounted(ctx context.Context) error {
	var st syscall.Statfs_t
	err := syscall.Statfs(b.mnt, &st)
	if err == nil {
		return nil
	}
	if !deadMount(err) {
		return subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"statfs", b.mnt, err})
	}
	b.remountMu.Lock()
	defer b.remountMu.Unlock()
	if err := syscall.Statfs(b.mnt, &st); err == nil {
		return nil // healed by another goroutine meanwhile
	}
	b.log.WarnContext(ctx, "the backend's mount of the volume is dead; mounting it again", "path", b.mnt, "err", err)
	b.locker.reset() // its open lock files belong to the dead mount
	_ = syscall.Unmount(b.mnt, syscall.MNT_DETACH)
	if _, err := b.mountVolume(ctx); err != nil {
		return err
	}
	b.mounted.Store(true)
	return nil
}

// deadMountErr reports whether err, wrapped or not, says the FUSE client
// of a mount has died (ENOTCONN, or ECONNABORTED on newer kernels).
func deadMountErr(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

// healing runs f and, if f failed because the backend's mount of the
// volume is dead, mounts it again and runs f once more. f must be safe to
// repeat (a read, or an operation whose first failure changed nothing).
func (b *Backend) healing(ctx context.Context, f func() error) error {
	err := f()
	if err == nil || !deadMountErr(err) {
		return err
	}
	if herr := b.ensureMounted(ctx); herr != nil {
		return subvolkit.WithOp("", "", herr)
	}
	return f()
}

// healAux mounts the quota aux mount again after its client died.
func (b *Backend) healAux(ctx context.Context) error {
	b.remountMu.Lock()
	defer b.remountMu.Unlock()
	if _, err := b.auxLimit(b.aux, "."); err == nil || errors.Is(err, syscall.ENODATA) {
		return nil // healed by another goroutine meanwhile
	}
	_ = syscall.Unmount(b.aux, syscall.MNT_DETACH)
	if _, err := b.mountAux(ctx, b.aux, false); err != nil {
		return err
	}
	b.auxMounted.Store(true)
	return nil
}

// prepareMeta makes the backend's directories. It removes nothing: the
// trash is purged in the background.
func (b *Backend) prepareMeta() error {
	for _, d := range []string{metaDir, stagingDir, trashDir, archiveDir, retainedDir} {
		if err := os.Mkdir(filepath.Join(b.mnt, d), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return subvolkit.E(subvolkit.Unavailable, "", "", err)
		}
	}
	b.locker = nameLocker{path: filepath.Join(b.mnt, metaDir, "locks")}
	return nil
}

// Capabilities reports that the cli backend keeps sizes exactly: a quota
// limit is set in bytes.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{SizeGranularity: 1}
}

// As exposes *Backend itself (for MountPath) and the Runner: As(&r) with r
// a Runner or *Backend.
func (b *Backend) As(i any) bool {
	switch p := i.(type) {
	case **Backend:
		*p = b
		return true
	case *Runner:
		*p = b.opts.Runner
		return true
	}
	return false
}

// MountPath returns where the backend mounted the volume.
func (b *Backend) MountPath() string { return b.mnt }

// Close unmounts the backend's mount of the volume if Open made it.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.purger != nil {
		b.purger.stop() // before the mounts go
	}
	if c, ok := b.opts.Runner.(io.Closer); ok && b.opts.closeRunner {
		_ = c.Close()
	}
	b.locker.reset() // its open lock files would keep the mount busy
	if b.auxMounted.Load() {
		if err := b.mounter.Unmount(b.aux); err == nil {
			_ = os.Remove(b.aux)
			_ = os.Remove(b.aux + ".log")
		}
	}
	b.listMu.Lock()
	if b.listMounted.Load() {
		if err := b.mounter.Unmount(b.listDir); err == nil {
			_ = os.Remove(b.listDir)
			_ = os.Remove(b.listDir + ".log")
		}
	}
	b.listMu.Unlock()
	if b.mounted.Load() {
		if err := b.mounter.Unmount(b.mnt); err != nil {
			return subvolkit.E(subvolkit.Unknown, "close", "", err)
		}
		_ = os.Remove(b.mnt)
		_ = os.Remove(filepath.Join(b.ownDir, "volume.log"))
	}
	_ = os.Remove(b.ownDir) // only if nothing else (another Backend's mounts) is left in it
	return nil
}

// begin checks the backend is open and takes the cluster-wide lock of name.
func (b *Backend) begin(ctx context.Context, op, name string) (func(), error) {
	if err := b.checkArgs(ctx, op, name); err != nil {
		return nil, err
	}
	unlock, err := b.locker.Lock(ctx, name)
	if err != nil && deadMountErr(err) {
		// The lock file is the first thing an operation touches: a dead
		// mount shows here, before anything changed.
		if herr := b.ensureMounted(ctx); herr != nil {
			return nil, subvolkit.WithOp("", "", herr)
		}
		unlock, err = b.locker.Lock(ctx, name)
	}
	if err != nil {
		return nil, subvolkit.WithOp("", "", err)
	}
	return unlock, nil
}

func (b *Backend) dir(name string) string { return filepath.Join(b.mnt, name) }

func volPath(name string) string { return "/" + name }

func (b *Backend) subvol(name string, m *marker, st *syscall.Stat_t) *backend.Subvol {
	sv := &backend.Subvol{
		Name: name, ID: volPath(name), SizeBytes: m.Size,
		Servers: append([]string(nil), b.opts.Servers...),
		Volume:  b.opts.Volume, Path: volPath(name), Source: m.Source, SourceSnapshot: m.Snapshot,
		UID: -1, GID: -1, Created: m.Created, Labels: m.Labels,
	}
	if st != nil {
		sv.UID, sv.GID, sv.Mode = int(st.Uid), int(st.Gid), st.Mode&0o7777
	}
	return sv
}

// inspect reads name's directory and marker. It returns (nil, nil, nil) if
// nothing is there.
//
// The FUSE client keeps a name for a second after it last looked it up,
// so the path may still lead to a directory another process has moved
// away since (deleted, taken, archived). inspect asks the directory for its
// path on the bricks meanwhile (see freshPath) and, if that is not /name,
// asks the bricks whether name exists: if not, nothing is there; if it
// does, another process made it a moment ago and this client cannot reach
// it yet, which is Unavailable (retry).
func (b *Backend) inspect(name string) (*marker, *syscall.Stat_t, error) {
	return b.inspectAt(name, true)
}

// inspectListed is inspect without the check, for a read-only listing of
// names the root's listing has just returned: they exist on the bricks, and
// one replaced within the last second may be listed either way.
func (b *Backend) inspectListed(name string) (*marker, *syscall.Stat_t, error) {
	return b.inspectAt(name, false)
}

// inspectAt is inspect for rel, a path from the volume's root (a
// subvolume's name, or a snapshot's place).
func (b *Backend) inspectAt(rel string, check bool) (*marker, *syscall.Stat_t, error) {
	dir := filepath.Join(b.mnt, rel)
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil, nil
		}
		return nil, nil, subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"lstat", dir, err})
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, &st, errNoMarker
	}
	fresh := func() error { return nil }
	if check {
		fresh = async(func() error { return b.freshPath(rel) })
	}
	m, err := readMarker(dir)
	if ferr := fresh(); ferr != nil {
		if errors.Is(ferr, errGone) {
			return nil, nil, nil
		}
		return nil, nil, ferr
	}
	if errors.Is(err, errGone) {
		return nil, nil, nil // renamed or removed meanwhile by another process
	}
	if err != nil {
		return nil, &st, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	return m, &st, nil
}

// Virtual extended attributes of GlusterFS's posix translator, answered
// by the bricks.
const (
	// ancestryXattr, on a directory, is its path from the volume's root,
	// found from the directory itself (its gfid), not from a name.
	ancestryXattr = "glusterfs.ancestry.path"
	// realNameXattr+name, on a directory, answers whether name exists in
	// it (ENODATA if not), looked up by name.
	realNameXattr = "glusterfs.get_real_filename:"
)

// freshPath checks that the directory the client's cached names lead to
// is still /rel on the bricks. It returns errGone when the bricks have
// nothing by that path any more, an Unavailable error when another
// directory holds it now, and nil when the name is current (or the bricks
// cannot tell: no such attributes).
func (b *Backend) freshPath(rel string) error {
	dir := filepath.Join(b.mnt, rel)
	buf := make([]byte, 4096)
	n, err := syscall.Getxattr(dir, ancestryXattr, buf)
	switch {
	case err == nil && string(bytes.TrimRight(buf[:n], "\x00")) == volPath(rel):
		return nil
	case errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ERANGE):
		return nil // not told: trust the name
	case err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESTALE):
		return subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"getxattr " + ancestryXattr, dir, err})
	}
	// Moved or removed by another process since this client looked the
	// name up. Is there something else by that name now?
	parent, base := filepath.Split(dir)
	_, err = syscall.Getxattr(parent, realNameXattr+base, buf)
	switch {
	case errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.ENOENT):
		return errGone
	case err != nil:
		return subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"getxattr " + realNameXattr + base, parent, err})
	}
	return subvolkit.Errorf(subvolkit.Unavailable, "", "",
		"%s was replaced by another process a moment ago and this client still sees the old one; retry", volPath(rel))
}

func (b *Backend) checkCreate(op, name string, size int64, params map[string]string) error {
	if size <= 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size must be positive, got %d", size)
	}
	if b.capacity > 0 && size > b.capacity {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %s is larger than volume %s (%s)",
			quota.HumanSize(size), b.opts.Volume, quota.HumanSize(b.capacity))
	}
	for k := range params {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "the cli backend takes no per-subvolume parameters (got %q)", k)
	}
	return nil
}

// ownerMode is the permission bits a new subvolume's root gets.
func ownerMode(o *backend.Ownership) uint32 {
	if o != nil && o.Mode != 0 {
		return o.Mode & 0o7777
	}
	return 0o755
}

// applyOwner sets dir's owner and, if chmod, its mode (which mkdir could not
// set).
func applyOwner(dir string, o *backend.Ownership, chmod bool) error {
	if o != nil && (o.UID >= 0 || o.GID >= 0) {
		if err := os.Chown(dir, o.UID, o.GID); err != nil {
			return err
		}
	}
	if !chmod {
		return nil
	}
	if err := syscall.Chmod(dir, ownerMode(o)); err != nil { // after chown, which clears setgid
		return &pathErr{"chmod", dir, err}
	}
	return nil
}

// processUmask reads the process's umask from /proc (reading it with
// umask(2) would change it for a moment under other goroutines), or -1.
func processUmask() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(n)
		}
	}
	return -1
}

// setLimit sets name's hard limit and reads it back.
func (b *Backend) setLimit(ctx context.Context, name string, size int64) error {
	if err := b.g.limitUsage(ctx, volPath(name), size); err != nil {
		return err
	}
	return b.checkLimit(ctx, name, size)
}

// checkLimit reads name's limit back and checks that it is size.
func (b *Backend) checkLimit(ctx context.Context, name string, size int64) error {
	got, err := b.readQuota(ctx, name, false)
	if err != nil {
		return fmt.Errorf("reading the limit back: %w", err)
	}
	if got.Hard != size {
		return subvolkit.Errorf(subvolkit.Internal, "", "", "limit read back as %d bytes, set %d", got.Hard, size)
	}
	return nil
}

// readLimit reads name's quota row. Under load, glusterd's quota aux mount
// can briefly answer that a directory made a moment ago does not exist
// (seen once in 300 concurrent creates): a NotFound is retried a few times,
// for at most about two seconds, before it is believed.
func (b *Backend) readLimit(ctx context.Context, name string) (quotaLimit, error) {
	return b.readQuota(ctx, name, true)
}

// readQuota is readLimit; without usage, the aux mount's answer has only
// the limit (Used 0, Files and Dirs -1), one extended attribute fewer.
func (b *Backend) readQuota(ctx context.Context, name string, usage bool) (quotaLimit, error) {
	if b.aux != "" {
		l, err := b.readLimitAux(ctx, name, usage)
		if k := subvolkit.KindOf(err); err == nil || k == subvolkit.NotFound || k == subvolkit.Canceled {
			return l, err
		}
		// The aux mount is broken (its client died?): mount it again, or
		// fall back to the CLI.
		if herr := b.healAux(ctx); herr == nil {
			if l, err := b.readLimitAux(ctx, name, usage); err == nil {
				return l, nil
			}
		}
		b.log.WarnContext(ctx, "quota aux mount unusable; reading the limit through the CLI", "name", name, "err", err)
	}
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		l, err := b.g.listLimit(ctx, volPath(name))
		if subvolkit.KindOf(err) != subvolkit.NotFound || attempt == 6 {
			return l, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return l, subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
		case <-t.C:
		}
		delay *= 2
	}
}

// Get implements backend.Backend.
func (b *Backend) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	const op = "get"
	if err := b.checkArgs(ctx, op, name); err != nil {
		return nil, err
	}
	var sv *backend.Subvol
	err := b.healing(ctx, func() error {
		m, st, err := b.inspect(name)
		if err != nil {
			if errors.Is(err, errNoMarker) {
				return subvolkit.Errorf(subvolkit.NotFound, "", "", "%s is not a subvolkit subvolume", volPath(name))
			}
			return subvolkit.WithOp("", "", err)
		}
		if m == nil || m.State != stateReady {
			return subvolkit.Errorf(subvolkit.NotFound, "", "", "no such subvolume on volume %s", b.opts.Volume)
		}
		sv = b.subvol(name, b.settled(ctx, name, m), st)
		return nil
	})
	return sv, err
}

// checkOpen is checkArgs, then a check of the backend's mount (healed if
// its client died), for the operations that do not learn of a dead mount
// from their own calls.
func (b *Backend) checkOpen(ctx context.Context, op, name string) error {
	if err := b.checkArgs(ctx, op, name); err != nil {
		return err
	}
	return subvolkit.WithOp("", "", b.ensureMounted(ctx))
}

// checkArgs checks that the backend is open, ctx is live and name (if not
// "") is valid.
func (b *Backend) checkArgs(ctx context.Context, op, name string) error {
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "backend is closed")
	}
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	if name != "" {
		if err := naming.ValidateSubvolName(name); err != nil {
			return subvolkit.WithOp("", "", err)
		}
	}
	return nil
}

func (b *Backend) ready(op, name string) (*marker, *syscall.Stat_t, error) {
	m, st, err := b.inspect(name)
	if errors.Is(err, errNoMarker) || (err == nil && (m == nil || m.State != stateReady)) {
		return nil, nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "no such subvolume on volume %s", b.opts.Volume)
	}
	if err != nil {
		return nil, nil, subvolkit.WithOp("", "", err)
	}
	return m, st, nil
}

// Usage implements backend.UsageReader: the limit and usage come from the
// quota extended attributes through the aux mount, or from `quota list
// <path>` when there is none (see Options.NoQuotaAuxMount).
func (b *Backend) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	const op = "usage"
	if err := b.checkArgs(ctx, op, name); err != nil {
		return nil, err
	}
	var u quota.Usage
	err := b.healing(ctx, func() error {
		if _, _, err := b.ready(op, name); err != nil {
			return err
		}
		l, err := b.readLimit(ctx, name)
		if err != nil {
			return subvolkit.WithOp("", "", err)
		}
		u = quota.NewUsage(l.Hard, l.Used)
		u.Files, u.Dirs = l.Files, l.Dirs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Ping implements backend.Pinger: the volume must answer `volume info` and be
// started, and the backend's mount must be alive.
func (b *Backend) Ping(ctx context.Context) error {
	const op = "ping"
	if err := b.checkOpen(ctx, op, ""); err != nil {
		return err
	}
	info, err := b.g.volumeInfo(ctx)
	if err != nil {
		return subvolkit.WithOp("", "", err)
	}
	if info.StatusStr != "Started" {
		return subvolkit.Errorf(subvolkit.Unavailable, "", "", "volume %s is %s", b.opts.Volume, info.StatusStr)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.mnt, &st); err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", &pathErr{"statfs", b.mnt, err})
	}
	return nil
}
