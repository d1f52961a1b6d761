package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/subvol"
)

// TestConformance runs the public conformance suite against the cli backend
// on a real one-node GlusterFS (one cluster for the whole suite; a new
// backend, with its own mount, per subtest).
func TestConformance(t *testing.T) {
	e := newEnv(t)
	capacity := statfsSize(t, e.root)
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &cliHarness{e: e, capacity: capacity}, nil
	})
}

type cliHarness struct {
	e        *env
	capacity int64
}

func (h *cliHarness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	return openBackend(t, h.e.c, nil), nil
}

func (h *cliHarness) Options() backendtest.Options {
	root := h.e.root
	return backendtest.Options{
		SizeUnit:     1,
		MaxSizeBytes: h.capacity,
		Capabilities: backendtest.Resize | backendtest.Clone | backendtest.Usage | backendtest.Ping | backendtest.Retain | backendtest.Archive | backendtest.Owner | backendtest.Labels | backendtest.Shrink | backendtest.Reconcile | backendtest.Snapshot | backendtest.Warm | backendtest.ListUsage,
		AsTypes:      []any{new(*cli.Backend), new(cli.Runner)},
		WriteFile: func(ctx context.Context, sv *subvol.Subvol, path string, data []byte) error {
			p := filepath.Join(root, sv.Path, path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		},
		ReadFile: func(ctx context.Context, sv *subvol.Subvol, path string) ([]byte, error) {
			return os.ReadFile(filepath.Join(root, sv.Path, path))
		},
		Snapshot: func(ctx context.Context) (string, error) {
			return h.e.stateErr(ctx)
		},
	}
}

func (h *cliHarness) Close() {}
