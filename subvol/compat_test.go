package subvol_test

import (
	"errors"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// With the memory backend (which keeps sizes exactly), allocating 1 GiB
// where 5 GiB exists returns the existing subvolume: CSI's rule, not a
// backend's rounding.
func TestAllocateSmallerReturnsExisting(t *testing.T) {
	p := subvol.NewPool(memory.New(nil), nil)
	big, err := p.Allocate(t.Context(), "pv", 5*quota.GiB, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Allocate(t.Context(), "pv", quota.GiB, nil)
	if err != nil {
		t.Fatalf("allocating 1 GiB where 5 GiB exists: %v", err)
	}
	if got.ID != big.ID || got.SizeBytes != 5*quota.GiB {
		t.Errorf("got %+v, want the existing 5 GiB subvolume %+v", got, big)
	}
}

// The rule, pinned: existing >= requested, and existing <= limit when a
// limit is given; nothing else.
func TestAllocateCompatibilityIsCSIRule(t *testing.T) {
	const G = quota.GiB
	for _, c := range []struct {
		existing, request, limit int64
		ok                       bool
	}{
		{5 * G, 1 * G, 0, true},
		{5 * G, 5 * G, 0, true},
		{5 * G, 5*G + 1, 0, false},
		{5 * G, 1 * G, 5 * G, true},
		{5 * G, 1 * G, 5*G - 1, false},
		{5 * G, 1 * G, 10 * G, true},
		{1, 1, 0, true},
		{100 * G, 1, 0, true},
	} {
		p := subvol.NewPool(memory.New(nil), nil)
		if _, err := p.Allocate(t.Context(), "pv", c.existing, nil); err != nil {
			t.Fatal(err)
		}
		sv, err := p.Allocate(t.Context(), "pv", c.request, &subvol.AllocateOptions{LimitBytes: c.limit})
		switch {
		case c.ok && (err != nil || sv.SizeBytes != c.existing):
			t.Errorf("existing %d, request %d, limit %d: got %v, %v; want the existing subvolume", c.existing, c.request, c.limit, sv, err)
		case !c.ok && !errors.Is(err, subvolkit.ErrAlreadyExists):
			t.Errorf("existing %d, request %d, limit %d: got %v, want AlreadyExists", c.existing, c.request, c.limit, err)
		}
	}
	if g := subvol.NewPool(memory.New(nil), nil).SizeGranularity(); g != 1 {
		t.Errorf("memory backend granularity %d, want 1", g)
	}
}
