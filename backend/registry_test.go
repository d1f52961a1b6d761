package backend_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

func TestRegistry(t *testing.T) {
	var r backend.Registry
	var got map[string]string
	open := func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		got = params
		if params["bad"] != "" {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "unknown parameter %q", "bad")
		}
		return nil, nil
	}
	r.Register("b", open)
	r.Register("a", open)
	assert.Equal(t, []string{"a", "b"}, r.Names())

	_, err := r.Open(context.Background(), "a", nil)
	require.NoError(t, err)
	assert.NotNil(t, got, "nil params become an empty map")

	_, err = r.Open(context.Background(), "a", map[string]string{"bad": "1"})
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%v", err)
	assert.Contains(t, err.Error(), "open backend a")

	_, err = r.Open(context.Background(), "nope", nil)
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument))
	assert.Contains(t, err.Error(), `backend "nope" not registered (forgotten import?)`)

	assert.Panics(t, func() { r.Register("a", open) }, "duplicate")
	assert.Panics(t, func() { r.Register("", open) }, "empty name")
	assert.Panics(t, func() { r.Register("c", nil) }, "nil func")
}

func TestDeletePolicyString(t *testing.T) {
	assert.Equal(t, "delete", backend.DeletePolicyDelete.String())
	assert.Equal(t, "retain", backend.DeletePolicyRetain.String())
	assert.Equal(t, "archive", backend.DeletePolicyArchive.String())
	assert.Equal(t, "unknown", backend.DeletePolicy(9).String())
}
