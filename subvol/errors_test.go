package subvol_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// expired returns a context whose deadline has passed, derived from ctx.
func expired(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, time.Now().Add(-time.Second))
}

// lateMemory is the memory backend whose caller's context expires the moment
// a call reaches it: every error below is the memory backend's own.
type lateMemory struct{ *memory.Backend }

func (l lateMemory) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Create(ctx, req)
}

func (l lateMemory) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Get(ctx, name)
}

func (l lateMemory) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Delete(ctx, name, opts)
}

func (l lateMemory) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.List(ctx, opts)
}

func (l lateMemory) Resize(ctx context.Context, name string, size int64) (*backend.Subvol, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Resize(ctx, name, size)
}

func (l lateMemory) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Clone(ctx, req)
}

func (l lateMemory) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	ctx, cancel := expired(ctx)
	defer cancel()
	return l.Backend.Usage(ctx, name)
}

// slowGluster waits for the caller's context to end in every call and
// returns the error a CLI backend would: a native step, wrapped on its way
// out of a rollback.
type slowGluster struct{}

func (slowGluster) wait(ctx context.Context) error {
	<-ctx.Done()
	native := subvolkit.E(subvolkit.Unavailable, "volume quota limit-usage", "",
		fmt.Errorf("gluster: %w", ctx.Err()))
	return fmt.Errorf("rolled back: %w", native)
}

func (s slowGluster) Create(ctx context.Context, _ *backend.CreateRequest) (*backend.Subvol, error) {
	return nil, s.wait(ctx)
}
func (s slowGluster) Get(ctx context.Context, _ string) (*backend.Subvol, error) {
	return nil, s.wait(ctx)
}
func (s slowGluster) Delete(ctx context.Context, _ string, _ *backend.DeleteOptions) error {
	return s.wait(ctx)
}
func (s slowGluster) List(ctx context.Context, _ *backend.ListOptions) (*backend.ListPage, error) {
	return nil, s.wait(ctx)
}
func (s slowGluster) Resize(ctx context.Context, _ string, _ int64) (*backend.Subvol, error) {
	return nil, s.wait(ctx)
}
func (s slowGluster) Clone(ctx context.Context, _ *backend.CloneRequest) (*backend.Subvol, error) {
	return nil, s.wait(ctx)
}
func (s slowGluster) Usage(ctx context.Context, _ string) (*quota.Usage, error) {
	return nil, s.wait(ctx)
}
func (slowGluster) Close() error { return nil }

// poolOps runs every Pool operation on name (clone: from "src") with ctx.
func poolOps(p *subvol.Pool) map[string]func(ctx context.Context, name string) error {
	return map[string]func(ctx context.Context, name string) error{
		"allocate": func(ctx context.Context, name string) error {
			_, err := p.Allocate(ctx, name, quota.GiB, nil)
			return err
		},
		"get": func(ctx context.Context, name string) error { _, err := p.Get(ctx, name); return err },
		"list": func(ctx context.Context, _ string) error {
			_, err := p.List(ctx)
			return err
		},
		"resize": func(ctx context.Context, name string) error {
			_, err := p.Resize(ctx, name, 2*quota.GiB)
			return err
		},
		"usage": func(ctx context.Context, name string) error { _, err := p.Usage(ctx, name); return err },
		"clone": func(ctx context.Context, name string) error {
			_, err := p.Clone(ctx, "src", name, nil)
			return err
		},
		"delete": func(ctx context.Context, name string) error { return p.Delete(ctx, name, nil) },
	}
}

// checkOnce checks that err, from op on name after its context expired,
// reads `subvolkit: <op> "<name>": deadline exceeded: ...` with
// "subvolkit:" and the name once.
func checkOnce(t *testing.T, op, name string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error after the context expired", op)
	}
	msg := err.Error()
	if n := strings.Count(msg, "subvolkit:"); n != 1 {
		t.Errorf("%s: %q says \"subvolkit:\" %d times, want once", op, msg, n)
	}
	want := fmt.Sprintf("subvolkit: %s %q: deadline exceeded", op, name)
	if op == "list" {
		want = "subvolkit: list: deadline exceeded"
	} else if n := strings.Count(msg, `"`+name+`"`); n != 1 {
		t.Errorf("%s: %q names %q %d times, want once", op, msg, name, n)
	}
	if !strings.HasPrefix(msg, want) {
		t.Errorf("%s: %q does not start with %q", op, msg, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, subvolkit.ErrDeadlineExceeded) {
		t.Errorf("%s: %v is not DeadlineExceeded", op, err)
	}
}

func TestExpiredContextSaysSubvolkitOnce(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		mem := memory.New(nil)
		setup := subvol.NewPool(mem, nil)
		for _, n := range []string{"src", "pv"} {
			if _, err := setup.Allocate(t.Context(), n, quota.GiB, nil); err != nil {
				t.Fatal(err)
			}
		}
		p := subvol.NewPool(lateMemory{mem}, nil)
		for op, run := range poolOps(p) {
			name := "pv"
			if op == "allocate" || op == "clone" {
				name = "new"
			}
			checkOnce(t, op, name, run(t.Context(), name))
		}
	})
	t.Run("fake", func(t *testing.T) {
		p := subvol.NewPool(slowGluster{}, nil)
		for op, run := range poolOps(p) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			checkOnce(t, op, "pv", run(ctx, "pv"))
			cancel()
		}
	})
	t.Run("expired before the call", func(t *testing.T) {
		p := subvol.NewPool(memory.New(nil), nil)
		ctx, cancel := expired(t.Context())
		defer cancel()
		for op, run := range poolOps(p) {
			checkOnce(t, op, "pv", run(ctx, "pv"))
		}
	})
}
