package subvol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// Options tune a Pool. A nil *Options means the defaults.
type Options struct {
	// Logger receives one record per mutating operation (nil: silent).
	// Secrets are never logged.
	Logger *slog.Logger
	// MaxSizeBytes, if > 0, rejects sizes above it as InvalidArgument
	// before the backend is asked.
	MaxSizeBytes int64
	// Observer, if not nil, is told about every operation (see Observer).
	Observer Observer
}

// Pool is the portable API over a Backend: it validates names and sizes,
// serializes operations on one name, applies the idempotency rules that
// Kubernetes and CSI expect, and wraps every error once with the operation
// and the subvolume's name.
//
// A Pool is safe for concurrent use by multiple goroutines. Locking is per
// name within this Pool; backends make operations safe across processes.
type Pool struct {
	b     backend.Backend
	log   *slog.Logger
	maxSz int64
	obs   Observer
	locks keyedlock.Map
	bg    background // long copies that outlive their calls; see jobs.go
	warm  warmer     // warm subvolumes; see warm.go

	mu       sync.Mutex
	inflight int           // operations between begin and end
	closing  bool          // Close or Shutdown was called: refuse new operations
	idle     chan struct{} // closed once closing and inflight == 0, after the backend is closed
	closeErr error         // the backend's Close error, set before idle is closed
}

// NewPool returns a Pool over b. The Pool owns b: Close closes it.
func NewPool(b backend.Backend, opts *Options) *Pool {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{b: b, log: log, maxSz: opts.MaxSizeBytes, obs: opts.Observer, idle: make(chan struct{})}
}

// Open opens the backend registered as backendName (see backend.Register)
// with params and returns a Pool over it. The backend's package must have
// been imported.
func Open(ctx context.Context, backendName string, params map[string]string, opts *Options) (*Pool, error) {
	b, err := backend.Open(ctx, backendName, params)
	if err != nil {
		return nil, err
	}
	return NewPool(b, opts), nil
}

// As exposes the backend's underlying client: it reports whether the backend
// implements backend.Aser and set *i. Each backend's package documentation
// lists the types it supports.
func (p *Pool) As(i any) bool {
	a, ok := p.b.(backend.Aser)
	return ok && a.As(i)
}

// Close stops the Pool as sql.DB.Close does: operations that have started
// run to completion (Close waits for them, without bound), operations called
// after Close fail with kind FailedPrecondition, and then the backend is
// closed. Close returns the backend's Close error. Close is idempotent and
// safe to call concurrently with operations.
func (p *Pool) Close() error {
	return p.Shutdown(context.Background())
}

// Shutdown is Close with the wait for in-flight operations bounded by ctx.
// New operations are refused from the moment Shutdown is called. If ctx ends
// first, Shutdown returns an error of kind Canceled or DeadlineExceeded; the
// backend is then closed when the last in-flight operation returns.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closing {
		p.closing = true
		if p.inflight == 0 {
			p.closeBackendLocked()
		}
	}
	p.mu.Unlock()
	p.bg.cancelAll() // running copies stop; each is an in-flight operation
	p.warm.stop()    // so does the refill of warm subvolumes
	select {
	case <-p.idle:
		return p.closeErr
	case <-ctx.Done():
		return subvolkit.E(subvolkit.Canceled, "close", "", fmt.Errorf("waiting for in-flight operations: %w", ctx.Err()))
	}
}

// closeBackendLocked closes the backend and marks the Pool idle. p.mu is held.
func (p *Pool) closeBackendLocked() {
	p.closeErr = p.b.Close()
	close(p.idle)
}

// begin checks what every operation needs (an open pool, a live context and,
// when name != "", a valid name) and counts the operation as in flight until
// end is called.
func (p *Pool) begin(ctx context.Context, op, name string) (end func(), err error) {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, op, name, "pool is closed")
	}
	p.inflight++
	p.mu.Unlock()
	if err := p.check(ctx, op, name); err != nil {
		p.endOp()
		return nil, err
	}
	return p.endOp, nil
}

// endOp ends an in-flight operation; the last one after Close closes the
// backend.
func (p *Pool) endOp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if p.closing && p.inflight == 0 {
		p.closeBackendLocked()
	}
}

