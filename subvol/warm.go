package subvol

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
)

// WarmClass is one size of subvolumes the Pool keeps ready ("warm"):
// pre-made and pre-limited, without a name, so that an Allocate of exactly
// SizeBytes is a few renames instead of a serialized quota call. See
// Pool.SetWarm.
type WarmClass struct {
	// SizeBytes is the class's size. Only an Allocate of exactly this
	// size (with no Parameters) takes a warm subvolume.
	SizeBytes int64
	// Count is how many warm subvolumes of the size to keep ready, counted
	// on the whole volume (other processes' Pools take from and refill
	// the same stock).
	Count int
}

// MaxWarmCount bounds WarmClass.Count.
const MaxWarmCount = 10000

// WarmStatus reports one warm class.
type WarmStatus struct {
	SizeBytes int64
	// Target is the class's Count; Ready is how many warm subvolumes of
	// the size there were when last counted or made.
	Target, Ready int
	// Taken counts the Allocates this Pool served from the class; Missed
	// those of the class's size that found none left and made one the
	// normal way.
	Taken, Missed uint64
	// Err is the last refill's error, nil once a refill succeeds.
	Err error
}

// warmer keeps the Pool's warm classes stocked: one goroutine refills them
// one subvolume at a time, woken by every take, by SetWarm, and every
// warmRecount to see what other processes took.
type warmer struct {
	// building is held by the refiller for each warm subvolume it makes
	// and by DrainWarm, so that none lands after a drain counted the
	// stock; the refiller checks under it that the class is still kept.
	building sync.Mutex

	mu      sync.Mutex
	classes []WarmClass
	status  map[int64]*WarmStatus
	changed chan struct{} // closed and replaced on every status change
	kick    chan struct{}
	running bool
	cancel  context.CancelFunc
}

// warmRecount is how often the refiller counts the stock when nothing
// woke it; warmMaxBackoff bounds its wait after failed refills.
const (
	warmRecount    = 30 * time.Second
	warmMaxBackoff = 30 * time.Second
)

// SetWarm sets the sizes and counts of warm subvolumes the Pool keeps
// ready, and starts refilling them in the background (one at a time, so
// foreground operations keep their turn at the volume's quota lock). An
// empty list stops refilling; warm subvolumes already made stay until
// taken or removed with DrainWarm.
//
// Sizes must be positive, distinct and within the Pool's MaxSizeBytes;
// counts from 0 to MaxWarmCount: anything else is InvalidArgument and
// changes nothing. A backend without warm subvolumes (backend.Warmer) is
// Unimplemented; a closed Pool FailedPrecondition.
func (p *Pool) SetWarm(classes []WarmClass) error {
	const op = "set warm"
	w, ok := p.b.(backend.Warmer)
	if !ok {
		return subvolkit.Errorf(subvolkit.Unimplemented, op, "", "backend %T has no warm subvolumes", p.b)
	}
	seen := map[int64]bool{}
	for _, c := range classes {
		if err := p.checkSize(op, "", c.SizeBytes); err != nil {
			return err
		}
		if seen[c.SizeBytes] {
			return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size %s is given twice", quota.HumanSize(c.SizeBytes))
		}
		seen[c.SizeBytes] = true
		if c.Count < 0 || c.Count > MaxWarmCount {
			return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "count %d for size %s is outside 0..%d",
				c.Count, quota.HumanSize(c.SizeBytes), MaxWarmCount)
		}
	}
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if closing {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, op, "", "pool is closed")
	}
	ws := &p.warm
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.classes = slices.Clone(classes)
	old := ws.status
	ws.status = map[int64]*WarmStatus{}
	for _, c := range classes {
		st := &WarmStatus{SizeBytes: c.SizeBytes}
		if o := old[c.SizeBytes]; o != nil {
			*st = *o
		}
		st.Target = c.Count
		ws.status[c.SizeBytes] = st
	}
	ws.changedLocked()
	if !ws.running && len(classes) > 0 {
		ws.running = true
		ctx, cancel := context.WithCancel(context.Background())
		ws.cancel = cancel
		ws.kick = make(chan struct{}, 1)
		go p.refill(ctx, w)
	}
	ws.wake()
	return nil
}

// WarmStatus reports the Pool's warm classes, by size.
func (p *Pool) WarmStatus() []WarmStatus {
	ws := &p.warm
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make([]WarmStatus, 0, len(ws.status))
	for _, st := range ws.status {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b WarmStatus) int { return int(min(max(a.SizeBytes-b.SizeBytes, -1), 1)) })
	return out
}

