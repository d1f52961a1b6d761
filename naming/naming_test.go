package naming_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
)

const (
	uid      = "a71fa382-f77d-11e8-b229-005056a5c1c4"
	uidUpper = "A71FA382-F77D-11E8-B229-005056A5C1C4"
)

// heketiName is heketi's volume name pattern (pkg/glusterfs/api/types.go).
var heketiName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// wantInvalid fails unless err is of kind InvalidArgument and its message
// contains every one of substrs.
func wantInvalid(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want InvalidArgument")
	}
	if !errors.Is(err, subvolkit.ErrInvalidArgument) {
		t.Fatalf("err = %v (kind %v), want InvalidArgument", err, subvolkit.KindOf(err))
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q, want it to contain %q", err, s)
		}
	}
}

func TestConstants(t *testing.T) {
	if naming.MaxDNSLabel != 63 || naming.MaxSubvolName != 128 || naming.MaxEndpointPrefix != 26 {
		t.Errorf("MaxDNSLabel, MaxSubvolName, MaxEndpointPrefix = %d, %d, %d; want 63, 128, 26",
			naming.MaxDNSLabel, naming.MaxSubvolName, naming.MaxEndpointPrefix)
	}
	if naming.MaxEndpointPrefix+len("-")+len(uid) != naming.MaxDNSLabel {
		t.Errorf("MaxEndpointPrefix does not fill a DNS label exactly")
	}
	if naming.DefaultEndpointPrefix != "glusterfs-dynamic" {
		t.Errorf("DefaultEndpointPrefix = %q", naming.DefaultEndpointPrefix)
	}
}

func TestValidateSubvolName(t *testing.T) {
	valid := []string{
		"a", "0", "pvc-" + uid, "A_b.c-d", "a.b", "a-", "a.", "a_", "vol_ns_claim_a71fa382",
		strings.Repeat("a", naming.MaxSubvolName),
	}
	for _, name := range valid {
		if err := naming.ValidateSubvolName(name); err != nil {
			t.Errorf("ValidateSubvolName(%q) = %v, want nil", name, err)
		}
	}
	invalid := []struct{ name, msg string }{
		{"", "empty"},
		{".", `"." is not a directory name`},
		{"..", `".." is not a directory name`},
		{".hidden", "must start with a letter or a digit"},
		{"-a", "must start with a letter or a digit"},
		{"_a", "must start with a letter or a digit"},
		{"a..b", `contains ".."`},
		{"a/..", `contains '/'`},
		{"a/b", `"a/b" contains '/'`},
		{"/a", "contains '/'"},
		{"a\x00b", "NUL"},
		{strings.Repeat("a", naming.MaxSubvolName+1), "129 bytes long, more than 128"},
		{"a b", `' ' at byte 1`},
		{`a\b`, `'\\' at byte 1`},
		{"a:b", `':' at byte 1`},
		{"a\nb", `'\n' at byte 1`},
		{"ä", "must start with a letter or a digit"},
		{"aä", `'ä' at byte 1`},
		{"a\xffb", `byte 0xff at byte 1`},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			wantInvalid(t, naming.ValidateSubvolName(tt.name), tt.msg)
		})
	}
}

func TestValidateSubvolNameQuotesShortened(t *testing.T) {
	long := strings.Repeat("x", 10000) + "/"
	err := naming.ValidateSubvolName(long)
	wantInvalid(t, err, `"xxxx`, "...", "10001 bytes long")
	if n := len(err.Error()); n > 200 {
		t.Errorf("error message is %d bytes long, want the name shortened: %q", n, err)
	}
}

