package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 2 x (2 + 1 arbiter) volume, as `gluster --xml volume info` prints it.
const xmlVolInfoArbiter = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volInfo><volumes><volume><name>gv0</name><id>9e1d</id><status>1</status><statusStr>Started</statusStr>
<brickCount>6</brickCount><distCount>2</distCount><replicaCount>3</replicaCount><arbiterCount>1</arbiterCount><disperseCount>0</disperseCount><redundancyCount>0</redundancyCount><type>7</type><typeStr>Distributed-Replicate</typeStr>
<bricks><brick uuid="a">h1:/b/gv0<name>h1:/b/gv0</name><hostUuid>a</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="b">h2:/b/gv0<name>h2:/b/gv0</name><hostUuid>b</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="c">h3:/arb/gv0<name>h3:/arb/gv0</name><hostUuid>c</hostUuid><isArbiter>1</isArbiter></brick>
<brick uuid="a">h1:/b2/gv0<name>h1:/b2/gv0</name><hostUuid>a</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="b">h2:/b2/gv0<name>h2:/b2/gv0</name><hostUuid>b</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="c">[fe80::1]:/arb2/gv0<name>[fe80::1]:/arb2/gv0</name><hostUuid>c</hostUuid><isArbiter>1</isArbiter></brick></bricks>
<optCount>1</optCount><options><option><name>features.quota</name><value>on</value></option></options></volume><count>1</count></volumes></volInfo></cliOutput>`

func TestVolumeInfoLayout(t *testing.T) {
	out, err := parseCLIOutput([]byte(xmlVolInfoArbiter))
	require.NoError(t, err)
	got := out.VolInfo.Volumes.Volume[0].info()
	assert.Equal(t, &VolumeInfo{
		Name: "gv0", ID: "9e1d", Status: "Started", Type: "Distributed-Replicate",
		ReplicaCount: 3, ArbiterCount: 1,
		Bricks: []Brick{
			{Host: "h1", Path: "/b/gv0"}, {Host: "h2", Path: "/b/gv0"}, {Host: "h3", Path: "/arb/gv0", Arbiter: true},
			{Host: "h1", Path: "/b2/gv0"}, {Host: "h2", Path: "/b2/gv0"}, {Host: "[fe80::1]", Path: "/arb2/gv0", Arbiter: true},
		},
		Options: map[string]string{"features.quota": "on"},
	}, got)
}
