package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/subvolkit/subvolkit/examples/csi/driver"
)

// TestCSIMetrics: with --metrics-address the driver serves the Pool
// operation metrics of every pool (labels backend and pool) and, in node
// mode, the node metrics; the exposition passes promlint.
func TestCSIMetrics(t *testing.T) {
	ctx := context.Background()
	pools, err := driver.ParsePools([]byte(`{"pools": {"gold": {"backend": "memory"}, "silver": {"backend": "memory"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	h, obs := driverMetrics(driver.ModeController, pools, nil)
	d, err := driver.New(ctx, driver.Config{Mode: driver.ModeController, Pools: pools, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-metrics", VolumeCapabilities: rwx,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 << 20}, Parameters: map[string]string{"pool": "gold"}}); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-metrics-2", VolumeCapabilities: rwx,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 << 20}, Parameters: map[string]string{"pool": "silver"}}); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}

	body := scrapeMetrics(t, h)
	for _, want := range []string{
		`subvolkit_operations_total{backend="memory",operation="allocate",pool="gold"} 1`,
		`subvolkit_operations_total{backend="memory",operation="allocate",pool="silver"} 1`,
		`subvolkit_operation_duration_seconds_count{backend="memory",operation="allocate",pool="gold"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "subvolkit_node_") {
		t.Errorf("controller mode serves node metrics")
	}
	lint(t, body)

	// Node mode adds the node collector.
	h, _ = driverMetrics(driver.ModeNode, nil, nil)
	body = scrapeMetrics(t, h)
	if !strings.Contains(body, "subvolkit_node_glusterfs_mounts") {
		t.Errorf("node mode lacks the node metrics:\n%s", body)
	}
	lint(t, body)
}

func scrapeMetrics(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func lint(t *testing.T, body string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
