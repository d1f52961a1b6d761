package memory

import (
	"context"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

var _ backend.Warmer = (*Backend)(nil)

// Warm implements backend.Warmer: a warm subvolume is a reservation of
// sizeBytes of the capacity, without a directory.
func (b *Backend) Warm(ctx context.Context, sizeBytes int64) error {
	const op = "warm"
	if sizeBytes <= 0 {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size must be positive, got %d", sizeBytes)
	}
	if err := b.lock(ctx, op, ""); err != nil {
		return err
	}
	defer b.unlock()
	if err := b.checkFree(op, "", sizeBytes); err != nil {
		return err
	}
	if b.warm == nil {
		b.warm = map[int64]int{}
	}
	b.warm[sizeBytes]++
	b.reserved += sizeBytes
	return nil
}

// WarmCounts implements backend.Warmer.
func (b *Backend) WarmCounts(ctx context.Context) (map[int64]int, error) {
	if err := b.lock(ctx, "warm counts", ""); err != nil {
		return nil, err
	}
	defer b.unlock()
	counts := make(map[int64]int, len(b.warm))
	for size, n := range b.warm {
		if n > 0 {
			counts[size] = n
		}
	}
	return counts, nil
}

// TakeWarm implements backend.Warmer.
func (b *Backend) TakeWarm(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, bool, error) {
	const op = "create"
	if req == nil {
		return nil, false, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "nil request")
	}
	if err := checkRequest(op, req.Name, req.SizeBytes, req.Owner, req.Parameters); err != nil {
		return nil, false, err
	}
	if err := b.lock(ctx, op, req.Name); err != nil {
		return nil, false, err
	}
	defer b.unlock()
	if b.warm[req.SizeBytes] == 0 {
		return nil, false, nil
	}
	if _, ok := b.subvols[req.Name]; ok {
		return nil, false, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "the name is taken")
	}
	sv := b.newSubvol(req.Name, req.SizeBytes, req.Owner, req.Labels)
	if b.dir != "" {
		if err := b.mkdir(ctx, op, req.Name, sv, nil); err != nil {
			return nil, false, err
		}
	}
	b.warm[req.SizeBytes]--
	b.subvols[req.Name] = sv
	return copySubvol(sv), true, nil
}

// DrainWarm implements backend.Warmer.
func (b *Backend) DrainWarm(ctx context.Context, sizeBytes int64, keep int) (int, error) {
	if sizeBytes < 0 || keep < 0 {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %d and keep %d must not be negative", sizeBytes, keep)
	}
	if err := b.lock(ctx, "drain warm", ""); err != nil {
		return 0, err
	}
	defer b.unlock()
	removed := 0
	for size, n := range b.warm {
		if (sizeBytes == 0 || size == sizeBytes) && n > keep {
			removed += n - keep
			b.reserved -= int64(n-keep) * size
			b.warm[size] = keep
		}
	}
	return removed, nil
}
