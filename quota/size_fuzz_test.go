package quota_test

import (
	"errors"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
)

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"10Gi", "500Mi", "1G", "1.5Gi", "100", "1e9", "100k", "10GB", "10MB", "1TB", "10KB", "512Bytes",
		"10.0MB", "716.8MB", " 10 gb ", "500m", "1E", "1E3", "1e-3", ".5", "5.", "9000000Ei", "-1Gi",
		"1.5", "Gi", "10 XB", "9223372036854775807", "9223372036854775808", "0.0000000000000000000001Ei",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := quota.ParseSize(s)
		if err != nil {
			if !errors.Is(err, subvolkit.ErrInvalidArgument) {
				t.Fatalf("ParseSize(%q): err = %v, want InvalidArgument", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
		if again, err := quota.ParseSize(s); err != nil || again != n {
			t.Fatalf("ParseSize(%q) not deterministic: %d, then %d, %v", s, n, again, err)
		}
		for _, out := range []string{quota.FormatSize(n), quota.GlusterLimit(n)} {
			if back, err := quota.ParseSize(out); err != nil || back != n {
				t.Fatalf("ParseSize(%q) = %d, but ParseSize(%q) = %d, %v", s, n, out, back, err)
			}
		}
		_ = quota.HumanSize(n)
	})
}
