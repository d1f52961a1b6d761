package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/subvolkit/subvolkit/subvol"
)

// burst measures count allocates at once (8 callers) through a cold Pool
// and through a Pool with count warm subvolumes ready, against the raw
// calls one after another (at once, most of them fail: see concurrent).
//
// Warm subvolumes are counted on the whole volume, so the warm class has a
// size of its own (1 GiB plus a random number of KiB): the run never takes
// or drains another user's stock.
func (b *bench) burst(ctx context.Context) (s Section, err error) {
	n := b.cfg.count
	s = Section{Name: "burst", Title: fmt.Sprintf("burst of %d allocates", n)}
	var ours, raw []string
	defer func() { err = errors.Join(err, b.deleteAll(ctx, ours, raw)) }()

	warmSize := b.cfg.size + int64(1+mrand.IntN(1000))<<10
	b.t.warmSize.Store(warmSize)
	warm, err := b.t.addPool(ctx, nil)
	if err != nil {
		return s, err
	}
	defer func() { err = errors.Join(err, b.t.dropWarm(ctx, warm)) }()
	if err := warm.SetWarm([]subvol.WarmClass{{SizeBytes: warmSize, Count: n}}); err != nil {
		return s, err
	}
	// Nothing is timed while the warm Pool refills: it shares the volume's
	// quota lock with everything measured here.
	waitWarm := func() error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		return warm.WaitWarm(wctx)
	}

	var tCold, tWarm, tRaw time.Duration
	burstOf := func(kind string, pool *subvol.Pool, size int64, wall *time.Duration) func() error {
		return func() error {
			if err := waitWarm(); err != nil {
				return err
			}
			ns := b.names(kind, n, &ours)
			d, errs := parallel(n, 8, func(i int) error {
				_, err := pool.Allocate(ctx, ns[i], size, nil)
				return err
			})
			*wall += d
			return errors.Join(errs...)
		}
	}
	runRaw := func() error {
		if err := waitWarm(); err != nil {
			return err
		}
		ns := b.names("rawburst", n, &raw)
		d, errs := parallel(n, 1, func(i int) error { return b.t.rawAllocate(ctx, ns[i], b.cfg.size) })
		tRaw += d
		return errors.Join(errs...)
	}
	steps := []func() error{burstOf("burst", b.t.pool, b.cfg.size, &tCold), burstOf("warm", warm, warmSize, &tWarm), runRaw}
	for i := range b.cfg.bigRounds {
		for k := range steps {
			if err := errors.Join(ctx.Err(), steps[(k+i)%len(steps)]()); err != nil {
				return s, err
			}
		}
	}
	// One at a time, the latency of a warm allocate itself.
	dWarm, dRaw, err := interleaveSettled(ctx, b.cfg.rounds, waitWarm, func(ctx context.Context, _ int) error {
		_, err := warm.Allocate(ctx, b.names("warm1", 1, &ours)[0], warmSize, nil)
		return err
	}, func(ctx context.Context, _ int) error {
		return b.t.rawAllocate(ctx, b.names("rawone", 1, &raw)[0], b.cfg.size)
	})
	if err != nil {
		return s, err
	}
	for _, st := range warm.WarmStatus() {
		if st.SizeBytes == warmSize && st.Missed > 0 {
			return s, fmt.Errorf("%d of the warm burst's allocates found no warm subvolume", st.Missed)
		}
	}
	rounds := float64(b.cfg.bigRounds)
	const is = "raw allocates one after another"
	s.Rows = append(s.Rows,
		newRow("cold Pool, 8 callers: all done", unitS, tCold.Seconds()/rounds, tRaw.Seconds()/rounds, is),
		newRow(fmt.Sprintf("%d warm, 8 callers: all done", n), unitS, tWarm.Seconds()/rounds, tRaw.Seconds()/rounds, is),
		newRow("warm allocate, one at a time: p50", unitMs, pct(dWarm, 50), pct(dRaw, 50), "mkdir + quota limit-usage"))
	return s, nil
}

// dropWarm stops pool's refills, closes it and removes the run's warm
// subvolumes (only those of the run's own warm size).
func (t *target) dropWarm(ctx context.Context, pool *subvol.Pool) error {
	err := pool.SetWarm(nil)
	t.mu.Lock()
	for i, p := range t.extraPools {
		if p == pool {
			t.extraPools = append(t.extraPools[:i], t.extraPools[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	return errors.Join(err, pool.Close(), t.drainWarm(ctx))
}

// drainWarm removes the warm subvolumes of the run's warm size, if any,
// and waits for their purge.
func (t *target) drainWarm(ctx context.Context) error {
	size := t.warmSize.Load()
	if size == 0 {
		return nil
	}
	n, err := t.bk.DrainWarm(ctx, size, 0)
	if err != nil {
		return err
	}
	if n > 0 {
		return t.waitPurge(ctx, 10*time.Minute)
	}
	return nil
}

// names returns n fresh names of kind and records them in acc.
func (b *bench) names(kind string, n int, acc *[]string) []string {
	ns := make([]string, n)
	for i := range ns {
		ns[i] = b.t.name(kind)
	}
	*acc = append(*acc, ns...)
	return ns
}
