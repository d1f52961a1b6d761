package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

func TestOptionsFromParams(t *testing.T) {
	o, err := OptionsFromParams(map[string]string{
		"volume": "gv0", "servers": " gfs1, gfs2 ,,gfs3", "mountdir": "/mnt/x",
		"glusterpath":      "/usr/sbin/gluster",
		"glusterargs":      "--glusterd-sock=/run/gd.sock  --log-file=/tmp/cli.log",
		"retrymaxattempts": "3", "retrymindelay": "10ms", "retrymaxdelay": "1s",
	})
	require.NoError(t, err)
	assert.Equal(t, "gv0", o.Volume)
	assert.Equal(t, []string{"gfs1", "gfs2", "gfs3"}, o.Servers)
	assert.Equal(t, "/mnt/x", o.MountDir)
	assert.Equal(t, 3, o.RetryMaxAttempts)
	assert.Equal(t, 10*time.Millisecond, o.RetryMinDelay)
	assert.Equal(t, time.Second, o.RetryMaxDelay)
	r := o.Runner.(*ShellRunner)
	assert.Equal(t, "/usr/sbin/gluster", r.Path)
	assert.Equal(t, []string{"--glusterd-sock=/run/gd.sock", "--log-file=/tmp/cli.log"}, r.ExtraArgs)

	for _, bad := range []map[string]string{
		{"volume": "v", "colour": "blue"},
		{"volume": "v", "strictquota": "true"}, // a Prepare option, not Open's
		{"volume": "v", "retrymindelay": "soon"},
		{"volume": "v", "retrymaxattempts": "many"},
	} {
		_, err := OptionsFromParams(bad)
		assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%v: %v", bad, err)
	}
}

func TestOpenRejectsBadOptionsBeforeTouchingAnything(t *testing.T) {
	r := &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlVolInfo, "", nil }}
	for _, o := range []*Options{
		nil,
		{Servers: []string{"h"}},
		{Volume: "a/b", Servers: []string{"h"}},
		{Volume: "-x", Servers: []string{"h"}},
		{Volume: "v"},
		{Volume: "v", Servers: []string{""}},
		{Volume: "v", Servers: []string{"h:/x"}},
	} {
		if o != nil {
			o.Runner = r
		}
		_, err := Open(context.Background(), o)
		assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "%+v: %v", o, err)
	}
	assert.Empty(t, r.calls, "no CLI call for invalid options")

	_, err := backend.Open(context.Background(), "cli", map[string]string{"servers": "h"})
	assert.True(t, errors.Is(err, subvolkit.ErrInvalidArgument), "registered as \"cli\": %v", err)
}

func TestOpenRequiresStartedVolumeWithQuota(t *testing.T) {
	stopped := `<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volInfo><volumes><volume><name>v</name><statusStr>Stopped</statusStr></volume></volumes></volInfo></cliOutput>`
	noQuota := `<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volInfo><volumes><volume><name>v</name><statusStr>Started</statusStr></volume></volumes></volInfo></cliOutput>`
	for answer, want := range map[string]string{stopped: "not Started", noQuota: "quota is not enabled", xmlNoVolume: "Volume does not exist"} {
		r := &scriptRunner{fn: func(int, []string) (string, string, error) { return answer, "", nil }}
		_, err := Open(context.Background(), &Options{Volume: "v", Servers: []string{"h"}, Runner: r, MountDir: t.TempDir()})
		assert.True(t, errors.Is(err, subvolkit.ErrFailedPrecondition), "%v", err)
		assert.Contains(t, err.Error(), want)
		if answer == noQuota {
			assert.Contains(t, err.Error(), "cli.Prepare", "the error says how to prepare the volume")
		}
		for _, c := range r.calls {
			assert.NotContains(t, strings.Join(c, " "), "set", "Open changes no volume setting")
			assert.NotContains(t, strings.Join(c, " "), "enable", "Open changes no volume setting")
		}
	}
}
