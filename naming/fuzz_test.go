package naming_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
)

// checkSafe fails unless name is a valid subvolume name that cannot escape
// its parent directory.
func checkSafe(t *testing.T, what, name string) {
	t.Helper()
	if err := naming.ValidateSubvolName(name); err != nil {
		t.Fatalf("%s = %q: %v", what, name, err)
	}
	if name == "." || name == ".." || strings.HasPrefix(name, ".") ||
		strings.ContainsAny(name, "/\x00") || strings.Contains(name, "..") {
		t.Fatalf("%s = %q escapes its directory", what, name)
	}
}

// checkInvalid fails unless err is of kind InvalidArgument.
func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, subvolkit.ErrInvalidArgument) {
		t.Fatalf("%s: err = %v, want InvalidArgument", what, err)
	}
}

// variants returns strings that differ from s exactly where a rewrite loses
// information (case, replaced characters, the cut-off tail).
func variants(s string) []string {
	vs := []string{
		strings.ToUpper(s), strings.ToLower(s),
		s + "x", s + "!", s + ".", "!" + s, "x" + s,
		strings.ReplaceAll(s, ".", "_"), strings.ReplaceAll(s, "-", "."),
		strings.ReplaceAll(s, " ", "  "),
	}
	if s != "" {
		b := []byte(s)
		b[len(b)-1] ^= 1
		vs = append(vs, string(b), s[1:], s[:len(s)-1])
	}
	return vs
}

func FuzzForRequest(f *testing.F) {
	for _, s := range []string{
		"pvc-a71fa382-f77d-11e8-b229-005056a5c1c4", "My Volume", "a..b", ".hidden", "!!!", "ünïcode",
		"", ".", "..", "a/b", "a\x00", strings.Repeat("x", 64), strings.Repeat("A_", 40), "-", "_", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := naming.ForRequest(name)
		reject := name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00")
		if reject != (err != nil) {
			t.Fatalf("ForRequest(%q) = %q, %v; rejection expected: %v", name, out, err, reject)
		}
		if err != nil {
			checkInvalid(t, "ForRequest", err)
			return
		}
		if again, _ := naming.ForRequest(name); again != out {
			t.Fatalf("ForRequest(%q) not deterministic: %q, then %q", name, out, again)
		}
		checkSafe(t, "ForRequest", out)
		if len(out) > naming.MaxDNSLabel {
			t.Fatalf("ForRequest(%q) = %q is %d bytes long", name, out, len(out))
		}
		if out == name {
			if naming.ValidateSubvolName(name) != nil || len(name) > naming.MaxDNSLabel {
				t.Fatalf("ForRequest(%q) returned an invalid name unchanged", name)
			}
		} else if !naming.IsDNS1123Label(out) {
			t.Fatalf("ForRequest(%q) = %q, rewritten but not a DNS-1123 label", name, out)
		}
		if again, err := naming.ForRequest(out); err != nil || again != out {
			t.Fatalf("ForRequest(%q) = %q, %v; want it unchanged", out, again, err)
		}
		for _, v := range variants(name) {
			if v == name {
				continue
			}
			if vout, err := naming.ForRequest(v); err == nil && vout == out {
				t.Fatalf("ForRequest(%q) == ForRequest(%q) == %q", name, v, out)
			}
		}
	})
}

func FuzzEndpointName(f *testing.F) {
	const u = "a71fa382-f77d-11e8-b229-005056a5c1c4"
	for _, c := range [][2]string{
		{"", u}, {"glusterfs-dynamic", u}, {strings.Repeat("p", 26), u}, {strings.Repeat("p", 27), u},
		{"Gluster", u}, {"", strings.ToUpper(u)}, {"", "a71fa382f77d11e8b229005056a5c1c4"}, {"x-", u}, {"", ""},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, prefix, uid string) {
		for _, fn := range []struct {
			name string
			f    func(string, string) (string, error)
			def  string
		}{
			{"EndpointName", naming.EndpointName, naming.DefaultEndpointPrefix},
			{"FromUID", naming.FromUID, naming.DefaultSubvolPrefix},
		} {
			out, err := fn.f(prefix, uid)
			if err != nil {
				checkInvalid(t, fn.name, err)
				continue
			}
			if again, _ := fn.f(prefix, uid); again != out {
				t.Fatalf("%s(%q, %q) not deterministic: %q, then %q", fn.name, prefix, uid, out, again)
			}
			if !naming.IsDNS1123Label(out) {
				t.Fatalf("%s(%q, %q) = %q, not a DNS-1123 label", fn.name, prefix, uid, out)
			}
			checkSafe(t, fn.name, out)
			p := prefix
			if p == "" {
				p = fn.def
			}
			if want := p + "-" + strings.ToLower(uid); out != want {
				t.Fatalf("%s(%q, %q) = %q, want %q", fn.name, prefix, uid, out, want)
			}
			// The same UID in upper case is the same UID.
			if up, err := fn.f(prefix, strings.ToUpper(uid)); err != nil || up != out {
				t.Fatalf("%s(%q, upper-case uid) = %q, %v; want %q", fn.name, prefix, up, err, out)
			}
			// A different UID or prefix gives a different name.
			other := []byte(strings.ToLower(uid))
			if other[0] == '0' {
				other[0] = '1'
			} else {
				other[0] = '0'
			}
			if o, err := fn.f(prefix, string(other)); err != nil || o == out {
				t.Fatalf("%s(%q, %q) = %q, %v; same as for %q", fn.name, prefix, other, o, err, uid)
			}
			if o, err := fn.f(p+"x", uid); err == nil && o == out {
				t.Fatalf("%s(%q, %q) == %s(%q, %q)", fn.name, p+"x", uid, fn.name, prefix, uid)
			}
		}
	})
}

