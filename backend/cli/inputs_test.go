package cli_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Owners beyond 32 bits and labels too large for the marker's extended
// attribute are InvalidArgument, and change nothing.
func TestInputChecks(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	_, err := e.pool.Allocate(ctx, "src", quota.MiB, nil)
	require.NoError(t, err)
	before := e.state(t)
	big := map[string]string{"k": strings.Repeat("v", 8192)}
	cases := []*subvol.AllocateOptions{
		{Owner: &subvol.Ownership{UID: 1 << 32, GID: 0}},
		{Owner: &subvol.Ownership{UID: 0, GID: 1 << 40}},
		{Owner: &subvol.Ownership{UID: -2, GID: 0}},
		{Labels: big},
	}
	for i, o := range cases {
		_, err := e.pool.Allocate(ctx, "bad", quota.MiB, o)
		assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "case %d: %v", i, err)
	}
	_, err = e.pool.Clone(ctx, "src", "bad", &subvol.CloneOptions{Labels: big})
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(err), "%v", err)
	assert.Equal(t, before, e.state(t))
	// Labels that fit are kept.
	sv, err := e.pool.Allocate(ctx, "labelled", quota.MiB, &subvol.AllocateOptions{Labels: map[string]string{"a": strings.Repeat("b", 1000)}})
	require.NoError(t, err)
	got, err := e.pool.Get(ctx, sv.Name)
	require.NoError(t, err)
	assert.Equal(t, sv.Labels, got.Labels)
}