func TestDNS1123Label(t *testing.T) {
	valid := []string{"a", "0", "a-b", "a--b", "glusterfs-dynamic-" + uid, strings.Repeat("a", 63)}
	for _, s := range valid {
		if !naming.IsDNS1123Label(s) {
			t.Errorf("IsDNS1123Label(%q) = false", s)
		}
		if err := naming.ValidateDNS1123Label(s); err != nil {
			t.Errorf("ValidateDNS1123Label(%q) = %v", s, err)
		}
	}
	invalid := []struct{ s, msg string }{
		{"", "empty"},
		{"A", "lower-case"},
		{"aBc", "lower-case"},
		{"-a", "start and end"},
		{"a-", "start and end"},
		{"a_b", "lower-case"},
		{"a.b", "lower-case"},
		{"a b", "lower-case"},
		{strings.Repeat("a", 64), "64 characters long, more than 63"},
	}
	for _, tt := range invalid {
		if naming.IsDNS1123Label(tt.s) {
			t.Errorf("IsDNS1123Label(%q) = true", tt.s)
		}
		wantInvalid(t, naming.ValidateDNS1123Label(tt.s), tt.msg)
	}
}

// UIDs are normalized (lower case) and checked by every UID-based name.
func TestFromUIDNormalizesUID(t *testing.T) {
	for _, in := range []string{uid, uidUpper, "A71fa382-F77D-11e8-b229-005056A5c1c4"} {
		got, err := naming.FromUID("pvc", in)
		if err != nil || got != "pvc-"+uid {
			t.Errorf("FromUID(pvc, %q) = %q, %v; want %q", in, got, err, "pvc-"+uid)
		}
	}
	invalid := []struct{ in, msg string }{
		{"", "0 characters"},
		{"a71fa382f77d11e8b229005056a5c1c4", "32 characters"},
		{"{" + uid + "}", "38 characters"},
		{"urn:uuid:" + uid, "45 characters"},
		{"g71fa382-f77d-11e8-b229-005056a5c1c4", "'g' at position 0"},
		{"a71fa382-f77d-11e8-b229_005056a5c1c4", "'-' at position 23"},
		{"a71fa382f-77d-11e8-b229-005056a5c1c4", "'-' at position 8"},
		{"a71fa382-f77d-11e8-b229-005056a5c1c ", "' ' at position 35"},
	}
	for _, tt := range invalid {
		_, err := naming.FromUID("pvc", tt.in)
		wantInvalid(t, err, "not a UUID", tt.msg)
	}
}

func TestEndpointName(t *testing.T) {
	tests := []struct{ prefix, uid, want string }{
		{"", uid, "glusterfs-dynamic-" + uid},
		{"", uidUpper, "glusterfs-dynamic-" + uid},
		{naming.DefaultEndpointPrefix, uid, "glusterfs-dynamic-" + uid},
		{"gluster", uid, "gluster-" + uid},
		{"0", uid, "0-" + uid},
		{strings.Repeat("p", 26), uid, strings.Repeat("p", 26) + "-" + uid},
	}
	for _, tt := range tests {
		got, err := naming.EndpointName(tt.prefix, tt.uid)
		if err != nil || got != tt.want {
			t.Errorf("EndpointName(%q, %q) = %q, %v; want %q", tt.prefix, tt.uid, got, err, tt.want)
			continue
		}
		if !naming.IsDNS1123Label(got) {
			t.Errorf("EndpointName(%q, %q) = %q, not a DNS-1123 label", tt.prefix, tt.uid, got)
		}
	}
	invalid := []struct{ prefix, uid, msg string }{
		{strings.Repeat("p", 27), uid, "27 characters long, more than 26"},
		{"Gluster", uid, "lower-case"},
		{"gluster-", uid, "start and end"},
		{"-gluster", uid, "start and end"},
		{"gluster_fs", uid, "lower-case"},
		{"gluster.fs", uid, "lower-case"},
		{"", "", "not a UUID"},
		{"", "claim1", "not a UUID"},
		{"", "pvc-" + uid, "not a UUID"},
	}
	for _, tt := range invalid {
		got, err := naming.EndpointName(tt.prefix, tt.uid)
		if got != "" {
			t.Errorf("EndpointName(%q, %q) returned %q with an error", tt.prefix, tt.uid, got)
		}
		wantInvalid(t, err, tt.msg)
	}
}

