package glusterd2_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gluster/glusterd2/pkg/restclient"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/glusterd2"
	"github.com/subvolkit/subvolkit/internal/testutil/gd2fake"
	"github.com/subvolkit/subvolkit/quota"
)

// harness runs the suite against a fresh fake glusterd2 per subtest.
type harness struct {
	srv *gd2fake.Server
}

func (h *harness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	return glusterd2.Open(ctx, &glusterd2.Options{
		URL:           h.srv.URL(),
		Secret:        h.srv.Secret(),
		RetryMinDelay: time.Millisecond,
		RetryMaxDelay: 10 * time.Millisecond,
	})
}

// Options: sizes are whole MiB; one peer's device (1 GiB) bounds a
// single-brick volume.
func (h *harness) Options() backendtest.Options {
	return backendtest.Options{
		SizeUnit:     quota.MiB,
		MaxSizeBytes: quota.GiB,
		Snapshot:     h.snapshot,
		Capabilities: backendtest.Ping | backendtest.Labels | backendtest.Usage | backendtest.Retain,
		AsTypes:      []any{new(*http.Client), new(*restclient.Client)},
	}
}

// snapshot describes every volume glusterd2 holds, made by the backend or
// not, with its state and metadata: a half-made or orphaned volume shows.
func (h *harness) snapshot(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, v := range h.srv.Volumes() {
		fmt.Fprintf(&b, "%s id=%s state=%v", v.Name, v.ID.String(), v.State)
		for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
			fmt.Fprintf(&b, " %s=%s", k, v.Metadata[k])
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func (h *harness) Close() { h.srv.Close() }

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &harness{srv: gd2fake.New(&gd2fake.Options{DeviceBytes: 1 << 30})}, nil
	})
}
