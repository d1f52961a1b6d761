package heketifake_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit/internal/testutil/heketifake"
)

const (
	adminKey = "admin-secret"
	userKey  = "user-secret"
)

func start(t *testing.T, o *heketifake.Options) *heketifake.Server {
	t.Helper()
	s := heketifake.New(o)
	t.Cleanup(s.Close)
	return s
}

// newClient returns heketi's own client, polling every millisecond and
// without its 10–30 s 429 retry.
func newClient(s *heketifake.Server, user, key string) *client.Client {
	opts := client.DefaultClientOptions()
	opts.PollDelay = 1
	opts.RetryEnabled = false
	return client.NewClientWithOptions(s.URL(), user, key, opts)
}

func createReq(name string, size int) *api.VolumeCreateRequest {
	r := &api.VolumeCreateRequest{Size: size, Name: name}
	r.Durability.Type = api.DurabilityReplicate
	r.Durability.Replicate.Replica = 3
	return r
}

// token signs an HS256 heketi token the way the go-client does, with the
// claims given.
func token(t *testing.T, key string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func qsh(method, path string) string {
	s := sha256.Sum256([]byte(method + "&" + path))
	return hex.EncodeToString(s[:])
}

func do(t *testing.T, s *heketifake.Server, method, path, auth, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, strings.TrimSpace(string(b))
}

func TestRealClientLifecycle(t *testing.T) {
	s := start(t, &heketifake.Options{AdminKey: adminKey, UserKey: userKey, PendingPolls: 2})
	c := newClient(s, "admin", adminKey)

	require.NoError(t, c.Hello())
	vol, err := c.VolumeCreate(createReq("pv1", 2))
	require.NoError(t, err)
	assert.Len(t, vol.Id, 32)
	assert.Equal(t, "pv1", vol.Name)
	assert.Equal(t, 2, vol.Size)
	assert.Equal(t, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, vol.Mount.GlusterFS.Hosts)
	assert.Equal(t, "192.0.2.1:pv1", vol.Mount.GlusterFS.MountPoint)
	assert.Equal(t, "192.0.2.2,192.0.2.3", vol.Mount.GlusterFS.Options["backup-volfile-servers"])
	assert.Len(t, vol.Bricks, 3)
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeCreate))
	assert.Equal(t, 3, s.Count(heketifake.RouteQueue), "2 pending polls and the result")
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeInfo), "the 303 is followed")

	list, err := c.VolumeList()
	require.NoError(t, err)
	assert.Equal(t, []string{vol.Id}, list.Volumes)

	info, err := c.VolumeInfo(vol.Id)
	require.NoError(t, err)
	assert.Equal(t, vol.Name, info.Name)

	exp, err := c.VolumeExpand(vol.Id, &api.VolumeExpandRequest{Size: 3})
	require.NoError(t, err)
	assert.Equal(t, 5, exp.Size, "expand_size is added")

	cl, err := c.VolumeClone(vol.Id, &api.VolumeCloneRequest{Name: "pv1copy"})
	require.NoError(t, err)
	assert.Equal(t, 5, cl.Size, "a clone keeps the source's size")
	assert.Equal(t, "192.0.2.1:pv1copy", cl.Mount.GlusterFS.MountPoint)
	assert.NotEqual(t, vol.Id, cl.Id)

	clusters, err := c.ClusterList()
	require.NoError(t, err)
	require.Equal(t, s.ClusterIDs(), clusters.Clusters)
	ci, err := c.ClusterInfo(clusters.Clusters[0])
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{vol.Id, cl.Id}, []string(ci.Volumes))
	require.Len(t, ci.Nodes, 3)
	var hosts []string
	for _, n := range ci.Nodes {
		ni, err := c.NodeInfo(n)
		require.NoError(t, err)
		hosts = append(hosts, ni.Hostnames.Storage...)
	}
	assert.Equal(t, vol.Mount.GlusterFS.Hosts, hosts, "mount hosts follow the cluster's node order")

	require.NoError(t, c.VolumeDelete(vol.Id))
	_, err = c.VolumeInfo(vol.Id)
	require.EqualError(t, err, "Id not found")
	err = c.VolumeDelete(vol.Id)
	require.EqualError(t, err, "Id not found")
	got := s.Volumes()
	require.Len(t, got, 1)
	assert.Equal(t, "pv1copy", got[0].Name)
	assert.Equal(t, 0, s.InFlight())
}

