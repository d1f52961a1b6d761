package cli

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
)

// Answers captured from GlusterFS 10.3 (see gluster-facts §C).
const (
	xmlQuotaList = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>0</opRet>
  <opErrno>0</opErrno>
  <opErrstr/>
  <volQuota>
    <limit>
      <path>/x</path>
      <hard_limit>10485760</hard_limit>
      <soft_limit_percent>80%</soft_limit_percent>
      <soft_limit_value>8388608</soft_limit_value>
      <used_space>2097152</used_space>
      <avail_space>8388608</avail_space>
      <sl_exceeded>No</sl_exceeded>
      <hl_exceeded>No</hl_exceeded>
    </limit>
    <limit>
      <path>/c</path>
      <hard_limit>N/A</hard_limit>
      <used_space>0</used_space>
      <avail_space>N/A</avail_space>
      <sl_exceeded>N/A</sl_exceeded>
      <hl_exceeded>N/A</hl_exceeded>
    </limit>
  </volQuota>
</cliOutput>`
	xmlEmptyQuota = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volQuota/></cliOutput>`
	xmlBusy = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>-1</opRet><opErrno>30802</opErrno><opErrstr>Another transaction is in progress for gltvol. Please try again after some time.</opErrstr></cliOutput>`
	xmlNoPath = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>-2</opRet><opErrno>30800</opErrno><opErrstr>Failed to get trusted.gfid attribute on path /nonexist. Reason : No such file or directory</opErrstr></cliOutput>`
	xmlNoLimit = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>-1</opRet><opErrno>30800</opErrno><opErrstr>removexattr failed on /var/run/gluster/gltvol_quota_limit/b. Reason : No data available</opErrstr></cliOutput>`
	xmlNoVolume = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>-1</opRet><opErrno>30806</opErrno><opErrstr>Volume does not exist</opErrstr></cliOutput>`
	xmlVolInfo = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volInfo><volumes><volume><name>gltvol</name><id>3f2c</id><status>1</status><statusStr>Started</statusStr><typeStr>Replicate</typeStr>
<bricks><brick uuid="a">10.0.0.1:/b/gltvol<name>10.0.0.1:/b/gltvol</name><hostUuid>a</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="b">10.0.0.2:/b/gltvol<name>10.0.0.2:/b/gltvol</name><hostUuid>b</hostUuid><isArbiter>0</isArbiter></brick>
<brick uuid="c">10.0.0.1:/b2/gltvol<name>10.0.0.1:/b2/gltvol</name><hostUuid>a</hostUuid><isArbiter>0</isArbiter></brick></bricks>
<optCount>2</optCount><options><option><name>features.quota</name><value>on</value></option><option><name>features.hard-timeout</name><value>0</value></option></options></volume><count>1</count></volumes></volInfo></cliOutput>`
)

func TestParseQuotaList(t *testing.T) {
	out, err := parseCLIOutput([]byte(xmlQuotaList))
	require.NoError(t, err)
	require.NotNil(t, out.VolQuota)
	require.Len(t, out.VolQuota.Limits, 2)
	l, err := out.VolQuota.Limits[0].parse()
	require.NoError(t, err)
	assert.Equal(t, quotaLimit{Path: "/x", Hard: 10485760, Used: 2097152, Files: -1, Dirs: -1}, l)
	l, err = out.VolQuota.Limits[1].parse()
	require.NoError(t, err)
	assert.Equal(t, quotaLimit{Path: "/c", Hard: -1, Used: 0, Files: -1, Dirs: -1}, l)
}

func TestParseVolumeInfo(t *testing.T) {
	out, err := parseCLIOutput([]byte("warning: something\n" + xmlVolInfo))
	require.NoError(t, err)
	v := out.VolInfo.Volumes.Volume[0]
	assert.Equal(t, "Started", v.StatusStr)
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, v.brickHosts())
	q, ok := v.option("features.quota")
	assert.True(t, ok)
	assert.Equal(t, "on", q)
	_, ok = v.option("features.soft-timeout")
	assert.False(t, ok)
}

func TestParseErrors(t *testing.T) {
	_, err := parseCLIOutput([]byte("quota command failed : Volume x does not exist"))
	assert.ErrorIs(t, err, errNoXML)
	_, err = parseCLIOutput([]byte("<cliOutput><opRet>zero</opRet></cliOutput>"))
	assert.Error(t, err)
	l := quotaLimitXML{Path: "/a", HardLimit: "-5"}
	_, err = l.parse()
	assert.Error(t, err)
}

// scriptRunner answers CLI calls from a function and counts them.
type scriptRunner struct {
	mu    sync.Mutex
	calls [][]string
	fn    func(n int, args []string) (string, string, error)
}

func (r *scriptRunner) Run(ctx context.Context, args ...string) ([]byte, []byte, error) {
	r.mu.Lock()
	r.calls = append(r.calls, args)
	n := len(r.calls)
	r.mu.Unlock()
	out, errOut, err := r.fn(n, args)
	return []byte(out), []byte(errOut), err
}

func TestCallKinds(t *testing.T) {
	cases := []struct {
		answer string
		kind   subvolkit.Kind
	}{
		{xmlNoPath, subvolkit.NotFound},
		{xmlNoVolume, subvolkit.FailedPrecondition},
		{`<cliOutput><opRet>-1</opRet><opErrno>30800</opErrno><opErrstr>Quota is disabled, please enable quota</opErrstr></cliOutput>`, subvolkit.FailedPrecondition},
		{`<cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>something new</opErrstr></cliOutput>`, subvolkit.Unknown},
	}
	for _, c := range cases {
		g := &glusterCLI{runner: &scriptRunner{fn: func(int, []string) (string, string, error) { return c.answer, "", nil }}, volume: "v", retryMax: 1, minDelay: time.Millisecond}
		_, err := g.call(context.Background(), true, "volume", "quota", "v", "list", "/x")
		require.Error(t, err)
		assert.Equal(t, c.kind, subvolkit.KindOf(err), "%v", err)
		var ce *CLIError
		require.True(t, errors.As(err, &ce), "CLIError reachable with errors.As")
		assert.NotEmpty(t, ce.Message)
	}
}

func TestRemoveLimitWithoutLimitIsNotAnError(t *testing.T) {
	g := &glusterCLI{runner: &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlNoLimit, "", nil }}, volume: "v", retryMax: 1, minDelay: time.Millisecond}
	assert.NoError(t, g.removeLimit(context.Background(), "/b"))
}

func TestCLINotRunnable(t *testing.T) {
	g := &glusterCLI{runner: &ExecRunner{Path: "/nonexistent/gluster"}, volume: "v", retryMax: 1, minDelay: time.Millisecond}
	_, err := g.volumeInfo(context.Background())
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
}

func TestRetryOnBusyVolumeLock(t *testing.T) {
	r := &scriptRunner{fn: func(n int, _ []string) (string, string, error) {
		if n <= 3 {
			return xmlBusy, "", nil
		}
		return xmlEmptyQuota, "", nil
	}}
	g := &glusterCLI{runner: r, volume: "v", retryMax: 5, minDelay: time.Millisecond}
	_, err := g.call(context.Background(), true, "volume", "quota", "v", "limit-usage", "/a", "1024")
	require.NoError(t, err)
	assert.Len(t, r.calls, 4, "three busy answers, then success")
	assert.Equal(t, []string{"--mode=script", "--xml", "volume", "quota", "v", "limit-usage", "/a", "1024"}, r.calls[0])
}

// xmlAuxDown is glusterd's answer when its own quota aux mount is not
// connected (seen once in CI, on a remove; the text is glusterd's).
const xmlAuxDown = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>quota command failed : Failed to find the directory /var/run/gluster/v_quota_limit/a. Reason : Transport endpoint is not connected</opErrstr></cliOutput>`

func TestRetryOnAuxMountNotConnected(t *testing.T) {
	r := &scriptRunner{fn: func(n int, _ []string) (string, string, error) {
		if n == 1 {
			return xmlAuxDown, "", nil
		}
		return xmlEmptyQuota, "", nil
	}}
	g := &glusterCLI{runner: r, volume: "v", retryMax: 5, minDelay: time.Millisecond}
	require.NoError(t, g.removeLimit(context.Background(), "/a"))
	assert.Len(t, r.calls, 2, "one answer of a disconnected aux mount, then success")

	// Still not connected after every attempt: Unavailable, saying why.
	r = &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlAuxDown, "", nil }}
	g = &glusterCLI{runner: r, volume: "v", retryMax: 2, minDelay: time.Millisecond}
	err := g.limitUsage(context.Background(), "/a", 1<<30)
	require.Error(t, err)
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err), "%v", err)
	assert.Contains(t, err.Error(), "aux mount still not connected, giving up after 3 attempt(s)")
	assert.Len(t, r.calls, 3)

	// A directory that is truly missing is an answer, not retried.
	r = &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlNoPath, "", nil }}
	g = &glusterCLI{runner: r, volume: "v", retryMax: 5, minDelay: time.Millisecond}
	err = g.limitUsage(context.Background(), "/a", 1<<30)
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "%v", err)
	assert.Len(t, r.calls, 1)
}