func FuzzVolumeName(f *testing.F) {
	const u = "a71fa382-f77d-11e8-b229-005056a5c1c4"
	f.Add("vol", "app-storage", "claim1", u)
	f.Add("vol", "default", "data.v1", u)
	f.Add("vol", "ns", strings.Repeat("p", 253), u)
	f.Add(strings.Repeat("v", 32), strings.Repeat("n", 63), strings.Repeat("p", 253), strings.ToUpper(u))
	f.Add("my_vol", "ns", "pvc", u)
	f.Add("vol", "a_b", "c", u)
	f.Add("vol", "", "", "")
	f.Fuzz(func(t *testing.T, prefix, ns, pvc, uid string) {
		out, err := naming.VolumeName(prefix, ns, pvc, uid)
		if err != nil {
			checkInvalid(t, "VolumeName", err)
			return
		}
		if again, _ := naming.VolumeName(prefix, ns, pvc, uid); again != out {
			t.Fatalf("VolumeName not deterministic: %q, then %q", out, again)
		}
		if !heketiName.MatchString(out) || len(out) > naming.MaxSubvolName {
			t.Fatalf("VolumeName(%q, %q, %q, %q) = %q (%d bytes), not a heketi name of at most %d bytes",
				prefix, ns, pvc, uid, out, len(out), naming.MaxSubvolName)
		}
		checkSafe(t, "VolumeName", out)
		if !strings.HasPrefix(out, prefix+"_") || !strings.HasSuffix(out, "_"+strings.ToLower(uid[:8])) {
			t.Fatalf("VolumeName(%q, %q, %q, %q) = %q, want <prefix>_..._<short uid>", prefix, ns, pvc, uid, out)
		}
		if up, err := naming.VolumeName(prefix, ns, pvc, strings.ToUpper(uid)); err != nil || up != out {
			t.Fatalf("VolumeName with upper-case uid = %q, %v; want %q", up, err, out)
		}
		type in struct{ ns, pvc string }
		others := []in{}
		for _, v := range variants(pvc) {
			others = append(others, in{ns, v})
		}
		for _, v := range variants(ns) {
			others = append(others, in{v, pvc})
		}
		if len(pvc) > 1 {
			others = append(others, in{ns + pvc[:1], pvc[1:]})
		}
		if len(ns) > 1 {
			others = append(others, in{ns[:len(ns)-1], ns[len(ns)-1:] + pvc})
		}
		for _, o := range others {
			if o.ns == ns && o.pvc == pvc {
				continue
			}
			if vout, err := naming.VolumeName(prefix, o.ns, o.pvc, uid); err == nil && vout == out {
				t.Fatalf("VolumeName(%q, %q, %q) == VolumeName(%q, %q, %q) == %q", prefix, ns, pvc, prefix, o.ns, o.pvc, out)
			}
		}
	})
}

func FuzzTruncate(f *testing.F) {
	f.Add("short", 16)
	f.Add(strings.Repeat("abc-", 20), 40)
	f.Add("héllo-wörld-and-more-text-here", 16)
	f.Add("pvc-a71fa382-f77d-11e8-b229-005056a5c1c4-and-a-long-tail-that-is-too-long", 63)
	f.Add(strings.Repeat("a._-", 50), 128)
	f.Add("\xff\xfe\xfd", -7)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 0 {
			limit = -(limit + 1)
		}
		limit = 16 + limit%200
		out := naming.Truncate(s, limit)
		if again := naming.Truncate(s, limit); again != out {
			t.Fatalf("Truncate(%q, %d) not deterministic: %q, then %q", s, limit, out, again)
		}
		if len(out) > limit {
			t.Fatalf("Truncate(%q, %d) = %q is %d bytes long", s, limit, out, len(out))
		}
		if (len(s) <= limit) != (out == s) {
			t.Fatalf("Truncate(%q, %d) = %q", s, limit, out)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Truncate(%q, %d) = %q, not valid UTF-8", s, limit, out)
		}
		if naming.ValidateSubvolName(s) == nil && limit <= naming.MaxSubvolName {
			checkSafe(t, "Truncate", out)
		}
		if naming.IsDNS1123Label(s) && limit <= naming.MaxDNSLabel && !naming.IsDNS1123Label(out) {
			t.Fatalf("Truncate(%q, %d) = %q, not a DNS-1123 label", s, limit, out)
		}
		for _, v := range variants(s) {
			if v != s && naming.Truncate(v, limit) == out {
				t.Fatalf("Truncate(%q, %d) == Truncate(%q, %d) == %q", s, limit, v, limit, out)
			}
		}
	})
}
