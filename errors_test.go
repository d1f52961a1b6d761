package subvolkit_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/subvolkit/subvolkit"
)

type backendErr struct{ code int }

func (e *backendErr) Error() string { return fmt.Sprintf("backend code %d", e.code) }

func TestKindsMatchWithIsAndBackendErrorsWithAs(t *testing.T) {
	native := &backendErr{code: 404}
	err := subvolkit.E(subvolkit.NotFound, "get", "pvc-1", native)
	assert.True(t, errors.Is(err, subvolkit.ErrNotFound))
	assert.False(t, errors.Is(err, subvolkit.ErrAlreadyExists))
	var be *backendErr
	assert.True(t, errors.As(err, &be))
	assert.Equal(t, 404, be.code)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err))
	assert.Equal(t, `subvolkit: get "pvc-1": not found: backend code 404`, err.Error())

	wrapped := fmt.Errorf("controller: %w", err)
	assert.True(t, errors.Is(wrapped, subvolkit.ErrNotFound))
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(wrapped))
}

func TestContextErrorsKeepTheirKind(t *testing.T) {
	err := subvolkit.E(subvolkit.Unavailable, "allocate", "x", fmt.Errorf("mid-call: %w", context.Canceled))
	assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err))
	assert.True(t, errors.Is(err, context.Canceled))
	assert.True(t, errors.Is(err, subvolkit.ErrCanceled))
	assert.Equal(t, subvolkit.DeadlineExceeded, subvolkit.KindOf(context.DeadlineExceeded))
}

func TestUnknownWhenUnsure(t *testing.T) {
	assert.Equal(t, subvolkit.Unknown, subvolkit.KindOf(errors.New("x")))
	assert.Equal(t, subvolkit.Unknown, subvolkit.KindOf(fs.ErrNotExist), "an unclassified os error is not NotFound")
	assert.Equal(t, subvolkit.Unknown, subvolkit.KindOf(nil))
}

func TestWithOpWrapsOnce(t *testing.T) {
	assert.NoError(t, subvolkit.WithOp("get", "a", nil))
	base := subvolkit.Errorf(subvolkit.InvalidArgument, "get", "a", "bad %s", "name")
	assert.Same(t, base, subvolkit.WithOp("get", "a", base))
	other := subvolkit.WithOp("allocate", "a", base)
	assert.Equal(t, subvolkit.InvalidArgument, subvolkit.KindOf(other))
	assert.Contains(t, other.Error(), "allocate")
	plain := subvolkit.WithOp("list", "", errors.New("boom"))
	assert.Equal(t, subvolkit.Unknown, subvolkit.KindOf(plain))
}

func TestKindStringsAndSentinels(t *testing.T) {
	for k := subvolkit.Unknown; k <= subvolkit.Internal; k++ {
		assert.NotContains(t, k.String(), "kind(")
		assert.True(t, errors.Is(subvolkit.E(k, "", "", nil), k.Sentinel()))
		assert.Equal(t, k, subvolkit.KindOf(k.Sentinel()))
	}
	assert.Equal(t, "kind(99)", subvolkit.Kind(99).String())
	assert.Equal(t, subvolkit.ErrUnknown, subvolkit.Kind(99).Sentinel())
}
