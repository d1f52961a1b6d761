package heketi_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/heketi"
	"github.com/subvolkit/subvolkit/quota"
)

// TestNoSpaceIsQuotaExceeded checks that heketi's allocator giving up is
// QuotaExceeded, never Unavailable (which callers retry for ever): "No
// space" for a create, and for an expansion "Minimum brick size limit
// reached.  Out of space." or "Maximum number of bricks reached.", as the
// real heketi answers them.
func TestNoSpaceIsQuotaExceeded(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	create(t, b, "pv1", quota.GiB)
	for _, grow := range []int64{capGiB, 100000} {
		before := len(s.Requests())
		_, err := b.Resize(t.Context(), "pv1", (1+grow)*quota.GiB)
		require.Error(t, err)
		assert.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
		var herr *heketi.HTTPError
		require.True(t, errors.As(err, &herr), "%v", err)
		assert.Equal(t, http.StatusInternalServerError, herr.StatusCode)
		assert.Contains(t, herr.Message, "Failed to allocate volume expansion: ")
		assert.Less(t, len(s.Requests())-before, 4, "not retried")
	}
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "pv2", SizeBytes: (capGiB + 1) * quota.GiB})
	assert.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
	sv, err := b.Get(t.Context(), "pv1")
	require.NoError(t, err)
	assert.Equal(t, quota.GiB, sv.SizeBytes, "nothing changed")
}
