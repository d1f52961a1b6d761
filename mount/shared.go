package mount

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/subvolkit/subvolkit"
)

// SharedMount describes one shared FUSE mount and the targets bound to it,
// as the mount table shows them.
type SharedMount struct {
	// Path is the mount point, under the state directory.
	Path string
	// Volume and Servers are what it was mounted for (Servers in the
	// order the subvolume gave them).
	Volume  string
	Servers []string
	// Source is the mount source in the mount table, "host:/volume", with
	// the server that was used.
	Source string
	// Binds are the targets bound to it; their count is its reference
	// count.
	Binds []Bind
}

// Bind is one target bound to a shared mount.
type Bind struct {
	Target   string // the mount point
	Path     string // the directory of the volume it shows, "/dir" ("/" for the root)
	ReadOnly bool
}

// sharedState is what a shared mount was made from, kept in
// <StateDir>/shared/<key>.json so that any process can remount it. Sensitive
// options are not stored.
type sharedState struct {
	Volume    string   `json:"volume"`
	Servers   []string `json:"servers"`
	Options   []string `json:"options,omitempty"`
	LogLevel  string   `json:"logLevel,omitempty"`
	LogFile   string   `json:"logFile,omitempty"`
	Sensitive bool     `json:"sensitive,omitempty"`
}

func (m *Mounter) statePath(key string) string { return filepath.Join(m.sharedDir, key+".json") }

func (m *Mounter) writeState(key string, p *plan) error {
	b, err := json.MarshalIndent(sharedState{
		Volume: p.volume, Servers: p.servers, Options: p.options,
		LogLevel: p.logLevel, LogFile: p.logFile, Sensitive: len(p.sensitive) > 0,
	}, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.statePath(key) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.statePath(key))
}

func (m *Mounter) readState(key string) (*sharedState, error) {
	b, err := os.ReadFile(m.statePath(key))
	if err != nil {
		return nil, err
	}
	var st sharedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", m.statePath(key), err)
	}
	return &st, nil
}

// planFromState rebuilds the plan of shared mount key, with the sensitive
// options this process remembers.
func (m *Mounter) planFromState(key string) (*plan, error) {
	st, err := m.readState(key)
	if err != nil {
		return nil, err
	}
	p := &plan{volume: st.Volume, servers: st.Servers, options: st.Options, logLevel: st.LogLevel, logFile: st.LogFile}
	if st.Sensitive {
		m.mu.Lock()
		p.sensitive = m.secrets[key]
		m.mu.Unlock()
		if p.sensitive == nil {
			return nil, kindErrorf(subvolkit.FailedPrecondition,
				"shared mount %s was made with sensitive options that this process does not know; publish one of its subvolumes again", key)
		}
	}
	if !validVolume(p.volume) || len(p.servers) == 0 {
		return nil, fmt.Errorf("%s: invalid state", m.statePath(key))
	}
	return p, nil
}

// binds returns the targets bound to the shared mount e.
func (m *Mounter) binds(t table, e mountEntry) []mountEntry {
	return t.sameDev(e, func(mp string) bool { return mp == e.MountPoint || m.isShared(mp) })
}

// SharedMounts lists the shared mounts on this node with their binds, from
// the mount table and the state directory.
func (m *Mounter) SharedMounts() ([]SharedMount, error) {
	t, err := m.table()
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unknown, "shared mounts", "", err)
	}
	var out []SharedMount
	seen := map[string]bool{}
	for i := len(t) - 1; i >= 0; i-- { // the visible (last) entry of each mount point
		e := t[i]
		if !e.isGluster() || !m.isShared(e.MountPoint) || seen[e.MountPoint] {
			continue
		}
		seen[e.MountPoint] = true
		sm := SharedMount{Path: e.MountPoint, Source: e.Source}
		if st, err := m.readState(filepath.Base(e.MountPoint)); err == nil {
			sm.Volume, sm.Servers = st.Volume, st.Servers
		}
		for _, b := range m.binds(t, e) {
			sm.Binds = append(sm.Binds, Bind{Target: b.MountPoint, Path: b.Root, ReadOnly: b.readOnly()})
		}
		out = append(out, sm)
	}
	slices.SortFunc(out, func(a, b SharedMount) int {
		switch {
		case a.Path < b.Path:
			return -1
		case a.Path > b.Path:
			return 1
		}
		return 0
	})
	return out, nil
}

