package heketitest_test

import (
	"crypto/tls"
	"strings"
	"testing"

	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/heketitest"
)

// TestServer starts the real heketi in its namespace and drives it with
// heketi-cli and the heketi Go client: the topology is loaded, volumes can
// be made, the server can be stopped and restarted with its database.
func TestServer(t *testing.T) {
	s := heketitest.StartT(t, nil)
	ctx := t.Context()

	out, err := s.CLI(ctx, "topology", "info")
	require.NoError(t, err, "%s", out)
	for _, h := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		assert.Contains(t, string(out), h)
	}

	hc := client.NewClientWithOptions(s.URL(), "admin", s.AdminKey(), client.ClientOptions{RetryEnabled: false})
	hc.SetClientFunc(func(_ *tls.Config, check client.CheckRedirectFunc) (client.HttpPerformer, error) {
		c := s.HTTPClient()
		c.CheckRedirect = check
		return c, nil
	})
	req := &api.VolumeCreateRequest{Size: 1}
	req.Durability.Type = api.DurabilityReplicate
	req.Durability.Replicate.Replica = 3
	v, err := hc.VolumeCreate(req)
	require.NoError(t, err)
	assert.Equal(t, api.DurabilityReplicate, v.Durability.Type)
	assert.Len(t, v.Bricks, 3)

	require.NoError(t, s.Stop())
	_, err = hc.VolumeInfo(v.Id)
	require.Error(t, err)
	require.NoError(t, s.Restart(ctx))
	info, err := hc.VolumeInfo(v.Id)
	require.NoError(t, err, "the database survives a restart")
	assert.Equal(t, v.Id, info.Id)

	out, err = s.CLIAs(ctx, "admin", "wrong", "volume", "list")
	require.Error(t, err)
	assert.True(t, strings.Contains(string(out), "secrets may not match"), "%s", out)
	require.NoError(t, hc.VolumeDelete(v.Id))
}
