package quota_test

import (
	"errors"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
)

// checkAccepted checks what must hold for a size n that one of the parsers
// read from s: both formatters round-trip through their own parser, and
// the other parser, reading either format, never finds another value.
func checkAccepted(t *testing.T, parser, s string, n int64) {
	t.Helper()
	if n < 0 {
		t.Fatalf("%s(%q) = %d, negative", parser, s, n)
	}
	q, g := quota.FormatQuantity(n), quota.FormatGlusterSize(n)
	if back, err := quota.ParseQuantity(q); err != nil || back != n {
		t.Fatalf("%s(%q) = %d, but ParseQuantity(FormatQuantity = %q) = %d, %v", parser, s, n, q, back, err)
	}
	if back, err := quota.ParseGlusterSize(g); err != nil || back != n {
		t.Fatalf("%s(%q) = %d, but ParseGlusterSize(FormatGlusterSize = %q) = %d, %v", parser, s, n, g, back, err)
	}
	// Each format read by the other parser: refused, or the same value.
	if back, err := quota.ParseGlusterSize(q); err == nil && back != n {
		t.Fatalf("ParseGlusterSize(FormatQuantity(%d) = %q) = %d: one spelling, two sizes", n, q, back)
	}
	if back, err := quota.ParseQuantity(g); err == nil && back != n {
		t.Fatalf("ParseQuantity(FormatGlusterSize(%d) = %q) = %d: one spelling, two sizes", n, g, back)
	}
	_ = quota.HumanSize(n)
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"10Gi", "500Mi", "1G", "1g", "1.5Gi", "100", "1e9", "100k", "10GB", "10gb", "10MB", "1TB", "10KB",
		"512Bytes", "10.0MB", "716.8MB", " 10 gb ", "500m", "1E", "1E3", "1e-3", ".5", "5.", "9000000Ei",
		"-1Gi", "1.5", "Gi", "10 XB", "9223372036854775807", "9223372036854775808", "0.0000000000000000000001Ei",
	} {
		f.Add(s)
	}
}

func FuzzParseQuantity(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := quota.ParseQuantity(s)
		if err != nil {
			if !errors.Is(err, subvolkit.ErrInvalidArgument) {
				t.Fatalf("ParseQuantity(%q): err = %v, want InvalidArgument", s, err)
			}
			return
		}
		if again, err := quota.ParseQuantity(s); err != nil || again != n {
			t.Fatalf("ParseQuantity(%q) not deterministic: %d, then %d, %v", s, n, again, err)
		}
		checkAccepted(t, "ParseQuantity", s, n)
	})
}

func FuzzParseGlusterSize(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := quota.ParseGlusterSize(s)
		if err != nil {
			if !errors.Is(err, subvolkit.ErrInvalidArgument) {
				t.Fatalf("ParseGlusterSize(%q): err = %v, want InvalidArgument", s, err)
			}
			return
		}
		checkAccepted(t, "ParseGlusterSize", s, n)
	})
}
