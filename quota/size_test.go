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

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		// Kubernetes quantities.
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
		// Gluster units: 1024-based, any case.
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
		// Human units.
		{"1.5 GiB", 1610612736},
		{"512 KiB", 512 * quota.KiB},
		{"1EiB", quota.EiB},
		// Space.
		{"  10Gi  ", 10 * quota.GiB},
		{"10 Gi", 10 * quota.GiB},
		{"10\tGB\n", 10 * quota.GiB},
	}
	for _, tt := range tests {
		got, err := quota.ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"-1Gi", "negative"},
		{"-0", "negative"},
		{"Gi", "does not start with a number"},
		{".", "does not start with a number"},
		{".Gi", "does not start with a number"},
		{"+", "does not start with a number"},
		{"+-1", "does not start with a number"},
		{"e9", "does not start with a number"},
		{"10 XB", `unknown unit "XB"`},
		{"10K", `unknown unit "K"`},   // Kubernetes is case sensitive
		{"10g", `unknown unit "g"`},   // not k8s, not a Gluster unit
		{"10gi", `unknown unit "gi"`}, // ditto
		{"10EB", `unknown unit "EB"`}, // Gluster has no EB
		{"10e", `unknown unit "e"`},
		{"1..5", `unknown unit ".5"`},
		{"1.5.Gi", `unknown unit ".Gi"`},
		{"1 0", `unknown unit "0"`},
		{"1e3Ki", "exponent"},
		{"1e3.5", "exponent"},
		{"1e-", `unknown unit "e-"`},
		{"0x10", `unknown unit "x10"`},
		{"NaN", "does not start with a number"},
		{"Inf", "does not start with a number"},
		{"9000000Ei", "too large"},
		{"8Ei", "too large"},
		{"9223372036854775808", "too large"},
		{"9.3E", "too large"},
		{"1e19", "too large"},
		{"1e999999999999", "too large"},
		{"99999999999999999999999999999999999999999999999999Ki", "too large"},
		{strings.Repeat("1", 101), "more than 100"},
	}
	for _, tt := range tests {
		got, err := quota.ParseSize(tt.in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, subvolkit.ErrInvalidArgument) {
			t.Errorf("ParseSize(%q): err = %v, want InvalidArgument", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseSize(%q): err = %q, want it to contain %q", tt.in, err, tt.msg)
		}
	}
}

func TestFormatSize(t *testing.T) {
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
		if got := quota.FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGlusterLimit(t *testing.T) {
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
		got := quota.GlusterLimit(tt.in)
		if got != tt.want {
			t.Errorf("GlusterLimit(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := quota.ParseSize(got); err != nil || back != tt.in {
			t.Errorf("ParseSize(GlusterLimit(%d) = %q) = %d, %v", tt.in, got, back, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int64{0, 1, 511, 512, 1023, 1024, 1025, 1536, 4096, 1e9, quota.GiB - 1, quota.GiB, quota.GiB + 1,
		3 * quota.TiB, quota.EiB, math.MaxInt64 - 1, math.MaxInt64}
	for _, n := range sizes {
		for name, f := range map[string]func(int64) string{"FormatSize": quota.FormatSize, "GlusterLimit": quota.GlusterLimit} {
			s := f(n)
			if back, err := quota.ParseSize(s); err != nil || back != n {
				t.Errorf("ParseSize(%s(%d) = %q) = %d, %v", name, n, s, back, err)
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

func ExampleParseSize() {
	for _, s := range []string{"10Gi", "10G", "10GB", "1.5Gi", "512Bytes", "500m", "10 XB"} {
		n, err := quota.ParseSize(s)
		fmt.Println(s, n, err)
	}
	// Output:
	// 10Gi 10737418240 <nil>
	// 10G 10000000000 <nil>
	// 10GB 10737418240 <nil>
	// 1.5Gi 1610612736 <nil>
	// 512Bytes 512 <nil>
	// 500m 1 <nil>
	// 10 XB 0 subvolkit: parse size: invalid argument: size "10 XB" has an unknown unit "XB": use a Kubernetes suffix (Ki, Mi, Gi, Ti, Pi, Ei; k, M, G, T, P, E) or a Gluster unit (B, KB, MB, GB, TB, PB, which are 1024-based)
}

func ExampleFormatSize() {
	fmt.Println(quota.FormatSize(10737418240), quota.FormatSize(1536), quota.FormatSize(0))
	// Output: 10Gi 1536 0
}

func ExampleGlusterLimit() {
	// The size argument of "gluster volume quota VOL limit-usage /pvc-... SIZE".
	fmt.Println(quota.GlusterLimit(10485760), quota.GlusterLimit(5*quota.GiB), quota.GlusterLimit(1000))
	// Output: 10MB 5GB 1000
}

func ExampleHumanSize() {
	fmt.Println(quota.HumanSize(512), "/", quota.HumanSize(1536*quota.MiB))
	// Output: 512 B / 1.5 GiB
}
