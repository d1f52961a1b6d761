package provision

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"
)

func TestParseClass(t *testing.T) {
	cli := func(kv ...string) map[string]string {
		m := map[string]string{"volume": "gv0", "servers": "a, b"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := parseClass("sc", cli())
	if err != nil {
		t.Fatal(err)
	}
	if c.ref.Backend != BackendCLI || c.ref.Params["servers"] != "a,b" || c.gidMin != DefaultGidMin || c.gidMax != DefaultGidMax ||
		c.pvType != PVTypeGlusterfs || c.onDelete != subvol.DeletePolicyDelete || c.ref.Pool != "gv0" {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseClass("sc", map[string]string{"resturl": "http://h:8080", "restuser": "admin", "secretNamespace": "ns",
		"secretName": "s", "volumetype": "replicate:3", "clusterid": "c1", "GIDMIN": "40000", "gidMax": "50000",
		"volumenameprefix": "dept", "customepnameprefix": "gl", "snapfactor": "10", "volumeoptions": "a b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ref.Backend != BackendHeketi || c.ref.Secret != "ns/s" || c.gidMin != 40000 || c.gidMax != 50000 || c.volumePrefix != "dept" || c.epPrefix != "gl" {
		t.Errorf("in-tree class: %+v", c)
	}
	if _, ok := c.ref.Params["restuserkey"]; ok {
		t.Error("a secret in the backend reference")
	}
	c, err = parseClass("sc", cli("warm", "1Gi:20, 10Gi:5"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []subvol.WarmClass{{SizeBytes: 1 << 30, Count: 20}, {SizeBytes: 10 << 30, Count: 5}}; !slices.Equal(c.warm, want) {
		t.Errorf("warm: %+v, want %+v", c.warm, want)
	}
	if _, ok := c.ref.Params["warm"]; ok {
		t.Error("warm is the pool's setting, not a backend parameter")
	}
	for _, bad := range []struct {
		params map[string]string
		want   string
	}{
		{cli("colour", "blue"), `unknown parameter "colour"`},
		{cli("gidMin", "7000", "gidMax", "6000"), "greater than gidMax"},
		{cli("gidMin", "100"), "outside"},
		{cli("volumetype", "replicate:x"), "volumetype"},
		{cli("customepnameprefix", strings.Repeat("p", 27)), "more than 26"},
		{cli("customepnameprefix", "Bad_Prefix"), "customepnameprefix"},
		{cli("volumenameprefix", "a_b"), "volumenameprefix"},
		{cli("backend", "ceph"), `unknown backend "ceph"`},
		{cli("onDelete", "shred"), "onDelete"},
		{cli("pvType", "nfs"), "pvType"},
		{cli("backend", "cli", "resturl", "http://x"), "applies to the heketi backend"},
		{map[string]string{"servers": "a"}, "needs a volume"},
		{map[string]string{"volume": "v"}, "needs servers"},
		{map[string]string{"resturl": "http://x", "volume": "v"}, "applies to the cli backend"},
		{map[string]string{"resturl": "http://x", "secretName": "s"}, "go together"},
		{map[string]string{"resturl": "http://x", "pvType": "flex"}, "flex"},
		{cli("warm", "1Gi"), "warm"},
		{map[string]string{"resturl": "http://x", "warm": "1Gi:2"}, "applies to the cli backend"},
	} {
		_, err := parseClass("sc", bad.params)
		if !errors.Is(err, subvolkit.ErrInvalidArgument) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want invalid argument with %q", bad.params, err, bad.want)
		}
	}
}

func TestGidsConcurrent(t *testing.T) {
	g := newGids()
	g.mark(5000, "pv-old")
	var mu sync.Mutex
	seen := map[int]string{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := "uid-" + string(rune('A'+i))
			gid, err := g.allocate(5000, 5050, owner)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if o, dup := seen[gid]; dup {
				t.Errorf("gid %d given to %s and %s", gid, o, owner)
			}
			seen[gid] = owner
		}()
	}
	wg.Wait()
	if _, err := g.allocate(5000, 5050, "one-more"); !errors.Is(err, subvolkit.ErrQuotaExceeded) {
		t.Errorf("full range: %v", err)
	}
	g.release(5001, "somebody-else") // not the owner: no effect
	owner := seen[5001]
	if gid, _ := g.allocate(5000, 5050, owner); gid != 5001 {
		t.Errorf("an owner's second allocation gave %d, want its 5001", gid)
	}
	g.release(5001, owner)
	if gid, err := g.allocate(5000, 5050, "new"); gid != 5001 || err != nil {
		t.Errorf("after release: %d %v", gid, err)
	}
}
