package main

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/subvolkit/subvolkit/examples/csi/driver"
)

// TestCSIWarmPools: a pool's `warm` setting is checked when the pools file
// is read, and a controller with warm classes serves CreateVolume of a warm
// size and of another size alike.
func TestCSIWarmPools(t *testing.T) {
	for _, bad := range []string{"1Gi", "1Gi:-1", "x:2", "1Gi:2,"} {
		_, err := driver.ParsePools([]byte(`{"pools": {"gold": {"backend": "memory", "warm": "` + bad + `"}}}`))
		if err == nil || !strings.Contains(err.Error(), "warm") {
			t.Errorf("warm %q: got %v, want an error about warm", bad, err)
		}
	}
	ctx := context.Background()
	pools, err := driver.ParsePools([]byte(`{"pools": {"gold": {"backend": "memory", "warm": "4Mi:3"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.New(ctx, driver.Config{Mode: driver.ModeController, Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, size := range []int64{4 << 20, 4 << 20, 8 << 20} {
		r, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-warm-" + string(rune('a'+i)), VolumeCapabilities: rwx,
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, Parameters: map[string]string{"pool": "gold"}})
		if err != nil {
			t.Fatalf("CreateVolume %d: %v", i, err)
		}
		if r.Volume.CapacityBytes != size {
			t.Errorf("CreateVolume %d: capacity %d, want %d", i, r.Volume.CapacityBytes, size)
		}
	}
}