// WaitWarm waits until every warm class holds its Count. It returns the
// first refill error it sees, and an error of kind Canceled or
// DeadlineExceeded when ctx ends first.
func (p *Pool) WaitWarm(ctx context.Context) error {
	const op = "wait warm"
	ws := &p.warm
	for {
		ws.mu.Lock()
		full := true
		var err error
		for _, st := range ws.status {
			if st.Ready < st.Target {
				full = false
				if st.Err != nil && err == nil {
					err = st.Err
				}
			}
		}
		ch := ws.changedChanLocked()
		ws.mu.Unlock()
		switch {
		case full:
			return nil
		case err != nil:
			return subvolkit.WithOp(op, "", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return subvolkit.E(subvolkit.Canceled, op, "", ctx.Err())
		}
	}
}

// DrainWarm removes warm subvolumes of the sizes this Pool does not keep
// ready, and those above its classes' counts, and reports how many it
// removed (their data and limits are purged in the background). A warm
// subvolume the Pool's refiller is making meanwhile is waited for and
// counted, so SetWarm(nil) then DrainWarm leaves none.
func (p *Pool) DrainWarm(ctx context.Context) (_ int, err error) {
	const op = "drain warm"
	defer p.observe(op, "", time.Now(), &err)
	w, ok := p.b.(backend.Warmer)
	if !ok {
		return 0, subvolkit.Errorf(subvolkit.Unimplemented, op, "", "backend %T has no warm subvolumes", p.b)
	}
	end, err := p.begin(ctx, op, "")
	if err != nil {
		return 0, err
	}
	defer end()
	// A warm subvolume the refiller is making lands before the count.
	p.warm.building.Lock()
	defer p.warm.building.Unlock()
	counts, err := w.WarmCounts(ctx)
	if err != nil {
		return 0, subvolkit.WithOp(op, "", err)
	}
	keep := map[int64]int{}
	p.warm.mu.Lock()
	for _, c := range p.warm.classes {
		keep[c.SizeBytes] = c.Count
	}
	p.warm.mu.Unlock()
	total := 0
	for size, n := range counts {
		if n <= keep[size] {
			continue
		}
		removed, err := w.DrainWarm(ctx, size, keep[size])
		total += removed
		if err != nil {
			return total, subvolkit.WithOp(op, "", err)
		}
	}
	p.warm.mu.Lock()
	for size, st := range p.warm.status {
		st.Ready = min(st.Ready, keep[size])
	}
	p.warm.changedLocked()
	p.warm.mu.Unlock()
	return total, nil
}

// takeWarm hands out a warm subvolume for an Allocate of size, if size is
// one of the Pool's classes: took is false when it is not or none is left.
func (p *Pool) takeWarm(ctx context.Context, req *backend.CreateRequest) (sv *backend.Subvol, took bool, err error) {
	w, ok := p.b.(backend.Warmer)
	if !ok || len(req.Parameters) > 0 {
		return nil, false, nil
	}
	ws := &p.warm
	ws.mu.Lock()
	st := ws.status[req.SizeBytes]
	ws.mu.Unlock()
	if st == nil {
		return nil, false, nil
	}
	sv, took, err = w.TakeWarm(ctx, req)
	ws.mu.Lock()
	if st = ws.status[req.SizeBytes]; st != nil && err == nil {
		if took {
			st.Taken++
			st.Ready = max(st.Ready-1, 0)
		} else {
			st.Missed++
			st.Ready = 0
		}
		ws.changedLocked()
	}
	ws.wake()
	ws.mu.Unlock()
	return sv, took, err
}

// refill is the refiller goroutine. Each backend call is an in-flight
// operation of the Pool, so Close waits for it; Close also cancels ctx.
func (p *Pool) refill(ctx context.Context, w backend.Warmer) {
	ws := &p.warm
	backoff := time.Duration(0)
	for {
		err := p.refillOnce(ctx, w)
		wait := warmRecount
		if err != nil {
			backoff = min(max(2*backoff, time.Second), warmMaxBackoff)
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ws.kick:
			t.Stop()
			if !settle(ctx, ws.kick) {
				return
			}
		case <-t.C:
		}
	}
}

// warmSettle and warmSettleMax bound how long the refiller lets a burst of
// takes go on before it refills: its quota calls would slow the burst's.
const (
	warmSettle    = 100 * time.Millisecond
	warmSettleMax = 2 * time.Second
)

// settle waits until kick has been quiet for warmSettle, at most
// warmSettleMax in all; false means ctx ended.
func settle(ctx context.Context, kick <-chan struct{}) bool {
	deadline := time.NewTimer(warmSettleMax)
	defer deadline.Stop()
	quiet := time.NewTimer(warmSettle)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-quiet.C:
			return true
		case <-kick:
			quiet.Reset(warmSettle)
		}
	}
}