func TestFromUID(t *testing.T) {
	tests := []struct{ prefix, uid, want string }{
		{"", uid, "pvc-" + uid},
		{"pvc", uidUpper, "pvc-" + uid},
		{"subvol", uid, "subvol-" + uid},
	}
	for _, tt := range tests {
		got, err := naming.FromUID(tt.prefix, tt.uid)
		if err != nil || got != tt.want {
			t.Errorf("FromUID(%q, %q) = %q, %v; want %q", tt.prefix, tt.uid, got, err, tt.want)
			continue
		}
		if err := naming.ValidateSubvolName(got); err != nil {
			t.Errorf("FromUID(%q, %q) = %q: %v", tt.prefix, tt.uid, got, err)
		}
		// The CSI external-provisioner names volumes "pvc-<uid>"; that
		// request name must map to the same subvolume.
		if tt.prefix == "" {
			if fr, err := naming.ForRequest("pvc-" + uid); err != nil || fr != got {
				t.Errorf(`ForRequest("pvc-<uid>") = %q, %v; want %q`, fr, err, got)
			}
		}
	}
	invalid := []struct{ prefix, uid, msg string }{
		{strings.Repeat("p", 27), uid, "more than 26"},
		{"PVC", uid, "lower-case"},
		{"pvc-", uid, "start and end"},
		{"pvc", "not-a-uid", "not a UUID"},
		{"pvc", "", "not a UUID"},
	}
	for _, tt := range invalid {
		_, err := naming.FromUID(tt.prefix, tt.uid)
		wantInvalid(t, err, tt.msg)
	}
}

func TestVolumeName(t *testing.T) {
	tests := []struct {
		name                   string
		prefix, ns, pvc, uid   string
		want                   string
		wantLen                int // checked when want is ""
		wantPrefix, wantSuffix string
	}{
		{name: "in-tree scheme", prefix: "vol", ns: "app-storage", pvc: "claim1", uid: uid,
			want: "vol_app-storage_claim1_a71fa382"},
		{name: "upper-case uid", prefix: "vol", ns: "app-storage", pvc: "claim1", uid: uidUpper,
			want: "vol_app-storage_claim1_a71fa382"},
		{name: "upper-case kept", prefix: "Heketi-Vol", ns: "NS", pvc: "Claim", uid: uid,
			want: "Heketi-Vol_NS_Claim_a71fa382"},
		{name: "dot in claim", prefix: "vol", ns: "default", pvc: "data.v1", uid: uid,
			want: "vol_default_data-v1-da19b18ad0_a71fa382"},
		{name: "long claim", prefix: "vol", ns: "app-storage", pvc: strings.Repeat("p", 253), uid: uid,
			wantLen: 128, wantPrefix: "vol_app-storage_ppppp", wantSuffix: "p-f46a636523_a71fa382"},
		{name: "long namespace and claim", prefix: "vol", ns: strings.Repeat("n", 63), pvc: strings.Repeat("p", 100), uid: uid,
			wantLen: 128, wantPrefix: "vol_" + strings.Repeat("n", 51) + "_p", wantSuffix: "p-b54eff1658_a71fa382"},
		{name: "longest prefix", prefix: strings.Repeat("v", 32), ns: strings.Repeat("n", 63), pvc: strings.Repeat("p", 253), uid: uid,
			wantLen: 128, wantPrefix: strings.Repeat("v", 32) + "_" + strings.Repeat("n", 37) + "_", wantSuffix: "_a71fa382"},
		{name: "fits exactly", prefix: "v", ns: strings.Repeat("n", 58), pvc: strings.Repeat("p", 58), uid: uid,
			want: "v_" + strings.Repeat("n", 58) + "_" + strings.Repeat("p", 58) + "_a71fa382"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := naming.VolumeName(tt.prefix, tt.ns, tt.pvc, tt.uid)
			if err != nil {
				t.Fatalf("VolumeName: %v", err)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("VolumeName = %q, want %q", got, tt.want)
			}
			if tt.want == "" && len(got) != tt.wantLen {
				t.Errorf("VolumeName = %q (%d bytes), want %d bytes", got, len(got), tt.wantLen)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, tt.wantSuffix) {
				t.Errorf("VolumeName = %q, want prefix %q and suffix %q", got, tt.wantPrefix, tt.wantSuffix)
			}
			if !heketiName.MatchString(got) || len(got) > naming.MaxSubvolName {
				t.Errorf("VolumeName = %q does not match %s or is longer than %d", got, heketiName, naming.MaxSubvolName)
			}
			if err := naming.ValidateSubvolName(got); err != nil {
				t.Errorf("VolumeName = %q: %v", got, err)
			}
		})
	}
}

