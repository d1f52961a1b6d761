package cli

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWarmCacheRelist checks that TakeWarm's memory of warm entries lists
// the root only when it remembers none of a size, at most once per
// warmRelist, and that set (WarmCounts' listing) and push refill it.
func TestWarmCacheRelist(t *testing.T) {
	var c warmCache
	lists := 0
	root := map[int64][]string{}
	list := func() (map[int64][]string, error) {
		lists++
		by := map[int64][]string{}
		for k, v := range root {
			by[k] = append([]string(nil), v...)
		}
		return by, nil
	}
	const a, b = 1 << 20, 2 << 20

	_, ok, err := c.pop(a, list)
	require.NoError(t, err)
	assert.False(t, ok, "nothing at the root")
	assert.Equal(t, 1, lists)

	// Made by another process meanwhile: not seen within warmRelist, no
	// second listing for this miss or one of another size.
	root[a] = []string{warmPrefix + "1048576.x1"}
	_, ok, _ = c.pop(a, list)
	assert.False(t, ok)
	_, ok, _ = c.pop(b, list)
	assert.False(t, ok)
	assert.Equal(t, 1, lists, "a miss within warmRelist of a listing lists nothing")

	// A push (Warm in this process) is taken without a listing.
	c.push(b, warmPrefix+"2097152.y1")
	e, ok, _ := c.pop(b, list)
	assert.True(t, ok)
	assert.Equal(t, warmPrefix+"2097152.y1", e)
	assert.Equal(t, 1, lists)

	// WarmCounts' listing refreshes it.
	c.set(map[int64][]string{a: {warmPrefix + "1048576.x1", warmPrefix + "1048576.x2"}})
	got := map[string]bool{}
	for range 2 {
		e, ok, _ := c.pop(a, list)
		require.True(t, ok)
		got[e] = true
	}
	assert.Len(t, got, 2, "both entries, once each")
	assert.Equal(t, 1, lists)

	// Past warmRelist, a miss lists again; an error is reported.
	c.mu.Lock()
	c.listed = time.Now().Add(-warmRelist)
	c.mu.Unlock()
	e, ok, _ = c.pop(a, list)
	assert.True(t, ok)
	assert.Equal(t, warmPrefix+"1048576.x1", e)
	assert.Equal(t, 2, lists)
	c.mu.Lock()
	c.by, c.listed = nil, time.Time{}
	c.mu.Unlock()
	boom := errors.New("boom")
	_, _, err = c.pop(a, func() (map[int64][]string, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
}

// FuzzWarmEntrySize checks that only "<warmPrefix><positive size>.<nonce>"
// is read as a warm entry: a positive size, then a nonce.
func FuzzWarmEntrySize(f *testing.F) {
	for _, s := range []string{warmPrefix + "1048576.18ed6b0c5d2e4f00aabbccdd", warmPrefix + "0.x", warmPrefix + "-5.x",
		warmPrefix + "12", "1048576.x", ".subvolkit", warmPrefix + ".x", warmPrefix + "9.", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		size, ok := warmEntrySize(entry)
		if !ok {
			return
		}
		if size <= 0 {
			t.Fatalf("%q: size %d", entry, size)
		}
		rest := entry[len(warmPrefix):]
		if entry[:len(warmPrefix)] != warmPrefix {
			t.Fatalf("%q has no prefix", entry)
		}
		if n, ok := entryName(rest); !ok || n == "" {
			t.Fatalf("%q: no nonce", entry)
		}
	})
}
