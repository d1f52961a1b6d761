package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/fsutil"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// Defaults for the Options fields left empty.
const (
	DefaultVolume = "memory"
	DefaultServer = "localhost"
	// DefaultPageSize is the page size of List when ListOptions.MaxResults is 0.
	DefaultPageSize = 500
)

// Names of the directories inside Options.Dir that the backend uses for
// itself. Valid subvolume names start with a letter or a digit, so they
// never collide with these.
const (
	archiveDir = ".archive"
	trashDir   = ".trash"
)

// Options configure a Backend. A nil *Options means the defaults: servers
// ["localhost"], volume "memory", unlimited capacity, no content.
type Options struct {
	// Servers are reported in every Subvol (default ["localhost"]).
	Servers []string
	// Volume is reported in every Subvol (default "memory").
	Volume string
	// MaxSizeBytes is the total capacity: the sum of the sizes of all
	// subvolumes. A Create, Clone or growing Resize that needs more than
	// is free fails with kind QuotaExceeded. 0 means unlimited.
	MaxSizeBytes int64
	// Dir, if set, is an existing directory in which each subvolume is a
	// real directory, Dir/<name>. Leave it empty for content-less
	// subvolumes. Give each Backend its own Dir (t.TempDir() in tests).
	Dir string
}

// Backend is the in-memory backend. Create one with New or through the
// registry as "memory". It is safe for concurrent use by multiple
// goroutines.
type Backend struct {
	servers  []string
	volume   string
	capacity int64
	dir      string

	// sem is a one-slot semaphore guarding the fields below; unlike a
	// sync.Mutex, waiting for it honours a context.
	sem       chan struct{}
	subvols   map[string]*backend.Subvol
	snapshots map[string]*snapshot // see snapshot.go
	warm      map[int64]int        // warm subvolumes by size; see warm.go
	reserved  int64                // sum of the sizes in subvols, snapshots and warm ones
	closed    bool
}

// Compile-time checks that Backend implements every interface.
var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Resizer     = (*Backend)(nil)
	_ backend.Cloner      = (*Backend)(nil)
	_ backend.UsageReader = (*Backend)(nil)
	_ backend.Pinger      = (*Backend)(nil)
	_ backend.Aser        = (*Backend)(nil)
)

// New returns an empty Backend. opts is copied; nil means the defaults.
// Directories already in opts.Dir are not adopted: their names are refused
// by Create with kind AlreadyExists.
func New(opts *Options) *Backend {
	if opts == nil {
		opts = &Options{}
	}
	b := &Backend{
		servers:  slices.Clone(opts.Servers),
		volume:   opts.Volume,
		capacity: opts.MaxSizeBytes,
		dir:      opts.Dir,
		sem:      make(chan struct{}, 1),
		subvols:  make(map[string]*backend.Subvol),
	}
	if len(b.servers) == 0 {
		b.servers = []string{DefaultServer}
	}
	if b.volume == "" {
		b.volume = DefaultVolume
	}
	if b.capacity < 0 {
		b.capacity = 0
	}
	return b
}

// lock takes the backend's lock, giving up when ctx is done, and checks
// that the backend is open. On success the caller must call b.unlock.
func (b *Backend) lock(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
	}
	// select picks at random when both cases are ready: a done context
	// must still change nothing.
	if err := ctx.Err(); err != nil {
		b.unlock()
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	if b.closed {
		b.unlock()
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "memory backend is closed")
	}
	return nil
}

func (b *Backend) unlock() { <-b.sem }

// Create makes a new subvolume; see backend.Backend.
func (b *Backend) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	const op = "create"
	if req == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "nil request")
	}
	name := req.Name
	if err := checkRequest(op, name, req.SizeBytes, req.Owner, req.Parameters); err != nil {
		return nil, err
	}
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	if err := b.checkNew(op, name, req.SizeBytes); err != nil {
		return nil, err
	}
	sv := b.newSubvol(name, req.SizeBytes, req.Owner, req.Labels)
	if b.dir != "" {
		if err := b.mkdir(ctx, op, name, sv, nil); err != nil {
			return nil, err
		}
	}
	b.subvols[name] = sv
	b.reserved += sv.SizeBytes
	return copySubvol(sv), nil
}

