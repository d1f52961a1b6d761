package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// burst measures count allocates at once (8 callers): through a cold Pool
// and, where the Pool has warm subvolumes, through a warm one, against the
// raw calls one after another (at once, they fail: see concurrent).
func (b *bench) burst(ctx context.Context) (Section, error) {
	n := b.cfg.count
	s := Section{Name: "burst", Title: fmt.Sprintf("burst of %d allocates", n)}
	var ours, raw []string
	var tCold, tRaw time.Duration
	runCold := func() error {
		ns := b.names("burst", n, &ours)
		d, errs := parallel(n, 8, func(i int) error {
			_, err := b.t.pool.Allocate(ctx, ns[i], b.cfg.size, nil)
			return err
		})
		tCold += d
		return errors.Join(errs...)
	}
	runRaw := func() error {
		ns := b.names("rawburst", n, &raw)
		d, errs := parallel(n, 1, func(i int) error { return b.t.rawAllocate(ctx, ns[i], b.cfg.size) })
		tRaw += d
		return errors.Join(errs...)
	}
	var err error
	for i := range b.cfg.bigRounds {
		order := []func() error{runCold, runRaw}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			if err = errors.Join(ctx.Err(), f()); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	err = errors.Join(err, b.deleteAll(ctx, ours, raw))
	rounds := float64(b.cfg.bigRounds)
	s.Rows = append(s.Rows, newRow("cold Pool, 8 callers: all done", unitS,
		tCold.Seconds()/rounds, tRaw.Seconds()/rounds, "raw allocates one after another"))
	return s, err
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