// publishShared binds the plan's directory of the shared mount on target.
func (m *Mounter) publishShared(ctx context.Context, p *plan, target string) error {
	key := sharedKey(p)
	unlock, err := m.locks.Lock(ctx, "shared-"+key)
	if err != nil {
		return fmt.Errorf("taking the lock: %w", err)
	}
	defer unlock()
	if len(p.sensitive) > 0 {
		m.mu.Lock()
		m.secrets[key] = p.sensitive
		m.mu.Unlock()
	}
	mp := filepath.Join(m.sharedDir, key)

	if len(m.readRestore(key)) > 0 {
		// An earlier restore failed: finish it (every remembered target).
		if _, err := m.healShared(ctx, key, p); err != nil {
			return err
		}
	}
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
		top, _ := t.top(target)
		if k, ok := m.sharedOf(t, top); ok && k == key {
			// A bind of our dead shared mount: restore them all.
			if _, err := m.healShared(ctx, key, p); err != nil {
				return err
			}
			if t, err = m.table(); err != nil {
				return err
			}
			if _, err = m.checkTarget(ctx, p, target, t); errors.Is(err, errDone) {
				return nil
			} else if err != nil {
				return err
			}
		}
		if err := m.unmountAll(ctx, target, true); err != nil {
			return err
		}
		if t, err = m.table(); err != nil {
			return err
		}
	}

	sh, err := m.ensureShared(ctx, p, key, t)
	if err != nil {
		return err
	}
	if err := m.bind(ctx, sh, p.subdir, target, p.readOnly); err != nil {
		if rerr := m.releaseShared(context.WithoutCancel(ctx), key); rerr != nil {
			m.log.Error("releasing the shared mount after a failed bind", "mountpoint", mp, "err", rerr)
		}
		return err
	}
	return nil
}

// ensureShared returns the shared mount key, mounting it (or restoring it,
// if its client has died) as needed.
func (m *Mounter) ensureShared(ctx context.Context, p *plan, key string, t table) (mountEntry, error) {
	mp := filepath.Join(m.sharedDir, key)
	if e, ok := t.top(mp); ok && e.isGluster() {
		herr := m.health(ctx, mp)
		switch {
		case herr == nil:
			return e, nil
		case isStale(herr):
			if _, err := m.healShared(ctx, key, p); err != nil {
				return mountEntry{}, err
			}
			t, err := m.table()
			if err != nil {
				return mountEntry{}, err
			}
			e, _ = t.top(mp)
			return e, nil
		default:
			return mountEntry{}, fmt.Errorf("checking shared mount %s: %w", mp, herr)
		}
	} else if ok {
		return mountEntry{}, kindErrorf(subvolkit.FailedPrecondition, "%s has %s (%s) mounted", mp, e.Source, e.FSType)
	}
	if err := m.writeState(key, p); err != nil {
		return mountEntry{}, err
	}
	if err := os.MkdirAll(mp, 0o700); err != nil {
		return mountEntry{}, err
	}
	e, err := m.mountShared(ctx, p, key)
	if err != nil {
		m.forget(key)
		m.removeMountPoint(mp)
		return mountEntry{}, err
	}
	return e, nil
}

func (m *Mounter) mountShared(ctx context.Context, p *plan, key string) (mountEntry, error) {
	logFile := p.logFile
	if logFile == "" {
		logFile = m.sharedLog(key)
	}
	return m.mountFUSE(ctx, p, "", filepath.Join(m.sharedDir, key), logFile, false)
}

// bind bind-mounts directory sub of the shared mount sh on target and
// verifies it.
func (m *Mounter) bind(ctx context.Context, sh mountEntry, sub, target string, readOnly bool) error {
	src := sh.MountPoint + sub
	if sub != "" {
		fi, err := os.Lstat(src)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			_, shows := sh.shows()
			return kindErrorf(subvolkit.NotFound, "subdirectory %q of %s is not found", sub, shows)
		case err != nil:
			return fmt.Errorf("checking %s: %w", src, err)
		case !fi.IsDir():
			return kindErrorf(subvolkit.InvalidArgument, "%s on the volume is not a directory", sub)
		}
		if r, err := filepath.EvalSymlinks(src); err != nil || r != src {
			return kindErrorf(subvolkit.InvalidArgument, "%s on the volume goes through a symbolic link", sub)
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return err
	}
	opts := []string{"bind"}
	if readOnly {
		opts = append(opts, "ro")
	}
	root := sub
	if root == "" {
		root = "/"
	}
	err := m.iface.Mount(src, target, "", opts)
	if err == nil {
		_, err = m.verify(ctx, target, func(e mountEntry) bool {
			return e.dev() == sh.dev() && e.Root == root && e.readOnly() == readOnly
		})
	}
	if err != nil {
		if uerr := m.unmountAll(context.WithoutCancel(ctx), target, true); uerr != nil {
			m.log.Error("cleaning up after a failed bind mount", "target", target, "err", uerr)
		}
		return fmt.Errorf("bind mount %s on %s: %w", src, target, err)
	}
	if err := ctx.Err(); err != nil {
		if uerr := m.unmountAll(context.WithoutCancel(ctx), target, false); uerr != nil {
			m.log.Error("undoing a bind mount after cancellation", "target", target, "err", uerr)
		}
		return err
	}
	m.log.Info("bound", "source", src, "target", target, "read_only", readOnly)
	return nil
}

// releaseShared unmounts shared mount key if no target is bound to it.
// The caller holds the key's lock.
func (m *Mounter) releaseShared(ctx context.Context, key string) error {
	t, err := m.table()
	if err != nil {
		return err
	}
	mp := filepath.Join(m.sharedDir, key)
	e, ok := t.top(mp)
	if ok {
		if n := len(m.binds(t, e)); n > 0 {
			m.log.Debug("shared mount still in use", "mountpoint", mp, "binds", n)
			return nil
		}
		if err := m.unmountAll(ctx, mp, false); err != nil {
			return err
		}
		m.log.Info("removed unused shared mount", "mountpoint", mp)
	}
	m.forget(key)
	m.removeMountPoint(mp)
	return nil
}