// checkRequest validates what Create and Clone are given.
func checkRequest(op, name string, size int64, owner *backend.Ownership, params map[string]string) error {
	if err := naming.ValidateSubvolName(name); err != nil {
		return subvolkit.WithOp("", "", err)
	}
	if size <= 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size must be positive, got %d", size)
	}
	if owner != nil {
		if owner.UID < -1 || owner.GID < -1 {
			return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "owner %d:%d is invalid", owner.UID, owner.GID)
		}
		if owner.Mode&^0o7777 != 0 {
			return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "mode %#o has bits outside 0o7777", owner.Mode)
		}
	}
	if len(params) > 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
			"unknown parameter %q: the memory backend has no per-subvolume parameters", slices.Sorted(maps.Keys(params))[0])
	}
	return nil
}

// checkNew reports whether name is free and size fits. b is locked.
func (b *Backend) checkNew(op, name string, size int64) error {
	if _, ok := b.subvols[name]; ok {
		return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "the name is taken")
	}
	return b.checkFree(op, name, size)
}

// checkFree reports whether size more bytes fit in the capacity. b is locked.
func (b *Backend) checkFree(op, name string, size int64) error {
	if b.capacity == 0 {
		return nil
	}
	if free := b.capacity - b.reserved; size > free {
		return subvolkit.Errorf(subvolkit.QuotaExceeded, "", "",
			"subvolume %q needs %s but only %s of %s is free", name,
			quota.HumanSize(size), quota.HumanSize(free), quota.HumanSize(b.capacity))
	}
	return nil
}

func (b *Backend) newSubvol(name string, size int64, owner *backend.Ownership, labels map[string]string) *backend.Subvol {
	sv := &backend.Subvol{
		Name:      name,
		ID:        newID(),
		SizeBytes: size,
		Servers:   slices.Clone(b.servers),
		Volume:    b.volume,
		Path:      "/" + name,
		UID:       0,
		GID:       0,
		Mode:      0o755,
		Created:   time.Now().UTC(),
		Labels:    maps.Clone(labels),
	}
	if b.dir != "" {
		// The directory belongs to the process that makes it.
		sv.UID, sv.GID = os.Getuid(), os.Getgid()
	}
	if owner != nil {
		if owner.UID != -1 {
			sv.UID = owner.UID
		}
		if owner.GID != -1 {
			sv.GID = owner.GID
		}
		if owner.Mode != 0 {
			sv.Mode = owner.Mode
		}
	}
	return sv
}

// newID returns a random identifier, like a heketi volume id, so that a
// subvolume deleted and created again under the same name can be told apart.
func newID() string {
	var p [16]byte
	_, _ = rand.Read(p[:]) // never fails (crypto/rand)
	return hex.EncodeToString(p[:])
}

// mkdir creates sv's directory, calls fill (if not nil) to put content in
// it, and then gives it its owner and mode. On failure it removes what it
// made. b is locked.
func (b *Backend) mkdir(ctx context.Context, op, name string, sv *backend.Subvol, fill func(dir string) error) error {
	path := b.path(name)
	if err := os.Mkdir(path, 0o700); err != nil {
		return b.mkdirErr(op, name, path, err)
	}
	// Fill it while it is 0o700 and ours, then give it its mode and owner.
	var err error
	if fill != nil {
		err = fill(path)
	}
	if err == nil {
		err = setOwner(path, sv)
	}
	if err == nil {
		return nil
	}
	if rerr := os.RemoveAll(path); rerr != nil {
		err = errors.Join(err, fmt.Errorf("removing the partial %s: %w", path, rerr))
	}
	if ctx.Err() != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	return fsErr(op, name, err)
}