func TestVolumeNameNoCollisions(t *testing.T) {
	// Each pair differs only where VolumeName rewrites or cuts.
	pairs := [][2][3]string{
		{{"default", "data.v1", uid}, {"default", "data-v1", uid}},
		{{"default", "data.v1", uid}, {"default", "data_v1", uid}},
		{{"default", "a..b", uid}, {"default", "a.b", uid}},
		{{"ns", strings.Repeat("p", 200) + "1", uid}, {"ns", strings.Repeat("p", 200) + "2", uid}},
		{{strings.Repeat("n", 80) + "1", strings.Repeat("p", 80), uid}, {strings.Repeat("n", 80) + "2", strings.Repeat("p", 80), uid}},
		// Moving a byte from the namespace to the claim name.
		{{"a.b", "c", uid}, {"a", "b.c", uid}},
		// UIDs that share their first 8 hex digits, when a hash is added.
		{{"ns", "a.b", uid}, {"ns", "a.b", "a71fa382-0000-11e8-b229-005056a5c1c4"}},
	}
	for _, p := range pairs {
		a, err := naming.VolumeName("vol", p[0][0], p[0][1], p[0][2])
		if err != nil {
			t.Fatal(err)
		}
		b, err := naming.VolumeName("vol", p[1][0], p[1][1], p[1][2])
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Errorf("VolumeName(%q) == VolumeName(%q) == %q", p[0], p[1], a)
		}
	}
}

func TestVolumeNameInvalid(t *testing.T) {
	tests := []struct{ prefix, ns, pvc, uid, msg string }{
		{"", "ns", "pvc", uid, "prefix is empty"},
		{"my_vol", "ns", "pvc", uid, "must not contain '_'"},
		{strings.Repeat("v", 33), "ns", "pvc", uid, "33 characters long, more than 32"},
		{"-vol", "ns", "pvc", uid, "must start with a letter or a digit"},
		{"vol.x", "ns", "pvc", uid, `contains '.'`},
		{"vol/x", "ns", "pvc", uid, `contains '/'`},
		{"vol", "", "pvc", uid, "namespace is empty"},
		{"vol", "ns", "", uid, "claim name is empty"},
		{"vol", "ns", "pvc", "a71fa382", "not a UUID"},
	}
	for _, tt := range tests {
		got, err := naming.VolumeName(tt.prefix, tt.ns, tt.pvc, tt.uid)
		if got != "" {
			t.Errorf("VolumeName returned %q with an error", got)
		}
		wantInvalid(t, err, tt.msg)
	}
}

