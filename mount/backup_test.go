package mount

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackupServersSeparators checks that backup-volfile-servers is read
// colon-separated (mount.glusterfs's form) and comma-separated (heketi's
// mount.glusterfs.options), and always written colon-separated.
func TestBackupServersSeparators(t *testing.T) {
	for _, v := range []string{"10.0.0.2:10.0.0.3", "10.0.0.2,10.0.0.3", "10.0.0.2, 10.0.0.3", "10.0.0.2,10.0.0.3:10.0.0.1"} {
		sv := testSubvol("/pvc-1")
		sv.Servers = []string{"10.0.0.1"}
		sv.MountOptions = map[string]string{"backup-volfile-servers": v}
		p, err := newPlan(sv, nil)
		require.NoError(t, err, v)
		assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, p.servers, v)
		got := fuseOptions(p, p.servers, "/l/x.log", "INFO", false)
		assert.Contains(t, got, "backup-volfile-servers=10.0.0.2:10.0.0.3", v)

		// The same from the caller's options.
		sv.MountOptions = nil
		p, err = newPlan(sv, &PublishOptions{MountOptions: []string{"backup-volfile-servers=" + v}})
		require.NoError(t, err, v)
		assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, p.servers, v)
	}
	// Commas stay refused everywhere else, and a bad server name in the list too.
	for _, o := range []string{"acl,ro", "backup-volfile-servers=a,b/c", "backup-volfile-servers=a, ,b c"} {
		_, err := newPlan(testSubvol("/x"), &PublishOptions{MountOptions: []string{o}})
		assert.Error(t, err, o)
	}
}