func TestValidationMessages(t *testing.T) {
	s := start(t, nil)
	c := newClient(s, "admin", "")
	bad := func(mut func(r *api.VolumeCreateRequest)) *api.VolumeCreateRequest {
		r := createReq("v", 1)
		mut(r)
		return r
	}
	cases := []struct {
		req  *api.VolumeCreateRequest
		want string
	}{
		{bad(func(r *api.VolumeCreateRequest) { r.Size = 0 }), "validation failed: size: cannot be blank."},
		{bad(func(r *api.VolumeCreateRequest) { r.Size = -1 }), "validation failed: size: must be no less than 1."},
		{bad(func(r *api.VolumeCreateRequest) { r.Name = "a.b" }), "validation failed: name: must be in a valid format."},
		{bad(func(r *api.VolumeCreateRequest) { r.Durability.Type = "mirror" }), "Unknown durability type"},
		{bad(func(r *api.VolumeCreateRequest) { r.Durability.Replicate.Replica = 4 }), "Invalid replica value"},
		{bad(func(r *api.VolumeCreateRequest) {
			r.Durability.Type = api.DurabilityEC
			r.Durability.Disperse = api.DisperseDurability{Data: 3, Redundancy: 1}
		}), "Invalid dispersion combination: 3+1"},
		{bad(func(r *api.VolumeCreateRequest) {
			r.Durability.Type = api.DurabilityEC
			r.Durability.Disperse = api.DisperseDurability{Data: 4, Redundancy: 2}
		}), "Requested volume size (1 GB) is smaller than the minimum supported volume size (4194304)"},
		{bad(func(r *api.VolumeCreateRequest) { r.Snapshot.Enable = true; r.Snapshot.Factor = 0.5 }), "Invalid snapshot factor"},
		{bad(func(r *api.VolumeCreateRequest) { r.Gid = -1 }), "Bad group id less than zero"},
		{bad(func(r *api.VolumeCreateRequest) { r.Clusters = []string{"0123456789abcdef0123456789abcdef"} }),
			"Cluster id 0123456789abcdef0123456789abcdef not found"},
	}
	for _, tc := range cases {
		_, err := c.VolumeCreate(tc.req)
		assert.EqualError(t, err, tc.want)
	}
	assert.Empty(t, s.Volumes())

	code, _, body := do(t, s, "POST", "/volumes", "", "{not json")
	assert.Equal(t, 422, code)
	assert.Equal(t, "request unable to be parsed", body)
	code, _, body = do(t, s, "GET", "/volumes/not-hex", "", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "Invalid path or request", body)

	vol, err := c.VolumeCreate(createReq("v", 1))
	require.NoError(t, err)
	_, err = c.VolumeExpand(vol.Id, &api.VolumeExpandRequest{Size: 0})
	assert.EqualError(t, err, "validation failed: expand_size: cannot be blank.")
	_, err = c.VolumeExpand("0123456789abcdef0123456789abcdef", &api.VolumeExpandRequest{Size: 1})
	assert.EqualError(t, err, "Id not found")
	_, err = c.VolumeClone(vol.Id, &api.VolumeCloneRequest{Name: "no spaces"})
	assert.EqualError(t, err, "validation failed: name: must be in a valid format.")
}

func TestDefaults(t *testing.T) {
	s := start(t, nil)
	c := newClient(s, "admin", "")
	r := &api.VolumeCreateRequest{Size: 1}
	r.Durability.Type = api.DurabilityReplicate
	vol, err := c.VolumeCreate(r)
	require.NoError(t, err)
	assert.Equal(t, "vol_"+vol.Id, vol.Name, "heketi's default name")
	assert.Equal(t, 2, vol.Durability.Replicate.Replica, "heketi's default replica")
	assert.Equal(t, float32(1), vol.Snapshot.Factor)

	none, err := c.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: "plain"})
	require.NoError(t, err)
	assert.Equal(t, api.DurabilityDistributeOnly, none.Durability.Type)
	assert.Len(t, none.Bricks, 1)
}

