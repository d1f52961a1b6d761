package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/subvolkit/subvolkit/subvol"
)

// listVariant is one way of listing, measured against ReadDir of the root.
type listVariant struct {
	measure, note string
	run           func(ctx context.Context, i int) error
}

// listPages reads every page of pool.ListPage with opts.
func listPages(ctx context.Context, pool *subvol.Pool, opts subvol.ListOptions) ([]*subvol.Subvol, error) {
	var all []*subvol.Subvol
	for {
		page, err := pool.ListPage(ctx, &opts)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Subvols...)
		if page.NextPageToken == "" {
			return all, nil
		}
		opts.PageToken = page.NextPageToken
	}
}

func listVariants(b *bench) []listVariant {
	want := len(b.listed)
	check := func(what string, subs []*subvol.Subvol, err error) error {
		if err == nil && len(subs) < want {
			err = fmt.Errorf("%s: %d subvolumes, want at least %d", what, len(subs), want)
		}
		return err
	}
	return []listVariant{{
		measure: "names only (ListPage, NamesOnly)",
		run: func(ctx context.Context, _ int) error {
			subs, err := listPages(ctx, b.t.pool, subvol.ListOptions{NamesOnly: true})
			return check("ListPage", subs, err)
		},
	}, {
		measure: "with details (Pool.List)",
		run: func(ctx context.Context, _ int) error {
			subs, err := b.t.pool.List(ctx)
			return check("Pool.List", subs, err)
		},
	}}
}

// usageOfAll returns the measure of the usage section: the usage of every
// subvolume, in bulk.
func usageOfAll(b *bench) (measure, note string, run func(ctx context.Context, i int) error) {
	return "ListPage with usage", "", func(ctx context.Context, _ int) error {
		_, err := usageOf(ctx, b.t, b.listed, b.cfg.size)
		return err
	}
}

// usageOf reads the usage of every subvolume (ListPage with WithUsage)
// and checks that each of names has a limit of size. It returns how many
// usages it read.
func usageOf(ctx context.Context, t *target, names []string, size int64) (int, error) {
	subs, err := listPages(ctx, t.pool, subvol.ListOptions{WithUsage: true})
	if err != nil {
		return 0, err
	}
	byName := make(map[string]*subvol.Subvol, len(subs))
	for _, sv := range subs {
		if strings.HasPrefix(sv.Name, t.prefix) {
			byName[sv.Name] = sv
		}
	}
	for _, n := range names {
		sv := byName[n]
		if sv == nil {
			return len(subs), fmt.Errorf("%s is not listed", n)
		}
		if err := sizeOK(sv.Usage, size); err != nil {
			return len(subs), fmt.Errorf("%s: %w", n, err)
		}
	}
	return len(subs), nil
}