func TestForRequest(t *testing.T) {
	tests := []struct{ in, want string }{
		// Valid and short: unchanged.
		{"pvc-" + uid, "pvc-" + uid},
		{"my-volume", "my-volume"},
		{"CSI_Request.Name", "CSI_Request.Name"},
		{"trailing-", "trailing-"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		// Rewritten.
		{"My Volume", "my-volume-f436f1b4e0"},
		{"a..b", "a-b-f62b42414c"},
		{".hidden", "hidden-1692419006"},
		{"-leading", "leading-58a376dfef"},
		{"!!!", "e84c538e7f"},
		{"ünïcode", "n-code-b8be8967e4"},
		{"pvc-" + strings.Repeat("a", 60), "pvc-" + strings.Repeat("a", 48) + "-3084aa500d"},
	}
	for _, tt := range tests {
		got, err := naming.ForRequest(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ForRequest(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		if err := naming.ValidateSubvolName(got); err != nil || len(got) > naming.MaxDNSLabel {
			t.Errorf("ForRequest(%q) = %q (%d bytes): %v", tt.in, got, len(got), err)
		}
		if got != tt.in && !naming.IsDNS1123Label(got) {
			t.Errorf("ForRequest(%q) = %q, rewritten but not a DNS-1123 label", tt.in, got)
		}
		if again, err := naming.ForRequest(got); err != nil || again != got {
			t.Errorf("ForRequest(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
	invalid := []struct{ in, msg string }{
		{"", "empty"},
		{".", "not a directory name"},
		{"..", "not a directory name"},
		{"a/b", "contains '/'"},
		{"../etc", "contains '/'"},
		{"/", "contains '/'"},
		{"a\x00b", "NUL"},
	}
	for _, tt := range invalid {
		got, err := naming.ForRequest(tt.in)
		if got != "" {
			t.Errorf("ForRequest(%q) returned %q with an error", tt.in, got)
		}
		wantInvalid(t, err, tt.msg)
	}
}

func TestForRequestNoCollisions(t *testing.T) {
	// Names that become the same after lower-casing, replacing or cutting.
	groups := [][]string{
		{"My Volume", "my volume", "MY VOLUME", "my  volume", "my.volume!", "my-volume!"},
		{"a..b", "a...b", "a.-.b", "a b"},
		{strings.Repeat("x", 70) + "1", strings.Repeat("x", 70) + "2", strings.Repeat("x", 64)},
		{"!!!", "???", "\t"},
	}
	for _, g := range groups {
		seen := map[string]string{}
		for _, in := range g {
			got, err := naming.ForRequest(in)
			if err != nil {
				t.Fatalf("ForRequest(%q): %v", in, err)
			}
			if prev, ok := seen[got]; ok {
				t.Errorf("ForRequest(%q) == ForRequest(%q) == %q", in, prev, got)
			}
			seen[got] = in
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 16, "short"},
		{strings.Repeat("a", 16), 16, strings.Repeat("a", 16)},
		{"", 16, ""},
		{strings.Repeat("abc-", 20), 40, "abc-abc-abc-abc-abc-abc-abc-a-d501370f16"},
		{"héllo-wörld-and-more-text-here", 16, "héll-e0c6a51a39"},
	}
	for _, tt := range tests {
		if got := naming.Truncate(tt.s, tt.limit); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.limit, got, tt.want)
		}
	}
	// Trailing '-', '_' and '.' before the hash are dropped.
	got := naming.Truncate("abcd-_.efghijklmnopqrstuvwxyz", 16)
	if !strings.HasPrefix(got, "abcd-") || strings.HasPrefix(got, "abcd--") || len(got) != 15 {
		t.Errorf("Truncate = %q, want abcd-<hash>", got)
	}
	for _, limit := range []int{16, 17, 63, 64, 128} {
		s := strings.Repeat("z", 200)
		if got := naming.Truncate(s, limit); len(got) != limit {
			t.Errorf("Truncate(200 bytes, %d) is %d bytes", limit, len(got))
		}
	}
	if a, b := naming.Truncate(strings.Repeat("q", 40)+"1", 20), naming.Truncate(strings.Repeat("q", 40)+"2", 20); a == b {
		t.Errorf("Truncate collides: %q", a)
	}
}

func TestTruncatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Truncate(s, 15) did not panic")
		}
	}()
	naming.Truncate("abc", 15)
}