func TestRetryGivesUp(t *testing.T) {
	r := &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlBusy, "", nil }}
	g := &glusterCLI{runner: r, volume: "v", retryMax: 3, minDelay: time.Millisecond}
	_, err := g.call(context.Background(), true, "volume", "quota", "v", "list")
	require.Error(t, err)
	assert.Equal(t, subvolkit.Unavailable, subvolkit.KindOf(err))
	assert.Contains(t, err.Error(), "giving up after 4 attempt(s)")
	assert.Len(t, r.calls, 4)
}

func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &scriptRunner{fn: func(n int, _ []string) (string, string, error) {
		if n == 2 {
			cancel()
		}
		return xmlBusy, "", nil
	}}
	g := &glusterCLI{runner: r, volume: "v", retryMax: 1000, minDelay: 5 * time.Millisecond}
	_, err := g.call(ctx, true, "volume", "quota", "v", "list")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, subvolkit.Canceled, subvolkit.KindOf(err))
	assert.LessOrEqual(t, len(r.calls), 3)
}

func TestQuotaCallsAreSerialized(t *testing.T) {
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	r := &scriptRunner{fn: func(int, []string) (string, string, error) {
		mu.Lock()
		inFlight++
		if inFlight > maxInFlight {
			maxInFlight = inFlight
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return xmlEmptyQuota, "", nil
	}}
	g := &glusterCLI{runner: r, volume: "v", retryMax: 1, minDelay: time.Millisecond}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.limitUsage(context.Background(), "/a", 1)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, maxInFlight)
}

