package subvol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit"
)

// ErrInProgress matches (with errors.Is) the error a copy returns when its
// caller stops waiting before the copy has finished: the copy goes on in the
// background, and a later call with the same arguments waits for it again or
// returns its result. The error's kind is Unavailable (retry later); a CSI
// driver answers ABORTED.
var ErrInProgress = errors.New("operation in progress")

// background runs the Pool's long copies (CreateSnapshot, Restore,
// CloneInBackground) as jobs that outlive the calls that started them, at
// most one per destination name. The zero value is ready to use.
//
// Jobs are in memory only. What makes them crash-safe is the backend: a copy
// interrupted by a crash leaves something the backend never reports as
// complete, and removes when the same name is created again.
type background struct {
	mu      sync.Mutex
	jobs    map[string]*job
	ctx     context.Context // cancelled by stop
	cancel  context.CancelFunc
	stopped bool
}

// job is one running copy.
type job struct {
	args    string // what the job does, to tell a retry from a conflicting call
	started time.Time
	done    chan struct{}
	res     any
	err     error
	waiters int // calls waiting for it; g.mu
}

// run starts fn as the job key, or joins the job already running under key,
// and waits for its result until ctx is done. A running job with other args
// is AlreadyExists. When ctx is done first, the error is of kind Unavailable
// and matches ErrInProgress; the job continues.
func (g *background) run(ctx context.Context, op, name, key, args string, fn func(ctx context.Context) (any, error)) (any, error) {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, op, name, "pool is closed")
	}
	// The job's own context: a copy outlives the call, not the Pool.
	if g.ctx == nil {
		g.ctx, g.cancel = context.WithCancel(context.Background())
		g.jobs = map[string]*job{}
	}
	j := g.jobs[key]
	if j != nil && j.finished() {
		// A failed job whose caller had stopped waiting: this call
		// reports its error, once; the next starts afresh.
		delete(g.jobs, key)
		if j.args == args {
			g.mu.Unlock()
			return j.res, j.err
		}
		j = nil
	}
	if j != nil && j.args != args {
		g.mu.Unlock()
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, op, name,
			"another operation on %q is in progress (%s, started %s ago)", name, j.args, time.Since(j.started).Round(time.Millisecond))
	}
	if j == nil {
		j = &job{args: args, started: time.Now(), done: make(chan struct{})}
		g.jobs[key] = j
		go func() {
			j.res, j.err = fn(g.ctx)
			g.mu.Lock()
			if j.err == nil || j.waiters == 0 && g.ctx.Err() != nil {
				delete(g.jobs, key)
			}
			close(j.done)
			g.mu.Unlock()
		}()
	}
	j.waiters++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		j.waiters--
		g.mu.Unlock()
	}()
	// A finished job wins over a done context.
	select {
	case <-j.done:
		return j.result(g, key)
	default:
	}
	select {
	case <-j.done:
		return j.result(g, key)
	case <-ctx.Done():
		return nil, subvolkit.E(subvolkit.Unavailable, op, name,
			fmt.Errorf("%w: %s, started %s ago, continues in the background",
				ErrInProgress, args, time.Since(j.started).Round(time.Millisecond)))
	}
}

// finished reports whether the job has returned. g.mu is held.
func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// result returns the job's result to a caller that waited for it; a failed
// job, reported now, is forgotten.
func (j *job) result(g *background, key string) (any, error) {
	if j.err != nil {
		g.mu.Lock()
		if g.jobs[key] == j {
			delete(g.jobs, key)
		}
		g.mu.Unlock()
	}
	return j.res, j.err
}

// cancelAll cancels the running jobs; they return soon (the Pool waits for
// them as in-flight operations). Jobs cannot be started after cancelAll.
func (g *background) cancelAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	if g.cancel != nil {
		g.cancel()
	}
}

// inProgress reports whether a job runs under key.
func (g *background) inProgress(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	j := g.jobs[key]
	return j != nil && !j.finished()
}