// AllocateOptions tune Allocate. A nil *AllocateOptions means the defaults.
type AllocateOptions struct {
	// Owner sets the owner and mode of the new subvolume's root directory.
	Owner *Ownership
	// Labels are stored with the subvolume where the backend can.
	Labels map[string]string
	// Parameters are backend-specific settings for this subvolume.
	Parameters map[string]string
	// LimitBytes, if > 0, is the largest size an existing subvolume of the
	// same name may have and still be returned (CSI's capacity range
	// limit_bytes). 0 means no upper bound.
	LimitBytes int64
}

// CloneOptions tune Clone. A nil *CloneOptions means the defaults.
type CloneOptions struct {
	// SizeBytes is the new subvolume's size; 0 means the source's size.
	SizeBytes int64
	// Owner, Labels and Parameters are as in AllocateOptions.
	Owner      *Ownership
	Labels     map[string]string
	Parameters map[string]string
}

// Allocate creates the subvolume name of sizeBytes bytes and returns it.
//
// If the Pool keeps warm subvolumes of exactly sizeBytes (SetWarm) and
// opts has no Parameters, one is handed out under name — a few renames, no
// quota call — and the stock refills in the background; when none is left,
// or for any other size, the subvolume is made the normal way.
//
// Allocate is idempotent with CSI's rule: if name exists with a compatible
// size (at least sizeBytes, and at most opts.LimitBytes if that is set) it is
// returned as it is, whatever the backend's rounding (allocating 1 GiB where
// 5 GiB exists returns the 5 GiB subvolume); if it exists with a smaller size,
// a larger one than the limit, or as a clone, the error is of kind
// AlreadyExists. An invalid name or a size <= 0 is InvalidArgument, and
// nothing is created. If ctx is cancelled the error is of kind Canceled and
// nothing is left behind (or what is left is completed or removed by the next
// Allocate or Delete of the same name).
func (p *Pool) Allocate(ctx context.Context, name string, sizeBytes int64, opts *AllocateOptions) (_ *Subvol, err error) {
	const op = "allocate"
	defer p.observe(op, name, time.Now(), &err)
	if opts == nil {
		opts = &AllocateOptions{}
	}
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := p.checkSize(op, name, sizeBytes); err != nil {
		return nil, err
	}
	if opts.LimitBytes > 0 && opts.LimitBytes < sizeBytes {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, name,
			"limit %s is below the requested size %s", quota.HumanSize(opts.LimitBytes), quota.HumanSize(sizeBytes))
	}
	unlock, err := p.lock(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	req := &backend.CreateRequest{
		Name: name, SizeBytes: sizeBytes, Owner: opts.Owner.toBackend(),
		Labels: opts.Labels, Parameters: opts.Parameters,
	}
	// A warm subvolume of exactly the size, if the Pool keeps some
	// (SetWarm); else, or when none is left, a new one.
	sv, warm, err := p.takeWarm(ctx, req)
	if !warm && err == nil {
		sv, err = p.b.Create(ctx, req)
	}
	if err == nil {
		p.log.InfoContext(ctx, "subvolume allocated", "name", name, "size", sv.SizeBytes, "warm", warm)
		return fromBackend(sv), nil
	}
	if subvolkit.KindOf(err) != subvolkit.AlreadyExists {
		return nil, subvolkit.WithOp(op, name, err)
	}
	existing, gerr := p.b.Get(ctx, name)
	if gerr != nil {
		// It exists but cannot be read back (for example, half-made by
		// another process): report the original conflict.
		return nil, subvolkit.WithOp(op, name, errors.Join(err, gerr))
	}
	if existing.Source != "" || existing.SourceSnapshot != "" || !compatible(existing.SizeBytes, sizeBytes, opts.LimitBytes) {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, name,
			"exists with size %s (source %q), incompatible with the requested %s: %w",
			quota.HumanSize(existing.SizeBytes), existing.Source, quota.HumanSize(sizeBytes), err)
	}
	return fromBackend(existing), nil
}

// compatible is CSI's rule (csi-driver-host-path's): an existing size
// satisfies a request if it is at least the requested size and, when a limit
// is given, at most the limit. It knows nothing of any backend's rounding.
func compatible(existing, required, limit int64) bool {
	return existing >= required && (limit <= 0 || existing <= limit)
}