func (b *Backend) mkdirErr(op, name, path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return subvolkit.Errorf(subvolkit.AlreadyExists, "", "",
			"directory %s already exists (retained data, or not made by this backend): %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
			"directory %s does not exist: %w", b.dir, err)
	}
	return fsErr(op, name, err)
}

// setOwner applies sv's mode and (where it differs from ours) owner to path.
func setOwner(path string, sv *backend.Subvol) error {
	if err := os.Chmod(path, fileMode(sv.Mode)); err != nil {
		return err
	}
	if sv.UID != os.Getuid() || sv.GID != os.Getgid() {
		return os.Chown(path, sv.UID, sv.GID)
	}
	return nil
}

// fileMode converts Unix permission bits to an fs.FileMode.
func fileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// fsErr classifies a file system error. A missing path is not NotFound: the
// subvolume may exist with its directory removed behind our back.
func fsErr(op, name string, err error) error {
	kind := subvolkit.Unknown
	switch {
	case errors.Is(err, fs.ErrPermission):
		kind = subvolkit.PermissionDenied
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		kind = subvolkit.QuotaExceeded
	}
	return subvolkit.E(kind, "", "", err)
}

func (b *Backend) path(name string) string { return filepath.Join(b.dir, name) }

// Get returns the named subvolume; see backend.Backend.
func (b *Backend) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	const op = "get"
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	sv, err := b.lookup(op, name)
	if err != nil {
		return nil, err
	}
	return copySubvol(sv), nil
}

// lookup returns the named subvolume or a NotFound error. b is locked.
func (b *Backend) lookup(op, name string) (*backend.Subvol, error) {
	sv, ok := b.subvols[name]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "no such subvolume")
	}
	return sv, nil
}

// Delete removes the named subvolume according to opts; see backend.Backend
// and the package documentation for what each policy does.
func (b *Backend) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	const op = "delete"
	policy := backend.DeletePolicyDelete
	if opts != nil {
		policy = opts.Policy
	}
	switch policy {
	case backend.DeletePolicyDelete, backend.DeletePolicyRetain, backend.DeletePolicyArchive:
	default:
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "unknown delete policy %d", policy)
	}
	if err := b.lock(ctx, op, name); err != nil {
		return err
	}
	trash, err := b.detach(op, name, policy)
	b.unlock()
	if err != nil || trash == "" {
		return err
	}
	// The subvolume is gone from the pool; removing its data can happen
	// without the lock.
	if err := os.RemoveAll(trash); err != nil {
		return subvolkit.Errorf(subvolkit.Internal, "", "",
			"subvolume deleted, but its data in %s could not be removed: %w", trash, err)
	}
	return nil
}

// detach removes name from the pool and moves its directory according to
// policy. It returns a directory to remove, if any. b is locked.
func (b *Backend) detach(op, name string, policy backend.DeletePolicy) (trash string, err error) {
	sv, err := b.lookup(op, name)
	if err != nil {
		return "", err
	}
	if b.dir != "" && policy != backend.DeletePolicyRetain {
		parent := filepath.Join(b.dir, trashDir)
		if policy == backend.DeletePolicyArchive {
			parent = filepath.Join(b.dir, archiveDir)
		}
		dst := filepath.Join(parent, name+"-"+sv.ID)
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return "", fsErr(op, name, err)
		}
		switch err := os.Rename(b.path(name), dst); {
		case errors.Is(err, fs.ErrNotExist):
			// Removed behind our back: nothing to move.
			dst = ""
		case err != nil:
			return "", fsErr(op, name, err)
		}
		if policy == backend.DeletePolicyDelete {
			trash = dst
		}
	}
	delete(b.subvols, name)
	b.reserved -= sv.SizeBytes
	return trash, nil
}

