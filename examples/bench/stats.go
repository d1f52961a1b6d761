package main

import (
	"context"
	"slices"
	"time"
)

// interleave runs ours and raw once each per round, alternating which goes
// first so that drift in the machine's load hits both alike, and returns
// the durations of each. It stops at the first error.
func interleave(ctx context.Context, rounds int, ours, raw func(ctx context.Context, i int) error) (o, r []time.Duration, err error) {
	return interleaveSettled(ctx, rounds, nil, ours, raw)
}

// interleaveSettled is interleave that calls settle (if not nil), untimed,
// before each timed call: to let background work finish first.
func interleaveSettled(ctx context.Context, rounds int, settle func() error, ours, raw func(ctx context.Context, i int) error) (o, r []time.Duration, err error) {
	timed := func(f func(context.Context, int) error, i int, acc *[]time.Duration) error {
		if settle != nil {
			if err := settle(); err != nil {
				return err
			}
		}
		start := time.Now()
		if err := f(ctx, i); err != nil {
			return err
		}
		*acc = append(*acc, time.Since(start))
		return nil
	}
	for i := range rounds {
		if err := ctx.Err(); err != nil {
			return o, r, err
		}
		first, second := ours, raw
		fa, sa := &o, &r
		if i%2 == 1 {
			first, second, fa, sa = raw, ours, &r, &o
		}
		if err := timed(first, i, fa); err != nil {
			return o, r, err
		}
		if err := timed(second, i, sa); err != nil {
			return o, r, err
		}
	}
	return o, r, nil
}

// pct returns the p-th percentile (0 < p <= 100, nearest rank) of ds in
// milliseconds.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	k = min(max(k, 0), len(s)-1)
	return ms(s[k])
}

// mean returns the mean of ds in milliseconds.
func mean(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return ms(sum) / float64(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