func FuzzParseCLIOutput(f *testing.F) {
	for _, s := range []string{xmlQuotaList, xmlEmptyQuota, xmlBusy, xmlNoPath, xmlNoLimit, xmlNoVolume, xmlVolInfo, "", "<cliOutput>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := parseCLIOutput(data)
		if err != nil {
			return
		}
		if out.VolQuota != nil {
			for _, l := range out.VolQuota.Limits {
				q, err := l.parse()
				if err == nil && (q.Hard < -1 || q.Used < 0) {
					t.Fatalf("negative values accepted: %+v", q)
				}
			}
		}
		if out.VolInfo != nil {
			for _, v := range out.VolInfo.Volumes.Volume {
				for _, h := range v.brickHosts() {
					if h == "" || strings.Contains(h, ":/") {
						t.Fatalf("bad host %q", h)
					}
				}
			}
		}
	})
}

func TestReadLimitRetriesAMomentaryNotFound(t *testing.T) {
	r := &scriptRunner{fn: func(n int, _ []string) (string, string, error) {
		if n <= 2 {
			return xmlEmptyQuota, "", nil // glusterd's aux mount does not see the path yet
		}
		return xmlQuotaList, "", nil
	}}
	b := &Backend{g: &glusterCLI{runner: r, volume: "v", retryMax: 1, minDelay: time.Millisecond}}
	l, err := b.readLimit(context.Background(), "x")
	require.NoError(t, err)
	assert.Equal(t, int64(10485760), l.Hard)
	assert.Len(t, r.calls, 3)

	r = &scriptRunner{fn: func(int, []string) (string, string, error) { return xmlEmptyQuota, "", nil }}
	b = &Backend{g: &glusterCLI{runner: r, volume: "v", retryMax: 1, minDelay: time.Millisecond}}
	_, err = b.readLimit(context.Background(), "x")
	assert.Equal(t, subvolkit.NotFound, subvolkit.KindOf(err), "a path that stays missing is NotFound: %v", err)
	assert.Len(t, r.calls, 6, "bounded")
}

// Answers without XML (glusterd down, CLI errors) are classified too.
func TestNonXMLAnswerKinds(t *testing.T) {
	exit1 := exec.Command("false").Run()
	cases := []struct {
		stdout, stderr string
		kind           subvolkit.Kind
	}{
		{"Connection failed. Please check if gluster daemon is operational.\n", "", subvolkit.Unavailable},
		{"", "Connection failed. Please check if gluster daemon is operational.", subvolkit.Unavailable},
		{"", "Error : Request timed out", subvolkit.Unavailable},
		{"", "something new", subvolkit.Unknown},
	}
	for _, c := range cases {
		g := &glusterCLI{runner: &scriptRunner{fn: func(int, []string) (string, string, error) { return c.stdout, c.stderr, exit1 }}, volume: "v", retryMax: 1, minDelay: time.Millisecond}
		_, err := g.volumeInfo(context.Background())
		assert.Equal(t, c.kind, subvolkit.KindOf(err), "%q %q: %v", c.stdout, c.stderr, err)
	}
}
