package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

func TestEntryName(t *testing.T) {
	for in, want := range map[string]string{"a.1f": "a", "a.b.1f": "a.b", "pvc-x.0": "pvc-x"} {
		if got, ok := entryName(in); !ok || got != want {
			t.Errorf("entryName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "a", ".a", "a."} {
		if got, ok := entryName(in); ok {
			t.Errorf("entryName(%q) = %q, true; want false", in, got)
		}
	}
	n := nonce()
	if strings.Contains(n, ".") || len(n) < 16 {
		t.Errorf("nonce %q", n)
	}
}

func TestArchivedAt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	name, got, ok := archivedAt("pvc-a-b-" + at.Format(archiveTime))
	if !ok || name != "pvc-a-b" || !got.Equal(at) {
		t.Errorf("archivedAt = %q %v %v", name, got, ok)
	}
	if _, _, ok := archivedAt("no-time"); ok {
		t.Error("archivedAt accepted a name without a time")
	}
}

func TestCheckNew(t *testing.T) {
	ok := []*backend.Ownership{nil, {UID: -1, GID: -1}, {UID: 0, GID: 0, Mode: 0o2775}, {UID: 1<<32 - 2, GID: 1<<32 - 2}}
	for _, o := range ok {
		if err := checkNew(&marker{Name: "x"}, o); err != nil {
			t.Errorf("checkNew(%+v): %v", o, err)
		}
	}
	bad := []*backend.Ownership{{UID: 1 << 32}, {GID: 1 << 32}, {UID: -2}, {Mode: 0o17777}}
	for _, o := range bad {
		if err := checkNew(&marker{Name: "x"}, o); subvolkit.KindOf(err) != subvolkit.InvalidArgument {
			t.Errorf("checkNew(%+v) = %v, want InvalidArgument", o, err)
		}
	}
	big := &marker{Name: "x", Labels: map[string]string{"k": strings.Repeat("v", maxMarker)}}
	if err := checkNew(big, nil); subvolkit.KindOf(err) != subvolkit.InvalidArgument {
		t.Errorf("checkNew(big labels) = %v, want InvalidArgument", err)
	}
}