// removeMountPoint removes the (unmounted) shared mount point directory.
func (m *Mounter) removeMountPoint(mp string) {
	if err := os.Remove(mp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("removing shared mount point", "mountpoint", mp, "err", err)
	}
}

// forget removes what is kept about shared mount key.
func (m *Mounter) forget(key string) {
	_ = os.Remove(m.statePath(key))
	m.mu.Lock()
	delete(m.secrets, key)
	m.mu.Unlock()
}

// restoreBind is a target bound to a shared mount whose restore is under
// way, remembered in <StateDir>/shared/<key>.restore.json until it is
// bound again: a restore that fails (servers unreachable) leaves the binds
// dead and the shared mount detached, and a later Heal or Publish must
// still know the targets.
type restoreBind struct {
	Target   string `json:"target"`
	Root     string `json:"root"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

func (m *Mounter) restorePath(key string) string {
	return filepath.Join(m.sharedDir, key+".restore.json")
}

func (m *Mounter) readRestore(key string) []restoreBind {
	b, err := os.ReadFile(m.restorePath(key))
	if err != nil {
		return nil
	}
	var rb []restoreBind
	if err := json.Unmarshal(b, &rb); err != nil {
		m.log.Warn("ignoring a corrupt restore list", "path", m.restorePath(key), "err", err)
		return nil
	}
	return rb
}

func (m *Mounter) writeRestore(key string, rb []restoreBind) error {
	if len(rb) == 0 {
		if err := os.Remove(m.restorePath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(rb)
	if err != nil {
		return err
	}
	tmp := m.restorePath(key) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.restorePath(key))
}

// restoreKeys returns the keys with a restore under way.
func (m *Mounter) restoreKeys() []string {
	ms, _ := filepath.Glob(filepath.Join(m.sharedDir, "*.restore.json"))
	var keys []string
	for _, p := range ms {
		keys = append(keys, strings.TrimSuffix(filepath.Base(p), ".restore.json"))
	}
	return keys
}

// healShared remounts the shared mount key, whose client has died, and
// replaces its binds. p, if not nil, is a plan that uses this shared mount
// (it supplies sensitive options); otherwise the state file is used. The
// caller holds the key's lock. Binds are replaced only once the new mount
// works, so a failure leaves them dead (ENOTCONN) rather than empty
// directories that writes would fill on the node's own disk; their targets
// are written down first, so a later Heal or Publish restores them even
// though the dead shared mount is gone from the mount table.
func (m *Mounter) healShared(ctx context.Context, key string, p *plan) ([]string, error) {
	mp := filepath.Join(m.sharedDir, key)
	if p == nil {
		var err error
		if p, err = m.planFromState(key); err != nil {
			return nil, fmt.Errorf("cannot restore %s: %w", mp, err)
		}
	}
	t, err := m.table()
	if err != nil {
		return nil, err
	}
	old, ok := t.top(mp)
	binds := m.readRestore(key)
	if ok {
		for _, b := range m.binds(t, old) {
			if !slices.ContainsFunc(binds, func(r restoreBind) bool { return r.Target == b.MountPoint }) {
				binds = append(binds, restoreBind{Target: b.MountPoint, Root: b.Root, ReadOnly: b.readOnly()})
			}
		}
	}
	if !ok && len(binds) == 0 {
		return nil, nil
	}
	if err := m.writeRestore(key, binds); err != nil {
		return nil, fmt.Errorf("remembering the binds of %s: %w", mp, err)
	}
	m.log.Warn("restoring dead shared mount", "mountpoint", mp, "binds", len(binds))
	if ok {
		if err := m.unmountAll(ctx, mp, true); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(mp, 0o700); err != nil {
		return nil, err
	}
	sh, err := m.mountShared(ctx, p, key)
	if err != nil {
		return nil, fmt.Errorf("remounting %s (its binds stay dead until a later Heal or Publish): %w", mp, err)
	}
	var healed []string
	var left []restoreBind
	var errs *multierror.Error // each bind is restored even if another fails
	for _, b := range binds {
		// A target unpublished meanwhile has nothing mounted: skip it.
		tt, err := m.table()
		if err != nil {
			return healed, err
		}
		if _, mountedThere := tt.top(b.Target); !mountedThere {
			continue
		}
		if err := m.unmountAll(ctx, b.Target, true); err != nil {
			errs = multierror.Append(errs, err)
			left = append(left, b)
			continue
		}
		sub := b.Root
		if sub == "/" {
			sub = ""
		}
		if err := m.bind(ctx, sh, sub, b.Target, b.ReadOnly); err != nil {
			errs = multierror.Append(errs, err)
			left = append(left, b)
			continue
		}
		healed = append(healed, b.Target)
	}
	if err := m.writeRestore(key, left); err != nil {
		errs = multierror.Append(errs, err)
	}
	return healed, errs.ErrorOrNil()
}
