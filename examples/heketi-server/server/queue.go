package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// errBusy is returned by queue.start when MaxInFlight operations run.
var errBusy = errors.New("too many operations in flight")

// errShuttingDown is returned by queue.start after shutdown began.
var errShuttingDown = errors.New("server is shutting down")

// doneTTL is how long a finished operation nobody asked about is kept.
// heketi keeps them until the server stops; a client that gave up polling
// would otherwise make the queue grow for ever.
const doneTTL = time.Hour

// queue runs heketi's asynchronous operations: each runs in its own
// goroutine under the server's lifetime context, and its outcome is read
// once at /queue/{id}. It is safe for concurrent use.
type queue struct {
	log     *slog.Logger
	max     int
	timeout time.Duration
	ctx     context.Context // cancelled when the server stops for good
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	ops      map[string]*operation
	inflight int
	closed   bool
}

type operation struct {
	done     bool
	err      error
	location string // "" with done and no err: 204
	finished time.Time
}

func newQueue(log *slog.Logger, max int, timeout time.Duration) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	return &queue{log: log, max: max, timeout: timeout, ctx: ctx, cancel: cancel, ops: map[string]*operation{}}
}

// start runs fn in the background and returns the operation's id, or
// errBusy when max operations are already running. fn returns the path of
// the resource it made or changed ("" for none) or an error.
func (q *queue) start(label string, fn func(ctx context.Context) (string, error)) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return "", errShuttingDown
	}
	if q.inflight >= q.max {
		return "", errBusy
	}
	now := time.Now()
	for id, op := range q.ops {
		if op.done && now.Sub(op.finished) > doneTTL {
			delete(q.ops, id)
		}
	}
	id := newID()
	op := &operation{}
	q.ops[id] = op
	q.inflight++
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		ctx, cancel := context.WithTimeout(q.ctx, q.timeout)
		defer cancel()
		t0 := time.Now()
		loc, err := fn(ctx)
		q.log.Info("operation finished", "op", id, "what", label, "duration", time.Since(t0).Round(time.Millisecond), "err", err)
		q.mu.Lock()
		op.done, op.err, op.location, op.finished = true, err, loc, time.Now()
		q.inflight--
		q.mu.Unlock()
	}()
	return id, nil
}

// running returns the number of operations in flight.
func (q *queue) running() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inflight
}

// serveStatus answers GET /queue/{id} the way heketi does: 200 with
// X-Pending while running; then once, 500 with the error, 303 to the
// resource or 204; 404 "Id not found" for anything else.
func (q *queue) serveStatus(w http.ResponseWriter, r *http.Request, id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	op, ok := q.ops[id]
	switch {
	case !ok:
		http.Error(w, "Id not found", http.StatusNotFound)
		return
	case !op.done:
		w.Header().Set("X-Pending", "true")
		w.WriteHeader(http.StatusOK)
		return
	}
	delete(q.ops, id)
	switch {
	case op.err != nil:
		http.Error(w, op.err.Error(), http.StatusInternalServerError)
	case op.location != "":
		http.Redirect(w, r, op.location, http.StatusSeeOther)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// shutdown refuses new operations and waits for the running ones until ctx
// is done; then it cancels them (the backend rolls back what they half
// made) and waits for them to return.
func (q *queue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return ctx.Err()
	}
}