// List returns a page of subvolumes sorted by name; see backend.Backend.
// The page token is the name of the last subvolume of the previous page.
func (b *Backend) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	const op = "list"
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "MaxResults %d is negative", opts.MaxResults)
	}
	if opts.PageToken != "" && naming.ValidateSubvolName(opts.PageToken) != nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "invalid page token %q", opts.PageToken)
	}
	max := opts.MaxResults
	if max == 0 {
		max = DefaultPageSize
	}
	if err := b.lock(ctx, op, ""); err != nil {
		return nil, err
	}
	defer b.unlock()
	names := slices.Sorted(maps.Keys(b.subvols))
	start := sort.SearchStrings(names, opts.PageToken)
	if start < len(names) && names[start] == opts.PageToken {
		start++
	}
	page := &backend.ListPage{}
	for _, n := range names[start:] {
		if len(page.Subvols) == max {
			page.NextPageToken = page.Subvols[len(page.Subvols)-1].Name
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		sv := b.subvols[n]
		c := copySubvol(sv)
		if opts.NamesOnly {
			c = &backend.Subvol{Name: sv.Name, ID: sv.ID, Path: sv.Path, Volume: sv.Volume, Servers: slices.Clone(sv.Servers)}
		}
		if opts.WithUsage {
			u, err := b.usageLocked(ctx, op, sv)
			if err != nil {
				return nil, err
			}
			c.Usage = u
		}
		page.Subvols = append(page.Subvols, c)
	}
	return page, nil
}

// Resize sets the named subvolume's size; see backend.Resizer. Growing
// needs free capacity (else QuotaExceeded); shrinking below what the
// subvolume's directory holds is FailedPrecondition.
func (b *Backend) Resize(ctx context.Context, name string, sizeBytes int64) (*backend.Subvol, error) {
	const op = "resize"
	if sizeBytes <= 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size must be positive, got %d", sizeBytes)
	}
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	sv, err := b.lookup(op, name)
	if err != nil {
		return nil, err
	}
	switch delta := sizeBytes - sv.SizeBytes; {
	case delta > 0:
		if err := b.checkFree(op, name, delta); err != nil {
			return nil, err
		}
	case delta < 0 && b.dir != "":
		u, err := measure(ctx, b.path(name))
		if err != nil {
			return nil, b.measureErr(op, name, err)
		}
		if u.used > sizeBytes {
			return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
				"cannot shrink subvolume %q to %s: it holds %s", name, quota.HumanSize(sizeBytes), quota.HumanSize(u.used))
		}
	}
	b.reserved += sizeBytes - sv.SizeBytes
	sv.SizeBytes = sizeBytes
	return copySubvol(sv), nil
}

// Clone creates req.Name with a copy of req.Source; see backend.Cloner.
// With Dir the source's directory tree is copied (regular files, directories
// and symbolic links, with their permission bits).
func (b *Backend) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	const op = "clone"
	if req == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "nil request")
	}
	name := req.Name
	if req.SizeBytes < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %d is negative", req.SizeBytes)
	}
	if err := naming.ValidateSubvolName(req.Source); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", fmt.Errorf("source: %w", err))
	}
	if req.Source == name {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "source and destination are the same")
	}
	// The size is checked once the source's is known.
	if err := checkRequest(op, name, 1, req.Owner, req.Parameters); err != nil {
		return nil, err
	}
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	// An existing destination is reported first, so that a retried clone
	// finds it even if the source has gone since.
	if _, ok := b.subvols[name]; ok {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "the name is taken")
	}
	src, ok := b.subvols[req.Source]
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "source subvolume %q does not exist", req.Source)
	}
	size := req.SizeBytes
	if size == 0 {
		size = src.SizeBytes
	}
	if size < src.SizeBytes {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
			"size %s is smaller than the source %q (%s)", quota.HumanSize(size), req.Source, quota.HumanSize(src.SizeBytes))
	}
	if err := b.checkFree(op, name, size); err != nil {
		return nil, err
	}
	owner := req.Owner
	if owner == nil {
		owner = &backend.Ownership{UID: src.UID, GID: src.GID, Mode: src.Mode}
	}
	sv := b.newSubvol(name, size, owner, req.Labels)
	sv.Source = req.Source
	if b.dir != "" {
		srcDir := b.path(req.Source)
		fill := func(dst string) error {
			if err := fsutil.CopyTree(ctx, srcDir, dst, nil); err != nil {
				return fmt.Errorf("copy %s: %w", srcDir, err)
			}
			return nil
		}
		if err := b.mkdir(ctx, op, name, sv, fill); err != nil {
			return nil, err
		}
	}
	b.subvols[name] = sv
	b.reserved += sv.SizeBytes
	return copySubvol(sv), nil
}

