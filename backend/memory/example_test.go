package memory_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Allocate subvolumes through a Pool over the memory backend, as a unit test
// of a controller would.
func Example() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(&memory.Options{
		Servers:      []string{"gluster1", "gluster2"},
		Volume:       "gv0",
		MaxSizeBytes: 10 * quota.GiB,
	}), nil)
	defer pool.Close()

	sv, err := pool.Allocate(ctx, "pvc-1", 4*quota.GiB, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sv.Name, sv.Servers, sv.Volume, sv.Path, quota.FormatQuantity(sv.SizeBytes))

	// Allocate is idempotent: the same request returns the same subvolume.
	again, _ := pool.Allocate(ctx, "pvc-1", 4*quota.GiB, nil)
	fmt.Println("same subvolume:", again.ID == sv.ID)

	// The same name with a bigger size is a conflict.
	_, err = pool.Allocate(ctx, "pvc-1", 5*quota.GiB, nil)
	fmt.Println(subvolkit.KindOf(err))

	// More than the capacity left.
	_, err = pool.Allocate(ctx, "pvc-2", 7*quota.GiB, nil)
	fmt.Println(subvolkit.KindOf(err))

	// Deleting twice is fine.
	fmt.Println(pool.Delete(ctx, "pvc-1", nil), pool.Delete(ctx, "pvc-1", nil))
	// Output:
	// pvc-1 [gluster1 gluster2] gv0 /pvc-1 4Gi
	// same subvolume: true
	// already exists
	// quota exceeded
	// <nil> <nil>
}

// With a directory, subvolumes have content: Clone copies it and Usage
// measures it.
func Example_dir() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "memory-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	pool := subvol.NewPool(memory.New(&memory.Options{Dir: dir}), nil)
	defer pool.Close()

	src, err := pool.Allocate(ctx, "template", quota.MiB, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, src.Path, "index.html"), []byte("hello\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	clone, err := pool.Clone(ctx, "template", "site-1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(filepath.Join(dir, clone.Path, "index.html"))
	fmt.Printf("%s cloned from %s: %q\n", clone.Name, clone.Source, data)

	u, err := pool.Usage(ctx, "site-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("used %d of %s in %d file(s)\n", u.Used, quota.FormatQuantity(u.Limit), u.Files)

	// Archive keeps the data out of the pool, under Dir/.archive.
	if err := pool.Delete(ctx, "site-1", &subvol.DeleteOptions{Policy: subvol.DeletePolicyArchive}); err != nil {
		fmt.Println(err)
		return
	}
	archived, _ := filepath.Glob(filepath.Join(dir, ".archive", "site-1-*", "index.html"))
	fmt.Println("archived files:", len(archived))
	_, err = pool.Get(ctx, "site-1")
	fmt.Println(subvolkit.KindOf(err))
	// Output:
	// site-1 cloned from template: "hello\n"
	// used 6 of 1Mi in 1 file(s)
	// archived files: 1
	// not found
}

// Backend.As reaches the memory backend behind a Pool, for its own methods.
func ExampleBackend_As() {
	ctx := context.Background()
	pool := subvol.NewPool(memory.New(nil), nil)
	defer pool.Close()
	if _, err := pool.Allocate(ctx, "a", quota.GiB, nil); err != nil {
		fmt.Println(err)
		return
	}
	var b *memory.Backend
	if pool.As(&b) {
		fmt.Println(b.Len(), quota.FormatQuantity(b.Allocated()))
	}
	// Output:
	// 1 1Gi
}
