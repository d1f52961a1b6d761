package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/heketi"
	"github.com/subvolkit/subvolkit/examples/heketi-server/server"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// TestHeketiBackendConformance runs subvolkit's own heketi backend, through
// the public conformance suite, against this server (on the memory
// backend): the server answers as heketi does, with subvolumes instead of
// volumes.
func TestHeketiBackendConformance(t *testing.T) {
	e := newEnv(t, nil)
	mnt := e.dir // the memory backend's directories, as a mount of the volume would show them
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &heketiHarness{url: e.hs.URL, mnt: mnt}, nil
	})
}

type heketiHarness struct{ url, mnt string }

func (h *heketiHarness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	return heketi.Open(ctx, &heketi.Options{URL: h.url, User: "admin", Key: adminKey, PollInterval: 20 * time.Millisecond, DeepDirPrefix: server.DirPrefix})
}

func (h *heketiHarness) Options() backendtest.Options {
	return backendtest.Options{
		SizeUnit:     quota.GiB,
		Concurrency:  4,
		Capabilities: backendtest.Resize | backendtest.Clone | backendtest.Ping,
		AsTypes:      []any{new(*client.Client)},
		WriteFile: func(ctx context.Context, sv *subvol.Subvol, path string, data []byte) error {
			p := filepath.Join(h.mnt, sv.Path, path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		},
		ReadFile: func(ctx context.Context, sv *subvol.Subvol, path string) ([]byte, error) {
			return os.ReadFile(filepath.Join(h.mnt, sv.Path, path))
		},
	}
}

func (h *heketiHarness) Close() {}
