package heketi_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/heketi"
	"github.com/subvolkit/subvolkit/heketitest"
	"github.com/subvolkit/subvolkit/quota"
)

// The real server's topology: three nodes of one 500 GiB device each (the
// mock executor's size), so replica 3 volumes of at most ~500 GiB.
const realDeviceGiB = 500

func realOptions(s *heketitest.Server) *heketi.Options {
	return &heketi.Options{
		URL: s.URL(), User: "admin", Key: s.AdminKey(), HTTPClient: s.HTTPClient(),
		PollInterval: 20 * time.Millisecond, RetryMinDelay: 10 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
	}
}

// mockServable is the heketi backend without what heketi's mock executor
// cannot serve: its clone returns no bricks and panics the server.
type mockServable struct {
	backend.Backend
	backend.Resizer
	backend.UsageReader
	backend.Pinger
	backend.Describer
	backend.Aser
}

type realHarness struct{ s *heketitest.Server }

func (h *realHarness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	b, err := heketi.Open(ctx, realOptions(h.s))
	if err != nil {
		return nil, err
	}
	return &mockServable{Backend: b, Resizer: b, UsageReader: b, Pinger: b, Describer: b, Aser: b}, nil
}

func (h *realHarness) Options() backendtest.Options {
	return backendtest.Options{
		SizeUnit: quota.GiB, MaxSizeBytes: realDeviceGiB * quota.GiB,
		Capabilities: backendtest.Resize | backendtest.Ping,
		AsTypes:      []any{new(*client.Client)},
	}
}

func (h *realHarness) Close() {}

// TestRealHeketiConformance runs backend/heketi through the public
// conformance suite against the real heketi server (heketitest: built from
// heketi's module, mock executor, its own network namespace), then the
// cases a fake cannot vouch for: authentication on and off, a wrong key,
// the user issuer, a full cluster, the server going down and coming back,
// and cancellation.
func TestRealHeketiConformance(t *testing.T) {
	s := heketitest.StartT(t, nil)
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &realHarness{s: s}, nil
	})

	ctx := t.Context()
	count := func() int {
		var hc *client.Client
		b, err := heketi.Open(ctx, realOptions(s))
		require.NoError(t, err)
		defer b.Close()
		require.True(t, b.As(&hc))
		list, err := hc.VolumeList()
		require.NoError(t, err)
		return len(list.Volumes)
	}

	t.Run("wrong key", func(t *testing.T) {
		o := realOptions(s)
		o.Key = "not-the-key"
		b, err := heketi.Open(ctx, o)
		require.NoError(t, err)
		defer b.Close()
		before := count()
		err = b.Ping(ctx)
		assert.Equal(t, subvolkit.PermissionDenied, subvolkit.KindOf(err), "%v", err)
		_, err = b.Create(ctx, &backend.CreateRequest{Name: "intruder", SizeBytes: quota.GiB})
		assert.Equal(t, subvolkit.PermissionDenied, subvolkit.KindOf(err), "%v", err)
		var herr *heketi.HTTPError
		require.ErrorAs(t, err, &herr)
		assert.Equal(t, http.StatusUnauthorized, herr.StatusCode)
		assert.Contains(t, herr.Message, "secrets may not match")
		assert.Equal(t, before, count(), "nothing created")
	})

	t.Run("user issuer is refused at Open", func(t *testing.T) {
		o := realOptions(s)
		o.User, o.Key = "user", s.UserKey()
		before := count()
		_, err := heketi.Open(ctx, o)
		assert.Equal(t, subvolkit.PermissionDenied, subvolkit.KindOf(err), "%v", err)
		// What Open spares: the real server lets "user" start a create
		// and then refuses its job poll, so the volume would leak.
		hc := client.NewClientWithOptions(s.URL(), "user", s.UserKey(), client.ClientOptions{})
		hc.SetClientFunc(func(_ *tls.Config, check client.CheckRedirectFunc) (client.HttpPerformer, error) {
			c := s.HTTPClient()
			c.CheckRedirect = check
			return c, nil
		})
		_, err = hc.ClusterList()
		assert.ErrorContains(t, err, "Administrator access required")
		assert.Equal(t, before, count())
	})

	t.Run("no space is QuotaExceeded", func(t *testing.T) {
		b, err := heketi.Open(ctx, realOptions(s))
		require.NoError(t, err)
		defer b.Close()
		before := count()
		_, err = b.Create(ctx, &backend.CreateRequest{Name: "huge", SizeBytes: 10 * realDeviceGiB * quota.GiB})
		require.Error(t, err)
		assert.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "%v", err)
		assert.ErrorContains(t, err, "No space")
		assert.Equal(t, before, count())

		_, err = b.Create(ctx, &backend.CreateRequest{Name: "small", SizeBytes: quota.GiB})
		require.NoError(t, err)
		for _, grow := range []int64{10 * realDeviceGiB, 100 * realDeviceGiB} {
			_, err = b.Resize(ctx, "small", grow*quota.GiB)
			require.Error(t, err)
			assert.Equal(t, subvolkit.QuotaExceeded, subvolkit.KindOf(err), "never Unavailable (callers would retry for ever): %v", err)
			var herr *heketi.HTTPError
			require.ErrorAs(t, err, &herr)
			t.Logf("real heketi, expand by %d GiB: %d %q", grow, herr.StatusCode, herr.Message)
		}
		sv, err := b.Get(ctx, "small")
		require.NoError(t, err)
		assert.Equal(t, quota.GiB, sv.SizeBytes)
		require.NoError(t, b.Delete(ctx, "small", nil))
	})

	t.Run("cancel", func(t *testing.T) {
		b, err := heketi.Open(ctx, realOptions(s))
		require.NoError(t, err)
		defer b.Close()
		before := count()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = b.Create(cctx, &backend.CreateRequest{Name: "cancelled", SizeBytes: quota.GiB})
		assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err), "%v", err)
		assert.Equal(t, before, count())
	})

	t.Run("server down", func(t *testing.T) {
		b, err := heketi.Open(ctx, realOptions(s))
		require.NoError(t, err)
		defer b.Close()
		_, err = b.Create(ctx, &backend.CreateRequest{Name: "survivor", SizeBytes: quota.GiB})
		require.NoError(t, err)
		require.NoError(t, s.Stop())
		err = b.Ping(ctx)
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
		_, err = b.Get(ctx, "survivor")
		assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
		require.NoError(t, s.Restart(ctx))
		sv, err := b.Get(ctx, "survivor")
		require.NoError(t, err, "the volume is in heketi's database")
		assert.Equal(t, quota.GiB, sv.SizeBytes)
		require.NoError(t, b.Delete(ctx, "survivor", nil))
	})

	t.Run("auth disabled", func(t *testing.T) {
		open := heketitest.StartT(t, &heketitest.Options{DisableAuth: true, Binaries: s.Binaries()})
		b, err := heketi.Open(ctx, &heketi.Options{URL: open.URL(), HTTPClient: open.HTTPClient(), PollInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.Ping(ctx))
		sv, err := b.Create(ctx, &backend.CreateRequest{Name: "open", SizeBytes: 2 * quota.GiB})
		require.NoError(t, err)
		assert.Equal(t, 2*quota.GiB, sv.SizeBytes)
		assert.Len(t, sv.Servers, 3)
		var hc *client.Client
		require.True(t, b.As(&hc))
		info, err := hc.VolumeInfo(sv.ID)
		require.NoError(t, err)
		assert.Equal(t, api.DurabilityReplicate, info.Durability.Type)
		require.NoError(t, b.Delete(ctx, "open", nil))
	})
}