// refillOnce counts the stock and makes what is missing, one at a time. It
// returns the first error, which it also records in the class's status.
func (p *Pool) refillOnce(ctx context.Context, w backend.Warmer) error {
	ws := &p.warm
	var counts map[int64]int
	if err := p.background(ctx, func() (err error) {
		counts, err = w.WarmCounts(ctx)
		return err
	}); err != nil {
		return err
	}
	ws.mu.Lock()
	classes := slices.Clone(ws.classes)
	for _, c := range classes {
		if st := ws.status[c.SizeBytes]; st != nil {
			st.Ready = counts[c.SizeBytes]
		}
	}
	ws.changedLocked()
	ws.mu.Unlock()
	for _, c := range classes {
		for n := counts[c.SizeBytes]; n < c.Count; n++ {
			ws.building.Lock()
			ws.mu.Lock()
			st := ws.status[c.SizeBytes]
			ws.mu.Unlock()
			if st == nil || n >= st.Target {
				ws.building.Unlock()
				break // the class was removed or shrunk meanwhile
			}
			err := p.background(ctx, func() error { return w.Warm(ctx, c.SizeBytes) })
			ws.building.Unlock()
			ws.mu.Lock()
			st = ws.status[c.SizeBytes]
			if st != nil {
				st.Err = err
				if err == nil {
					st.Ready++
				}
			}
			ws.changedLocked()
			ws.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					p.log.WarnContext(ctx, "refilling warm subvolumes failed", "size", c.SizeBytes, "err", err)
				}
				return err
			}
			if st == nil {
				break // the class was removed meanwhile
			}
		}
	}
	return nil
}

// background runs f as an in-flight operation of the Pool (Close waits for
// it), or fails with FailedPrecondition once the Pool is closing.
func (p *Pool) background(ctx context.Context, f func() error) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "warm", "", "pool is closed")
	}
	p.inflight++
	p.mu.Unlock()
	defer p.endOp()
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "warm", "", err)
	}
	if err := f(); err != nil {
		return subvolkit.WithOp("warm", "", err)
	}
	return nil
}

// stop cancels the refiller; Close waits for its in-flight call.
func (ws *warmer) stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.cancel != nil {
		ws.cancel()
	}
}

// wake wakes the refiller without blocking.
func (ws *warmer) wake() {
	select {
	case ws.kick <- struct{}{}:
	default:
	}
}

// changedLocked wakes WaitWarm callers. ws.mu is held.
func (ws *warmer) changedLocked() {
	if ws.changed != nil {
		close(ws.changed)
	}
	ws.changed = make(chan struct{})
}

// changedChanLocked returns the channel closed at the next change. ws.mu
// is held.
func (ws *warmer) changedChanLocked() chan struct{} {
	if ws.changed == nil {
		ws.changed = make(chan struct{})
	}
	return ws.changed
}

// ParseWarmClasses reads warm classes written as comma-separated
// SIZE:COUNT pairs, sizes as quota.ParseQuantity reads them: "1Gi:20,10Gi:5".
// Front ends use it for a --warm flag or a parameter. An empty string is no
// classes; anything malformed is an error of kind InvalidArgument. Counts
// and sizes are checked again by SetWarm.
func ParseWarmClasses(s string) ([]WarmClass, error) {
	const op = "parse warm classes"
	var out []WarmClass
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		sz, cnt, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "%q: want SIZE:COUNT, such as 1Gi:20", part)
		}
		size, err := quota.ParseQuantity(strings.TrimSpace(sz))
		if err != nil {
			return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", fmt.Errorf("size in %q: %w", part, err))
		}
		n, err := strconv.Atoi(strings.TrimSpace(cnt))
		if err != nil || n < 0 || n > MaxWarmCount {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "count in %q: want 0..%d", part, MaxWarmCount)
		}
		if size <= 0 {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size in %q must be positive", part)
		}
		out = append(out, WarmClass{SizeBytes: size, Count: n})
	}
	return out, nil
}

// String writes c as ParseWarmClasses reads it ("1Gi:20").
func (c WarmClass) String() string {
	return quota.FormatQuantity(c.SizeBytes) + ":" + strconv.Itoa(c.Count)
}
