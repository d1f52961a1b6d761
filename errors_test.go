package subvolkit_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
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
	assert.Equal(t, `subvolkit: allocate "a": invalid argument: get: bad name`, other.Error())
	plain := subvolkit.WithOp("list", "", errors.New("boom"))
	assert.Equal(t, subvolkit.Unknown, subvolkit.KindOf(plain))
	assert.Equal(t, `subvolkit: list: unknown: boom`, plain.Error())
}

// A backend's error (kind, no op or name) gets the Pool's op and name once.
func TestBackendErrorWrappedOnce(t *testing.T) {
	native := &backendErr{code: 7}
	fromBackend := subvolkit.E(subvolkit.Unavailable, "", "", native)
	assert.Equal(t, `subvolkit: unavailable: backend code 7`, fromBackend.Error())
	err := subvolkit.WithOp("allocate", "pvc-1", fromBackend)
	assert.Equal(t, `subvolkit: allocate "pvc-1": unavailable: backend code 7`, err.Error())
	var be *backendErr
	assert.True(t, errors.As(err, &be))
	assert.True(t, errors.Is(err, subvolkit.ErrUnavailable))

	// A native step names the gluster command, kept once.
	step := subvolkit.E(subvolkit.Unavailable, "quota limit-usage", "", native)
	assert.Equal(t, `subvolkit: allocate "pvc-1": unavailable: quota limit-usage: backend code 7`,
		subvolkit.WithOp("allocate", "pvc-1", step).Error())

	// Wrapped on its way (fmt.Errorf, errors.Join): still one prefix.
	mid := fmt.Errorf("rolling back: %w", fromBackend)
	got := subvolkit.WithOp("allocate", "pvc-1", mid).Error()
	assert.Equal(t, `subvolkit: allocate "pvc-1": unavailable: rolling back: backend code 7`, got)
	joined := subvolkit.E(subvolkit.AlreadyExists, "clone", "b", errors.Join(
		subvolkit.E(subvolkit.AlreadyExists, "", "b", errors.New("exists")),
		subvolkit.E(subvolkit.NotFound, "", "", errors.New("gone"))))
	assert.Equal(t, 1, strings.Count(joined.Error(), "subvolkit:"), joined.Error())
	assert.Equal(t, 1, strings.Count(joined.Error(), `"b"`), joined.Error())

	// A context error keeps its kind, and is said once.
	ctx, cancel := context.WithTimeout(context.Background(), -1)
	defer cancel()
	expired := subvolkit.E(subvolkit.Unavailable, "", "", ctx.Err())
	got = subvolkit.WithOp("allocate", "pvc-1", fmt.Errorf("waiting: %w", expired)).Error()
	assert.Equal(t, `subvolkit: allocate "pvc-1": deadline exceeded: waiting: context deadline exceeded`, got)
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