// SizeGranularity returns the unit, in bytes, to which the backend rounds
// sizes up (backend.Capabilities): 1 GiB for heketi, 1 MiB for glusterd2,
// 1 for backends that keep sizes exactly. A front end can use it to report
// capacity; the Pool's own rules do not depend on it.
func (p *Pool) SizeGranularity() int64 {
	if d, ok := p.b.(backend.Describer); ok {
		if g := d.Capabilities().SizeGranularity; g > 1 {
			return g
		}
	}
	return 1
}

// Get returns the named subvolume, or an error of kind NotFound.
func (p *Pool) Get(ctx context.Context, name string) (_ *Subvol, err error) {
	const op = "get"
	defer p.observe(op, name, time.Now(), &err)
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	sv, err := p.b.Get(ctx, name)
	if err != nil {
		return nil, subvolkit.WithOp(op, name, err)
	}
	return fromBackend(sv), nil
}

// List returns every subvolume, sorted by name.
func (p *Pool) List(ctx context.Context) (_ []*Subvol, err error) {
	const op = "list"
	defer p.observe(op, "", time.Now(), &err)
	end, err := p.begin(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer end()
	var all []*Subvol
	opts := &backend.ListOptions{}
	for {
		page, err := p.b.List(ctx, opts)
		if err != nil {
			return nil, subvolkit.WithOp(op, "", err)
		}
		all = append(all, fromBackendAll(page.Subvols)...)
		if page.NextPageToken == "" {
			return all, nil
		}
		if page.NextPageToken == opts.PageToken {
			return nil, subvolkit.Errorf(subvolkit.Internal, op, "", "backend returned the same page token %q twice", opts.PageToken)
		}
		opts = &backend.ListOptions{PageToken: page.NextPageToken}
	}
}

// Resize sets the named subvolume's size to sizeBytes (absolute, not a
// delta). Resizing to the current size is a no-op. A backend that cannot
// resize, or cannot shrink, answers Unimplemented.
func (p *Pool) Resize(ctx context.Context, name string, sizeBytes int64) (_ *Subvol, err error) {
	const op = "resize"
	defer p.observe(op, name, time.Now(), &err)
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := p.checkSize(op, name, sizeBytes); err != nil {
		return nil, err
	}
	r, ok := p.b.(backend.Resizer)
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, op, name, "backend %T cannot resize", p.b)
	}
	unlock, err := p.lock(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	sv, err := r.Resize(ctx, name, sizeBytes)
	if err != nil {
		return nil, subvolkit.WithOp(op, name, err)
	}
	p.log.InfoContext(ctx, "subvolume resized", "name", name, "size", sv.SizeBytes)
	return fromBackend(sv), nil
}

// Usage reports how much of the named subvolume is used.
func (p *Pool) Usage(ctx context.Context, name string) (_ *quota.Usage, err error) {
	const op = "usage"
	defer p.observe(op, name, time.Now(), &err)
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer end()
	u, ok := p.b.(backend.UsageReader)
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, op, name, "backend %T cannot report usage", p.b)
	}
	us, err := u.Usage(ctx, name)
	return us, subvolkit.WithOp(op, name, err)
}

// Clone creates dst with a copy of src's content. Like Allocate it is
// idempotent: an existing dst cloned from src with a compatible size is
// returned; any other existing dst is AlreadyExists. A missing src is
// NotFound; a size below src's is InvalidArgument.
func (p *Pool) Clone(ctx context.Context, src, dst string, opts *CloneOptions) (_ *Subvol, err error) {
	const op = "clone"
	defer p.observe(op, dst, time.Now(), &err)
	if opts == nil {
		opts = &CloneOptions{}
	}
	end, err := p.begin(ctx, op, dst)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := naming.ValidateSubvolName(src); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, dst, fmt.Errorf("source: %w", err))
	}
	if src == dst {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, dst, "source and destination are the same")
	}
	if opts.SizeBytes < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, dst, "size %d is negative", opts.SizeBytes)
	}
	if opts.SizeBytes > 0 {
		if err := p.checkSize(op, dst, opts.SizeBytes); err != nil {
			return nil, err
		}
	}
	c, ok := p.b.(backend.Cloner)
	if !ok {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, op, dst, "backend %T cannot clone", p.b)
	}
	// Lock both names in a fixed order so two clones cannot deadlock.
	unlock, err := keyedlock.Lock2(ctx, &p.locks, src, dst)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, op, dst, err)
	}
	defer unlock()
	sv, err := c.Clone(ctx, &backend.CloneRequest{
		Source: src, Name: dst, SizeBytes: opts.SizeBytes,
		Owner: opts.Owner.toBackend(), Labels: opts.Labels, Parameters: opts.Parameters,
	})
	if err == nil {
		p.log.InfoContext(ctx, "subvolume cloned", "source", src, "name", dst, "size", sv.SizeBytes)
		return fromBackend(sv), nil
	}
	return p.existingCopy(ctx, op, dst, err, opts.SizeBytes, "clone", src,
		func(sv *backend.Subvol) string { return sv.Source },
		func() (int64, error) {
			s, err := p.b.Get(ctx, src)
			if err != nil {
				return 0, err
			}
			return s.SizeBytes, nil
		})
}

