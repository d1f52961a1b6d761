package quota_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
)

func TestUnits(t *testing.T) {
	got := []int64{quota.KiB, quota.MiB, quota.GiB, quota.TiB, quota.PiB, quota.EiB}
	for i, g := range got {
		if want := int64(1) << (10 * (i + 1)); g != want {
			t.Errorf("unit %d = %d, want %d", i, g, want)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"100", 100},
		{"+100", 100},
		{"10Gi", 10 * quota.GiB},
		{"500Mi", 500 * quota.MiB},
		{"1Ki", 1024},
		{"2Ti", 2 * quota.TiB},
		{"1Pi", quota.PiB},
		{"7Ei", 7 * quota.EiB},
		{"1.5Gi", 1610612736},
		{"0.5Ki", 512},
		{".5Ki", 512},
		{"5.", 5},
		{"1G", 1_000_000_000},
		{"100k", 100_000},
		{"1M", 1_000_000},
		{"1T", 1_000_000_000_000},
		{"1P", 1_000_000_000_000_000},
		{"1E", 1_000_000_000_000_000_000},
		{"1e9", 1_000_000_000},
		{"1E9", 1_000_000_000},
		{"1e+3", 1000},
		{"1.5e3", 1500},
		{"15e-1", 2},
		{"1e-3", 1},
		{"1e-999999999999", 1},
		{"0e999999999999", 0},
		{"0.000000000000000000000000000000000000000000000001", 1},
		{"1000m", 1},
		{"1500m", 2},
		{"500m", 1},
		{"1u", 1},
		{"1n", 1},
		{"1.5", 2},
		{"1.0", 1},
		{"0.0Gi", 0},
		{"007", 7},
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tt := range tests {
		got, err := quota.ParseQuantity(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseQuantityErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty"},
		{"-1Gi", "negative"},
		{"-0", "negative"},
		{"Gi", "does not start with a number"},
		{".", "does not start with a number"},
		{"+", "does not start with a number"},
		{"+-1", "does not start with a number"},
		{"e9", "does not start with a number"},
		{"1g", `unknown suffix "g"`}, // Kubernetes is case sensitive
		{"10K", `unknown suffix "K"`},
		{"10gi", `unknown suffix "gi"`},
		{"10GB", `unknown suffix "GB"`}, // a Gluster unit, not a quantity
		{"512Bytes", `unknown suffix "Bytes"`},
		{"1GiB", `unknown suffix "GiB"`},
		{"10 Gi", `unknown suffix " Gi"`},
		{" 10Gi", "does not start with a number"},
		{"10Gi ", `unknown suffix "Gi "`},
		{"10e", `unknown suffix "e"`},
		{"1..5", `unknown suffix ".5"`},
		{"1e3Ki", "exponent"},
		{"1e3.5", "exponent"},
		{"0x10", `unknown suffix "x10"`},
		{"NaN", "does not start with a number"},
		{"9000000Ei", "too large"},
		{"8Ei", "too large"},
		{"9223372036854775808", "too large"},
		{"9.3E", "too large"},
		{"1e19", "too large"},
		{strings.Repeat("1", 101), "more than 100"},
	}
	for _, tt := range tests {
		got, err := quota.ParseQuantity(tt.in)
		if err == nil {
			t.Errorf("ParseQuantity(%q) = %d, want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, subvolkit.ErrInvalidArgument) {
			t.Errorf("ParseQuantity(%q): err = %v, want InvalidArgument", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseQuantity(%q): err = %q, want it to contain %q", tt.in, err, tt.msg)
		}
	}
}

func TestParseGlusterSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1000", 1000},
		{"10GB", 10 * quota.GiB},
		{"10MB", 10 * quota.MiB},
		{"1TB", quota.TiB},
		{"10KB", 10 * quota.KiB},
		{"1PB", quota.PiB},
		{"512Bytes", 512},
		{"512bytes", 512},
		{"512B", 512},
		{"10.0MB", 10485760},
		{"716.8MB", 751619277}, // 716.8 * 2^20 = 751619276.8, rounded up
		{"0Bytes", 0},
		{"10gb", 10 * quota.GiB},
		{"10Gb", 10 * quota.GiB},
		{"10kB", 10 * quota.KiB},
		{"  10GB\n", 10 * quota.GiB},
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tt := range tests {
		got, err := quota.ParseGlusterSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseGlusterSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1GB", "10G", "10Gi", "1e9", "10 GB", "10EB", "10XB", "+1GB", "GB", "10K"} {
		if n, err := quota.ParseGlusterSize(bad); !errors.Is(err, subvolkit.ErrInvalidArgument) {
			t.Errorf("ParseGlusterSize(%q) = %d, %v; want InvalidArgument", bad, n, err)
		}
	}
}

// The same spelling never means two sizes: "10G" is Kubernetes' 10^10 bytes
// and no Gluster size; "10GB" is Gluster's 10 GiB and no quantity.
func TestParsersNeverAgreeOnDifferentValues(t *testing.T) {
	if _, err := quota.ParseGlusterSize("10G"); err == nil {
		t.Error(`ParseGlusterSize("10G") succeeded`)
	}
	if _, err := quota.ParseQuantity("10GB"); err == nil {
		t.Error(`ParseQuantity("10GB") succeeded`)
	}
}

func TestFormatQuantity(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1023, "1023"},
		{1024, "1Ki"},
		{1536, "1536"},
		{10 * quota.MiB, "10Mi"},
		{10737418240, "10Gi"},
		{1_000_000_000, "1000000000"},
		{quota.GiB + quota.MiB, "1025Mi"},
		{quota.TiB, "1Ti"},
		{quota.PiB, "1Pi"},
		{7 * quota.EiB, "7Ei"},
		{math.MaxInt64, "9223372036854775807"},
		{math.MaxInt64 - quota.KiB + 1, "9007199254740991Ki"},
		{-quota.GiB, "-1Gi"},
		{math.MinInt64, "-8Ei"},
	}
	for _, tt := range tests {
		if got := quota.FormatQuantity(tt.in); got != tt.want {
			t.Errorf("FormatQuantity(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatGlusterSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1024, "1KB"},
		{1536, "1536"},
		{10485760, "10MB"},
		{10 * quota.GiB, "10GB"},
		{quota.GiB + quota.MiB, "1025MB"},
		{quota.TiB, "1TB"},
		{quota.PiB, "1PB"},
		{7 * quota.EiB, "7168PB"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		got := quota.FormatGlusterSize(tt.in)
		if got != tt.want {
			t.Errorf("FormatGlusterSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := quota.ParseGlusterSize(got); err != nil || back != tt.in {
			t.Errorf("ParseGlusterSize(FormatGlusterSize(%d) = %q) = %d, %v", tt.in, got, back, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int64{0, 1, 511, 512, 1023, 1024, 1025, 1536, 4096, 1e9, quota.GiB - 1, quota.GiB, quota.GiB + 1,
		3 * quota.TiB, quota.EiB, math.MaxInt64 - 1, math.MaxInt64}
	for _, n := range sizes {
		if s := quota.FormatQuantity(n); true {
			if back, err := quota.ParseQuantity(s); err != nil || back != n {
				t.Errorf("ParseQuantity(FormatQuantity(%d) = %q) = %d, %v", n, s, back, err)
			}
		}
		if s := quota.FormatGlusterSize(n); true {
			if back, err := quota.ParseGlusterSize(s); err != nil || back != n {
				t.Errorf("ParseGlusterSize(FormatGlusterSize(%d) = %q) = %d, %v", n, s, back, err)
			}
		}
	}
}

func TestRoundUp(t *testing.T) {
	tests := []struct{ n, unit, want int64 }{
		{0, quota.GiB, 0},
		{1, quota.GiB, quota.GiB},
		{quota.GiB, quota.GiB, quota.GiB},
		{quota.GiB + 1, quota.GiB, 2 * quota.GiB},
		{1500, 1000, 2000},
		{7, 1, 7},
		{-5, 4, -4},
		{-8, 4, -8},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64 - 7, 8, math.MaxInt64 - 7}, // already a multiple (2^63-8)
		{math.MaxInt64 - 8, 8, math.MaxInt64 - 7}, // fits exactly
		{math.MinInt64, 3, math.MinInt64 + 2},     // -9223372036854775806 = -3074457345618258602*3
		{math.MaxInt64 - quota.GiB, quota.GiB, math.MaxInt64 - quota.GiB + 1}, // 2^63 - 2^30
	}
	for _, tt := range tests {
		got, err := quota.RoundUp(tt.n, tt.unit)
		if err != nil || got != tt.want {
			t.Errorf("RoundUp(%d, %d) = %d, %v; want %d", tt.n, tt.unit, got, err, tt.want)
		}
	}
	errs := []struct {
		n, unit int64
		msg     string
	}{
		{1, 0, "not positive"},
		{1, -1024, "not positive"},
		{math.MaxInt64, quota.GiB, "does not fit"},
		{math.MaxInt64 - 6, 8, "does not fit"},
		{math.MaxInt64, 2, "does not fit"},
	}
	for _, tt := range errs {
		got, err := quota.RoundUp(tt.n, tt.unit)
		if !errors.Is(err, subvolkit.ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), tt.msg) {
			t.Errorf("RoundUp(%d, %d) = %d, %v; want InvalidArgument %q", tt.n, tt.unit, got, err, tt.msg)
		}
	}
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{512, "512 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{quota.GiB + quota.GiB/2, "1.5 GiB"},
		{10 * quota.GiB, "10 GiB"},
		{10_000_000_000, "9.3 GiB"},
		{quota.MiB - 1, "1 MiB"}, // 1023.999 KiB rounds to 1024.0 KiB: promoted
		{quota.MiB - 52, "1023.9 KiB"},
		{quota.EiB, "1 EiB"},
		{math.MaxInt64, "8 EiB"},
		{-512, "-512 B"},
		{-quota.GiB, "-1 GiB"},
		{math.MinInt64, "-8 EiB"},
	}
	for _, tt := range tests {
		if got := quota.HumanSize(tt.n); got != tt.want {
			t.Errorf("HumanSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func ExampleParseQuantity() {
	// A claim's size, as Kubernetes reads it.
	for _, s := range []string{"10Gi", "10G", "1.5Gi", "500m", "1g", "10GB"} {
		n, err := quota.ParseQuantity(s)
		fmt.Println(s, n, err != nil)
	}
	// Output:
	// 10Gi 10737418240 false
	// 10G 10000000000 false
	// 1.5Gi 1610612736 false
	// 500m 1 false
	// 1g 0 true
	// 10GB 0 true
}

func ExampleParseGlusterSize() {
	// What `gluster volume quota VOL list` prints: 1024-based, any case.
	for _, s := range []string{"10.0GB", "10gb", "512Bytes", "10G"} {
		n, err := quota.ParseGlusterSize(s)
		fmt.Println(s, n, err != nil)
	}
	// Output:
	// 10.0GB 10737418240 false
	// 10gb 10737418240 false
	// 512Bytes 512 false
	// 10G 0 true
}

func ExampleFormatQuantity() {
	fmt.Println(quota.FormatQuantity(10737418240), quota.FormatQuantity(1536), quota.FormatQuantity(0))
	// Output: 10Gi 1536 0
}

func ExampleFormatGlusterSize() {
	// The size argument of "gluster volume quota VOL limit-usage /pvc-... SIZE".
	fmt.Println(quota.FormatGlusterSize(10485760), quota.FormatGlusterSize(5*quota.GiB), quota.FormatGlusterSize(1000))
	// Output: 10MB 5GB 1000
}

func ExampleHumanSize() {
	fmt.Println(quota.HumanSize(512), "/", quota.HumanSize(1536*quota.MiB))
	// Output: 512 B / 1.5 GiB
}