// Usage reports the named subvolume's usage; see backend.UsageReader.
// Without Dir a subvolume is always empty. With Dir, Used is the sum of the
// apparent sizes of the regular files in its directory, Files counts the
// non-directories and Dirs the directories below its root.
func (b *Backend) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	const op = "usage"
	if err := b.lock(ctx, op, name); err != nil {
		return nil, err
	}
	defer b.unlock()
	sv, err := b.lookup(op, name)
	if err != nil {
		return nil, err
	}
	return b.usageLocked(ctx, op, sv)
}

// usageLocked measures sv; the caller holds the lock.
func (b *Backend) usageLocked(ctx context.Context, op string, sv *backend.Subvol) (*quota.Usage, error) {
	name := sv.Name
	if b.dir == "" {
		u := quota.NewUsage(sv.SizeBytes, 0)
		u.Files, u.Dirs = 0, 0
		return &u, nil
	}
	m, err := measure(ctx, b.path(name))
	if err != nil {
		return nil, b.measureErr(op, name, err)
	}
	u := quota.NewUsage(sv.SizeBytes, m.used)
	u.Files, u.Dirs = m.files, m.dirs
	return &u, nil
}

func (b *Backend) measureErr(op, name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	return fsErr(op, name, fmt.Errorf("measure %s: %w", b.path(name), err))
}

// Ping reports whether the backend is usable: it is open and, with Dir,
// Dir is a directory. A missing Dir is Unavailable.
func (b *Backend) Ping(ctx context.Context) error {
	const op = "ping"
	if err := b.lock(ctx, op, ""); err != nil {
		return err
	}
	defer b.unlock()
	if b.dir == "" {
		return nil
	}
	fi, err := os.Stat(b.dir)
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	if !fi.IsDir() {
		return subvolkit.Errorf(subvolkit.Unavailable, "", "", "%s is not a directory", b.dir)
	}
	return nil
}

// Capabilities reports that the memory backend keeps sizes exactly.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{SizeGranularity: 1}
}

// As sets *i to b when i is a **Backend; see the package documentation.
func (b *Backend) As(i any) bool {
	p, ok := i.(**Backend)
	if !ok || p == nil {
		return false
	}
	*p = b
	return true
}

// Close closes the backend: later calls fail with kind FailedPrecondition.
// Directories in Dir are left as they are. Close is idempotent.
func (b *Backend) Close() error {
	b.sem <- struct{}{}
	defer b.unlock()
	b.closed = true
	return nil
}

// Allocated returns the sum of the sizes of the subvolumes and snapshots in
// the pool, the part of the capacity in use.
func (b *Backend) Allocated() int64 {
	b.sem <- struct{}{}
	defer b.unlock()
	return b.reserved
}

// Len returns the number of subvolumes in the pool.
func (b *Backend) Len() int {
	b.sem <- struct{}{}
	defer b.unlock()
	return len(b.subvols)
}

// copySubvol returns a deep copy of sv, so that callers never share the
// backend's state.
func copySubvol(sv *backend.Subvol) *backend.Subvol {
	c := *sv
	c.Servers = slices.Clone(sv.Servers)
	c.MountOptions = maps.Clone(sv.MountOptions)
	c.Labels = maps.Clone(sv.Labels)
	return &c
}