// existingCopy answers a Clone or Restore whose backend call failed with
// err: when err is AlreadyExists and dst was copied from the same source
// (source(dst) == from) with a compatible size, dst is returned, as the
// idempotency rule says; anything else is an error. want is the requested
// size, 0 for the source's (read with sourceSize).
func (p *Pool) existingCopy(ctx context.Context, op, dst string, err error, want int64, what, from string,
	source func(*backend.Subvol) string, sourceSize func() (int64, error)) (*Subvol, error) {
	if subvolkit.KindOf(err) != subvolkit.AlreadyExists {
		return nil, subvolkit.WithOp(op, dst, err)
	}
	existing, gerr := p.b.Get(ctx, dst)
	if gerr != nil {
		return nil, subvolkit.WithOp(op, dst, errors.Join(err, gerr))
	}
	if want == 0 {
		if n, serr := sourceSize(); serr == nil {
			want = n
		}
	}
	if source(existing) != from || (want > 0 && !compatible(existing.SizeBytes, want, 0)) {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, dst,
			"exists (from %q, size %s), incompatible with a %s of %q: %w",
			source(existing), quota.HumanSize(existing.SizeBytes), what, from, err)
	}
	return fromBackend(existing), nil
}

// Delete removes the named subvolume according to opts (nil: delete the
// data). Deleting a subvolume that does not exist succeeds, as CSI requires.
func (p *Pool) Delete(ctx context.Context, name string, opts *DeleteOptions) (err error) {
	const op = "delete"
	defer p.observe(op, name, time.Now(), &err)
	if opts == nil {
		opts = &DeleteOptions{}
	}
	end, err := p.begin(ctx, op, name)
	if err != nil {
		return err
	}
	defer end()
	switch opts.Policy {
	case DeletePolicyDelete, DeletePolicyRetain, DeletePolicyArchive:
	default:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, name, "unknown delete policy %d", opts.Policy)
	}
	unlock, err := p.lock(ctx, op, name)
	if err != nil {
		return err
	}
	defer unlock()
	err = p.b.Delete(ctx, name, &backend.DeleteOptions{Policy: backend.DeletePolicy(opts.Policy)})
	if subvolkit.KindOf(err) == subvolkit.NotFound {
		return nil
	}
	if err != nil {
		return subvolkit.WithOp(op, name, err)
	}
	p.log.InfoContext(ctx, "subvolume deleted", "name", name, "policy", opts.Policy.String())
	return nil
}

// lock takes the Pool's lock on name, waiting no longer than ctx allows.
func (p *Pool) lock(ctx context.Context, op, name string) (unlock func(), err error) {
	unlock, err = p.locks.Lock(ctx, name)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, op, name, err)
	}
	return unlock, nil
}

// check validates a live context and (when name != "") a valid name.
func (p *Pool) check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, op, name, err)
	}
	if name == "" && (op == "list" || op == "reconcile" || op == "drain warm") {
		return nil
	}
	if err := naming.ValidateSubvolName(name); err != nil {
		return subvolkit.WithOp(op, name, err)
	}
	return nil
}

func (p *Pool) checkSize(op, name string, size int64) error {
	if size <= 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, name, "size must be positive, got %d", size)
	}
	if p.maxSz > 0 && size > p.maxSz {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, name, "size %s is above the pool's maximum %s",
			quota.HumanSize(size), quota.HumanSize(p.maxSz))
	}
	return nil
}
