package main

import (
	"context"
	"fmt"
)

// listVariant is one way of listing, measured against ReadDir of the root.
type listVariant struct {
	measure, note string
	run           func(ctx context.Context, i int) error
}

func listVariants(b *bench) []listVariant {
	want := len(b.listed)
	return []listVariant{{
		measure: "with details (Pool.List)",
		run: func(ctx context.Context, _ int) error {
			subs, err := b.t.pool.List(ctx)
			if err == nil && len(subs) < want {
				err = fmt.Errorf("Pool.List: %d subvolumes, want at least %d", len(subs), want)
			}
			return err
		},
	}}
}

// usageOfAll returns the measure of the usage section: the usage of every
// listed subvolume.
func usageOfAll(b *bench) (measure, note string, run func(ctx context.Context, i int) error) {
	return "List + Usage of each", "", func(ctx context.Context, _ int) error {
		subs, err := b.t.pool.List(ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, sv := range subs {
			u, err := b.t.pool.Usage(ctx, sv.Name)
			if err != nil {
				return err
			}
			if sv.SizeBytes == b.cfg.size {
				if err := sizeOK(u, b.cfg.size); err != nil {
					return fmt.Errorf("%s: %w", sv.Name, err)
				}
				n++
			}
		}
		if n < len(b.listed) {
			return fmt.Errorf("usage of %d subvolumes, want at least %d", n, len(b.listed))
		}
		return nil
	}
}
