package subvol_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// A provisioner names the subvolume after the claim's UID (unique and stable
// across delete-and-recreate races) and allocates it. Retries after a crash
// or a timeout find the same subvolume.
func ExamplePool_Allocate() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(&memory.Options{Volume: "gv0", Servers: []string{"gfs1", "gfs2"}}), nil)
	defer pool.Close()

	name, err := naming.FromUID("pvc", "A71FA382-F77D-11E8-B229-005056A5C1C4")
	if err != nil {
		fmt.Println(err)
		return
	}
	size, _ := quota.ParseQuantity("10Gi")
	sv, err := pool.Allocate(ctx, name, size, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s:/%s%s %s\n", sv.Servers[0], sv.Volume, sv.Path, quota.FormatQuantity(sv.SizeBytes))

	retry, _ := pool.Allocate(ctx, name, size, nil)
	fmt.Println("retry returns the same subvolume:", retry.ID == sv.ID)

	_, err = pool.Allocate(ctx, name, 2*size, nil)
	fmt.Println("bigger:", errors.Is(err, subvolkit.ErrAlreadyExists))
	_, err = pool.Allocate(ctx, "../etc", size, nil)
	fmt.Println("bad name:", errors.Is(err, subvolkit.ErrInvalidArgument))
	// Output:
	// gfs1:/gv0/pvc-a71fa382-f77d-11e8-b229-005056a5c1c4 10Gi
	// retry returns the same subvolume: true
	// bigger: true
	// bad name: true
}

// Resize takes the new absolute size, whatever the backend needs underneath
// (heketi, for example, wants a delta).
func ExamplePool_Resize() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()
	if _, err := pool.Allocate(ctx, "data", 1*quota.GiB, nil); err != nil {
		fmt.Println(err)
		return
	}
	sv, err := pool.Resize(ctx, "data", 3*quota.GiB)
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := pool.Usage(ctx, "data")
	fmt.Println(quota.FormatQuantity(sv.SizeBytes), quota.FormatQuantity(u.Limit))
	// Output: 3Gi 3Gi
}

// Open picks a backend by name with string parameters, as a StorageClass
// does; the backend's package must be imported.
func ExampleOpen() {
	ctx := context.Background()
	pool, err := subvol.Open(ctx, "memory", map[string]string{"volume": "gv0", "capacity": "100Gi"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	_, err = pool.Allocate(ctx, "too-big", 200*quota.GiB, nil)
	fmt.Println(subvolkit.KindOf(err))

	_, err = subvol.Open(ctx, "memory", map[string]string{"colour": "blue"}, nil)
	fmt.Println(subvolkit.KindOf(err))
	// Output:
	// quota exceeded
	// invalid argument
}

// Delete of a subvolume that is already gone succeeds, as CSI requires.
func ExamplePool_Delete() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()
	_, _ = pool.Allocate(ctx, "scratch", quota.GiB, nil)
	fmt.Println(pool.Delete(ctx, "scratch", nil))
	fmt.Println(pool.Delete(ctx, "scratch", nil))
	_, err := pool.Get(ctx, "scratch")
	fmt.Println(errors.Is(err, subvolkit.ErrNotFound))
	// Output:
	// <nil>
	// <nil>
	// true
}

// Allocate follows CSI's rule on a repeated request: an existing subvolume
// at least as big as asked (and within the limit, if one is given) is
// returned, whatever size the backend rounded it to.
func ExamplePool_Allocate_existing() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()

	big, _ := pool.Allocate(ctx, "pv-1", 5*quota.GiB, nil)
	again, err := pool.Allocate(ctx, "pv-1", 1*quota.GiB, nil)
	fmt.Println(again.ID == big.ID, quota.FormatQuantity(again.SizeBytes), err)

	_, err = pool.Allocate(ctx, "pv-1", 1*quota.GiB, &subvol.AllocateOptions{LimitBytes: 2 * quota.GiB})
	fmt.Println(errors.Is(err, subvolkit.ErrAlreadyExists))
	// Output:
	// true 5Gi <nil>
	// true
}

// Every error has a kind, and its message says "subvolkit:", the operation
// and the subvolume once, whatever the backend wrapped on its way.
func ExamplePool_Get_error() {
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()

	_, err := pool.Get(context.Background(), "pv-404")
	fmt.Println(errors.Is(err, subvolkit.ErrNotFound), subvolkit.KindOf(err))
	fmt.Println(err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = pool.Allocate(ctx, "pv-1", quota.GiB, nil)
	fmt.Println(err)
	// Output:
	// true not found
	// subvolkit: get "pv-404": not found: no such subvolume
	// subvolkit: allocate "pv-1": canceled: context canceled
}