func TestDuplicateNames(t *testing.T) {
	s := start(t, &heketifake.Options{Clusters: []heketifake.Cluster{
		{ID: "aa000000000000000000000000000000", Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{ID: "bb000000000000000000000000000000", Hosts: []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"}},
	}})
	c := newClient(s, "admin", "")
	a := createReq("dup", 1)
	a.Clusters = []string{"aa000000000000000000000000000000"}
	first, err := c.VolumeCreate(a)
	require.NoError(t, err)

	// Same cluster: heketi refuses, synchronously, with a 500.
	_, err = c.VolumeCreate(a)
	require.EqualError(t, err, "Failed to allocate new volume: Volume name 'dup' already in use")

	// Any cluster: heketi places it where the name is free.
	second, err := c.VolumeCreate(createReq("dup", 1))
	require.NoError(t, err)
	assert.Equal(t, "bb000000000000000000000000000000", second.Cluster)
	assert.NotEqual(t, first.Id, second.Id)

	// Both clusters taken.
	_, err = c.VolumeCreate(createReq("dup", 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "No eligible cluster for volume")

	// Clones are not checked at all.
	_, err = c.VolumeClone(first.Id, &api.VolumeCloneRequest{Name: "dup"})
	require.NoError(t, err)
	n := 0
	for _, v := range s.Volumes() {
		if v.Name == "dup" {
			n++
		}
	}
	assert.Equal(t, 3, n)
}

func TestCapacity(t *testing.T) {
	s := start(t, &heketifake.Options{Clusters: []heketifake.Cluster{{Hosts: []string{"h1", "h2", "h3"}, CapacityGiB: 10}}})
	c := newClient(s, "admin", "")
	_, err := c.VolumeCreate(createReq("big", 11))
	require.EqualError(t, err, "Failed to allocate new volume: No space")
	v, err := c.VolumeCreate(createReq("fits", 10))
	require.NoError(t, err)
	// heketi's allocator splits an expansion that does not fit until the
	// bricks are too small or too many, and says which.
	_, err = c.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 1})
	require.EqualError(t, err, "Failed to allocate volume expansion: Minimum brick size limit reached.  Out of space.")
	_, err = c.VolumeExpand(v.Id, &api.VolumeExpandRequest{Size: 100000})
	require.EqualError(t, err, "Failed to allocate volume expansion: Maximum number of bricks reached.")
	_, err = c.VolumeClone(v.Id, &api.VolumeCloneRequest{Name: "thin"})
	require.NoError(t, err, "clones are thin")
}

func TestAuth(t *testing.T) {
	s := start(t, &heketifake.Options{AdminKey: adminKey, UserKey: userKey})

	// /hello needs no token.
	code, _, body := do(t, s, "GET", "/hello", "", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "Hello from Heketi", body)

	_, err := newClient(s, "admin", "wrong").VolumeList()
	assert.EqualError(t, err, "Invalid JWT token: signature is invalid (client and server secrets may not match)")
	_, err = newClient(s, "bob", adminKey).VolumeList()
	assert.EqualError(t, err, "Invalid JWT token: Unknown user")
	_, err = newClient(s, "", adminKey).VolumeList()
	assert.EqualError(t, err, "Invalid JWT token: Token missing iss claim")

	// The user key may use /volumes only: it can start a create but not
	// poll it.
	u := newClient(s, "user", userKey)
	_, err = u.VolumeList()
	require.NoError(t, err)
	_, err = u.VolumeCreate(createReq("byuser", 1))
	assert.EqualError(t, err, "Administrator access required")
	_, err = u.ClusterList()
	assert.EqualError(t, err, "Administrator access required")
	assert.Equal(t, 1, s.Count(heketifake.RouteQueue))

	now := time.Now().Unix()
	good := map[string]any{"iss": "admin", "iat": now, "exp": now + 300, "qsh": qsh("GET", "/volumes")}
	code, _, _ = do(t, s, "GET", "/volumes", "bearer "+token(t, adminKey, good), "")
	assert.Equal(t, 200, code)
	code, _, _ = do(t, s, "GET", "/volumes?x=1", "Bearer "+token(t, adminKey, good), "")
	assert.Equal(t, 200, code, "the query string is not part of qsh")

	code, _, body = do(t, s, "GET", "/volumes", "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Required authorization token not found", body)
	code, _, body = do(t, s, "GET", "/volumes", "token abc", "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Authorization header format must be Bearer {token}", body)
	code, _, body = do(t, s, "GET", "/volumes", "bearer abc", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Invalid JWT token: token contains an invalid number of segments", body)

	bad := map[string]any{"iss": "admin", "iat": now, "exp": now + 300, "qsh": qsh("DELETE", "/volumes")}
	code, _, body = do(t, s, "GET", "/volumes", "bearer "+token(t, adminKey, bad), "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Invalid qsh claim in token", body)

	expired := map[string]any{"iss": "admin", "iat": now - 400, "exp": now - 100, "qsh": qsh("GET", "/volumes")}
	code, _, body = do(t, s, "GET", "/volumes", "bearer "+token(t, adminKey, expired), "")
	assert.Equal(t, 401, code)
	assert.Contains(t, body, "Invalid JWT token: Token is expired by 1m4")

	future := map[string]any{"iss": "admin", "iat": now + 600, "exp": now + 900, "qsh": qsh("GET", "/volumes")}
	code, _, body = do(t, s, "GET", "/volumes", "bearer "+token(t, adminKey, future), "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Invalid JWT token: Token used before issued (client and server clocks may differ)", body)

	noexp := map[string]any{"iss": "admin", "iat": now, "qsh": qsh("GET", "/volumes")}
	code, _, body = do(t, s, "GET", "/volumes", "bearer "+token(t, adminKey, noexp), "")
	assert.Equal(t, 401, code)
	assert.Contains(t, body, "Token is expired by")

	reqs := s.Requests()
	assert.Equal(t, "user", reqs[4].Issuer, "the log keeps the issuer")
}

func TestAsyncProtocol(t *testing.T) {
	s := start(t, &heketifake.Options{PendingPolls: 1})
	code, hdr, _ := do(t, s, "POST", "/volumes", "", `{"size":1,"name":"raw"}`)
	require.Equal(t, 202, code)
	loc := hdr.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/queue/"), loc)
	require.Len(t, strings.TrimPrefix(loc, "/queue/"), 32)

	// A volume being created is neither listed nor readable.
	assert.Empty(t, s.Volumes())
	code, hdr, _ = do(t, s, "GET", loc, "", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "true", hdr.Get("X-Pending"))
	code, hdr, _ = do(t, s, "GET", loc, "", "")
	assert.Equal(t, 303, code)
	assert.Regexp(t, "^/volumes/[0-9a-f]{32}$", hdr.Get("Location"))
	code, _, body := do(t, s, "GET", loc, "", "")
	assert.Equal(t, 404, code, "a finished entry is answered once")
	assert.Equal(t, "Id not found", body)

	// A pending volume cannot be deleted.
	v := s.Volumes()[0]
	code, hdr, _ = do(t, s, "POST", "/volumes/"+v.Id+"/clone", "", `{}`)
	require.Equal(t, 202, code)
	code, _, _ = do(t, s, "GET", "/volumes/"+v.Id, "", "")
	assert.Equal(t, 404, code, "a clone's source is hidden while the clone runs")
	code, _, body = do(t, s, "DELETE", "/volumes/"+v.Id, "", "")
	assert.Equal(t, 500, code)
	assert.Equal(t, "Failed to set up volume delete: The target exists, contains other items, or is in use.", body)
	do(t, s, "GET", hdr.Get("Location"), "", "")
	code, _, _ = do(t, s, "GET", hdr.Get("Location"), "", "")
	assert.Equal(t, 303, code)
	code, _, _ = do(t, s, "GET", "/volumes/"+v.Id, "", "")
	assert.Equal(t, 200, code)
}

func TestJobDuration(t *testing.T) {
	s := start(t, &heketifake.Options{PendingPolls: 1000, JobDuration: 20 * time.Millisecond})
	code, _, _ := do(t, s, "POST", "/volumes", "", `{"size":1,"name":"timed"}`)
	require.Equal(t, 202, code)
	require.Eventually(t, func() bool { return len(s.Volumes()) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, 0, s.InFlight())
}

func TestFaults(t *testing.T) {
	s := start(t, &heketifake.Options{MaxInFlight: 1, PendingPolls: 1000})
	c := newClient(s, "admin", "")

	// One job running fills MaxInFlight: the next operation is 429.
	code, _, _ := do(t, s, "POST", "/volumes", "", `{"size":1,"name":"slow"}`)
	require.Equal(t, 202, code)
	assert.Equal(t, 1, s.InFlight())
	_, err := c.VolumeCreate(createReq("other", 1))
	require.EqualError(t, err, "Server busy. Retry operation later.")
	// Validation still comes first.
	_, err = c.VolumeCreate(createReq("other", 0))
	require.EqualError(t, err, "validation failed: size: cannot be blank.")
	assert.Equal(t, 1, s.InFlight())

	s2 := start(t, &heketifake.Options{})
	c2 := newClient(s2, "admin", "")
	s2.Busy(2)
	_, err = c2.VolumeCreate(createReq("b", 1))
	require.EqualError(t, err, "Server busy. Retry operation later.")
	_, err = c2.VolumeCreate(createReq("b", 1))
	require.EqualError(t, err, "Server busy. Retry operation later.")
	_, err = c2.VolumeCreate(createReq("b", 1))
	require.NoError(t, err)
	assert.Equal(t, 3, s2.Count(heketifake.RouteVolumeCreate))

	s2.FailNextJob("Unable to execute command on 192.0.2.1: volume create: b2: failed")
	_, err = c2.VolumeCreate(createReq("b2", 1))
	require.EqualError(t, err, "Unable to execute command on 192.0.2.1: volume create: b2: failed")
	assert.Len(t, s2.Volumes(), 1, "a failed job changes nothing")
	assert.Equal(t, 0, s2.InFlight())

	s2.DropConnections(1)
	_, err = c2.VolumeCreate(createReq("b3", 1))
	require.Error(t, err, "a dropped POST is not resent")
	assert.Len(t, s2.Volumes(), 1)
	reqs := s2.Requests()
	assert.Equal(t, 0, reqs[len(reqs)-1].Status)

	var reqBody struct {
		Size int `json:"expand_size"`
	}
	vol := s2.Volumes()[0]
	_, err = c2.VolumeExpand(vol.Id, &api.VolumeExpandRequest{Size: 4})
	require.NoError(t, err)
	for _, r := range s2.Requests() {
		if r.Route == heketifake.RouteVolumeExpand {
			require.NoError(t, json.Unmarshal(r.Body, &reqBody))
		}
	}
	assert.Equal(t, 4, reqBody.Size)
}

func TestSlowEndsWithClient(t *testing.T) {
	s := start(t, nil)
	s.Slow(10 * time.Second)
	req, err := http.NewRequest("GET", s.URL()+"/hello", nil)
	require.NoError(t, err)
	hc := &http.Client{Timeout: 50 * time.Millisecond}
	t0 := time.Now()
	_, err = hc.Do(req)
	require.Error(t, err)
	assert.Less(t, time.Since(t0), 5*time.Second)
	// Close must not wait out the delay either (checked by Cleanup's Close).
}

func TestConcurrentSameName(t *testing.T) {
	s := start(t, &heketifake.Options{MaxInFlight: -1})
	c := newClient(s, "admin", "")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.VolumeCreate(createReq("same", 1))
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			assert.EqualError(t, err, "Failed to allocate new volume: Volume name 'same' already in use")
		}
	}
	assert.Equal(t, 1, ok)
	assert.Len(t, s.Volumes(), 1)
}

func TestTLS(t *testing.T) {
	s := start(t, &heketifake.Options{TLS: true})
	require.NotEmpty(t, s.CertificatePEM())
	c := newClient(s, "admin", "")
	require.Error(t, c.Hello(), "self-signed certificate is not trusted by default")
	require.NoError(t, c.SetTLSOptions(&client.ClientTLSOptions{InsecureSkipVerify: true}))
	require.NoError(t, c.Hello())
}

func TestSetPendingPolls(t *testing.T) {
	s := start(t, &heketifake.Options{PendingPolls: 0})
	code, hdr, _ := do(t, s, "POST", "/volumes", "", `{"size":1,"name":"a"}`)
	require.Equal(t, 202, code)
	s.SetPendingPolls(2)
	code, hdr2, _ := do(t, s, "POST", "/volumes", "", `{"size":1,"name":"b"}`)
	require.Equal(t, 202, code)
	code, _, _ = do(t, s, "GET", hdr.Get("Location"), "", "")
	assert.Equal(t, 303, code, "a job keeps the count it started with")
	for range 2 {
		code, h, _ := do(t, s, "GET", hdr2.Get("Location"), "", "")
		assert.Equal(t, 200, code)
		assert.Equal(t, "true", h.Get("X-Pending"))
	}
	code, _, _ = do(t, s, "GET", hdr2.Get("Location"), "", "")
	assert.Equal(t, 303, code)
}
