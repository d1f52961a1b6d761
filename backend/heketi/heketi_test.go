package heketi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/subvolkit/subvolkit/internal/testutil/heketifake"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

const (
	adminKey = "admin-secret"
	userKey  = "user-secret"
	capGiB   = 100
)

// fake starts a fake heketi with authentication, two pending polls per job
// and a capacity of capGiB, unless o says otherwise.
func fake(t *testing.T, o *heketifake.Options) *heketifake.Server {
	t.Helper()
	if o == nil {
		o = &heketifake.Options{PendingPolls: 2}
	}
	if o.AdminKey == "" {
		o.AdminKey, o.UserKey = adminKey, userKey
	}
	if o.Clusters == nil {
		o.Clusters = []heketifake.Cluster{{Hosts: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, CapacityGiB: capGiB}}
	}
	s := heketifake.New(o)
	t.Cleanup(s.Close)
	return s
}

// options are backend options for s: fast polls and retries.
func options(s *heketifake.Server) *heketi.Options {
	return &heketi.Options{
		URL: s.URL(), User: "admin", Key: adminKey,
		PollInterval: time.Millisecond, RetryMinDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
	}
}

func open(t *testing.T, o *heketi.Options) *heketi.Backend {
	t.Helper()
	b, err := heketi.Open(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func create(t *testing.T, b *heketi.Backend, name string, size int64) *backend.Subvol {
	t.Helper()
	sv, err := b.Create(t.Context(), &backend.CreateRequest{Name: name, SizeBytes: size})
	require.NoError(t, err, "Create(%q)", name)
	return sv
}

// requireKind checks err's kind, and that the backend left naming the
// subvolume (name) to the Pool: errors are wrapped once.
func requireKind(t *testing.T, err error, kind subvolkit.Kind, name string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, kind, subvolkit.KindOf(err), "kind of %v", err)
	var se *subvolkit.Error
	if errors.As(err, &se) && name != "" {
		require.Empty(t, se.Name, "the backend names the subvolume %q: %v", name, err)
		require.Equal(t, 1, strings.Count(err.Error(), "subvolkit:"), err.Error())
	}
}

// bodies returns the bodies the fake received on route.
func bodies(s *heketifake.Server, route string) [][]byte {
	var out [][]byte
	for _, r := range s.Requests() {
		if r.Route == route {
			out = append(out, r.Body)
		}
	}
	return out
}

// waitFor polls cond for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, what)
}

type harness struct{ srv *heketifake.Server }

func (h *harness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	return heketi.Open(ctx, options(h.srv))
}

func (h *harness) Options() backendtest.Options {
	return backendtest.Options{
		SizeUnit: quota.GiB, MaxSizeBytes: capGiB * quota.GiB,
		Capabilities: backendtest.Resize | backendtest.Clone | backendtest.Ping,
		AsTypes:      []any{new(*client.Client)},
	}
}

func (h *harness) Close() { h.srv.Close() }

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &harness{srv: fake(t, nil)}, nil
	})
}

func TestSubvolFromVolume(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	sv := create(t, b, "pv1", 1536*quota.MiB)
	vols := s.Volumes()
	require.Len(t, vols, 1)
	v := vols[0]
	assert.Equal(t, 2, v.Size, "1.5 GiB is rounded up to 2 GiB")
	assert.Equal(t, &backend.Subvol{
		Name: "pv1", ID: v.Id, SizeBytes: 2 * quota.GiB,
		Servers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"},
		Volume:  "pv1", Path: "",
		MountOptions: map[string]string{"backup-volfile-servers": "192.0.2.2,192.0.2.3"},
		UID:          0, GID: 0,
	}, sv)
	var req api.VolumeCreateRequest
	require.NoError(t, json.Unmarshal(bodies(s, heketifake.RouteVolumeCreate)[0], &req))
	assert.Equal(t, api.DurabilityReplicate, req.Durability.Type)
	assert.Equal(t, 3, req.Durability.Replicate.Replica, "replicate:3 by default")
	assert.False(t, req.Snapshot.Enable)

	got, err := b.Get(t.Context(), "pv1")
	require.NoError(t, err)
	assert.Equal(t, sv, got)
}

func TestPollsPendingJobs(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 3})
	b := open(t, options(s))
	create(t, b, "pv1", quota.GiB)
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeCreate))
	assert.Equal(t, 4, s.Count(heketifake.RouteQueue), "three X-Pending answers, then the 303")
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeInfo), "the 303 is followed to the volume")
	for _, r := range s.Requests() {
		if r.Route == heketifake.RouteQueue {
			assert.Equal(t, "admin", r.Issuer, "every poll is signed")
		}
	}
	require.NoError(t, b.Delete(t.Context(), "pv1", nil))
	assert.Equal(t, 8, s.Count(heketifake.RouteQueue))
	assert.Empty(t, s.Volumes())
}

func TestCancelDuringSlowPoll(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 1 << 20})
	o := options(s)
	o.PollInterval = 5 * time.Millisecond
	b := open(t, o)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Create(ctx, &backend.CreateRequest{Name: "slow", SizeBytes: quota.GiB})
		errc <- err
	}()
	waitFor(t, "the job is being polled", func() bool { return s.Count(heketifake.RouteQueue) >= 2 })
	s.Slow(10 * time.Second)
	n := s.Count(heketifake.RouteQueue)
	waitFor(t, "a slow poll is in flight", func() bool { return s.Count(heketifake.RouteQueue) > n })
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("Create did not return within 5 s of the cancellation")
	}
	assert.Less(t, time.Since(start), 2*time.Second, "cancellation must abort the in-flight poll")
	requireKind(t, err, subvolkit.Canceled, "slow")
	assert.ErrorIs(t, err, context.Canceled)
	s.Slow(0)
}

func TestInterruptedCreateIsSettled(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 30})
	o := options(s)
	o.PollInterval = 5 * time.Millisecond
	b := open(t, o)
	p := subvol.NewPool(b, nil)

	// Interrupt a create while its job is pending.
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Create(ctx, &backend.CreateRequest{Name: "cut", SizeBytes: quota.GiB})
		errc <- err
	}()
	waitFor(t, "the job is being polled", func() bool { return s.Count(heketifake.RouteQueue) >= 1 })
	cancel()
	requireKind(t, <-errc, subvolkit.Canceled, "cut")
	require.Empty(t, s.Volumes(), "the job is still pending in the server")
	assert.Equal(t, 1, s.InFlight())

	// A retried Allocate waits for the job and returns its volume.
	sv, err := p.Allocate(t.Context(), "cut", quota.GiB, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(quota.GiB), sv.SizeBytes)
	require.Len(t, s.Volumes(), 1)
	assert.Equal(t, s.Volumes()[0].Id, sv.ID)
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeCreate), "nothing was created twice")

	// Same for a Delete after an interrupted create.
	ctx, cancel = context.WithCancel(t.Context())
	go func() {
		_, err := b.Create(ctx, &backend.CreateRequest{Name: "cut2", SizeBytes: quota.GiB})
		errc <- err
	}()
	n := s.Count(heketifake.RouteQueue)
	waitFor(t, "the second job is being polled", func() bool { return s.Count(heketifake.RouteQueue) > n })
	cancel()
	requireKind(t, <-errc, subvolkit.Canceled, "cut2")
	require.NoError(t, p.Delete(t.Context(), "cut2", nil))
	require.Len(t, s.Volumes(), 1)
	assert.Equal(t, "cut", s.Volumes()[0].Name)
	assert.Equal(t, 0, s.InFlight())
}

func TestBusyIsRetried(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	s.Busy(3)
	sv := create(t, b, "pv1", quota.GiB)
	assert.Equal(t, 4, s.Count(heketifake.RouteVolumeCreate), "three 429s, then the create")
	assert.Equal(t, int64(quota.GiB), sv.SizeBytes)
	assert.Len(t, s.Volumes(), 1)
}

func TestBusyForever(t *testing.T) {
	s := fake(t, nil)
	o := options(s)
	o.RetryMaxAttempts = 2
	b := open(t, o)
	s.Busy(1000)
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "pv1", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.Unavailable, "pv1")
	assert.Contains(t, err.Error(), "Server busy. Retry operation later.")
	assert.Contains(t, err.Error(), "after 3 attempts")
	var herr *heketi.HTTPError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, http.StatusTooManyRequests, herr.StatusCode)
	assert.Equal(t, 3, s.Count(heketifake.RouteVolumeCreate))
	assert.Empty(t, s.Volumes())

	// A busy server does not hold up a cancellation.
	o.RetryMinDelay, o.RetryMaxDelay = 10*time.Second, 10*time.Second
	slow := open(t, o)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = slow.Create(ctx, &backend.CreateRequest{Name: "pv1", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.DeadlineExceeded, "pv1")
	assert.Less(t, time.Since(start), 2*time.Second)

	o.RetryMaxAttempts = -1
	never := open(t, o)
	n := s.Count(heketifake.RouteVolumeCreate)
	_, err = never.Create(t.Context(), &backend.CreateRequest{Name: "pv1", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.Unavailable, "pv1")
	assert.Equal(t, n+1, s.Count(heketifake.RouteVolumeCreate), "RetryMaxAttempts < 0 never retries")
}

func TestAuthErrors(t *testing.T) {
	s := fake(t, nil)
	o := options(s)
	o.Key = "wrong"
	b := open(t, o)
	err := b.Ping(t.Context())
	requireKind(t, err, subvolkit.PermissionDenied, "")
	assert.Contains(t, err.Error(), "client and server secrets may not match")
	_, err = b.Get(t.Context(), "pv1")
	requireKind(t, err, subvolkit.PermissionDenied, "pv1")
	var herr *heketi.HTTPError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, http.StatusUnauthorized, herr.StatusCode)

	// The "user" issuer may list and start a create but not poll it (real
	// heketi then keeps the volume: it would leak), so Open refuses it
	// before anything is sent.
	o = options(s)
	o.User, o.Key = "user", userKey
	before := len(s.Requests())
	_, err = heketi.Open(t.Context(), o)
	requireKind(t, err, subvolkit.PermissionDenied, "")
	assert.Contains(t, err.Error(), `heketi user "user" cannot administer volumes`)
	assert.Len(t, s.Requests(), before, "Open sends nothing")
	assert.Empty(t, s.Volumes())

	// A key without a user signs as admin.
	o = options(s)
	o.User = ""
	require.NoError(t, open(t, o).Ping(t.Context()))
}

func TestDroppedConnection(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	create(t, b, "pv1", quota.GiB)
	s.DropConnections(1000)
	_, err := b.Get(t.Context(), "pv1")
	requireKind(t, err, subvolkit.Unavailable, "pv1")
	err = b.Delete(t.Context(), "pv1", nil)
	requireKind(t, err, subvolkit.Unavailable, "pv1")
	s.DropConnections(0)
	_, err = b.Get(t.Context(), "pv1")
	require.NoError(t, err, "nothing was deleted")
}

func TestServerDown(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	s.Close()
	err := b.Ping(t.Context())
	requireKind(t, err, subvolkit.Unavailable, "")
	_, err = b.Get(t.Context(), "pv1")
	requireKind(t, err, subvolkit.Unavailable, "pv1")
}

func TestFailedJob(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	const msg = "Unable to execute command on 192.0.2.1: volume create: pv1: failed: Brick may be containing or be contained by an existing brick"
	s.FailNextJob(msg)
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "pv1", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.Unavailable, "pv1")
	assert.Contains(t, err.Error(), msg)
	var herr *heketi.HTTPError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, http.StatusInternalServerError, herr.StatusCode)
	assert.Equal(t, msg, herr.Message)
	assert.Empty(t, s.Volumes())
	// And the name is free: the job left nothing.
	create(t, b, "pv1", quota.GiB)
}

func TestValidationErrors(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	for _, tc := range []struct {
		req  backend.CreateRequest
		kind subvolkit.Kind
		msg  string
	}{
		{backend.CreateRequest{Name: "-bad", SizeBytes: quota.GiB}, subvolkit.InvalidArgument, "must start with a letter"},
		{backend.CreateRequest{Name: "ok", SizeBytes: 0}, subvolkit.InvalidArgument, "not positive"},
		{backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB, Parameters: map[string]string{"resturl": "http://x"}},
			subvolkit.InvalidArgument, "only when the backend is opened"},
		{backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB, Parameters: map[string]string{"volumetype": "replicate:9"}},
			subvolkit.InvalidArgument, "at most 3"},
		{backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB, Parameters: map[string]string{"clusterid": "0123456789abcdef0123456789abcdef"}},
			subvolkit.InvalidArgument, "Cluster id 0123456789abcdef0123456789abcdef not found"},
		{backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB, Parameters: map[string]string{"volumetype": "disperse:4:2"}},
			subvolkit.InvalidArgument, "smaller than the minimum supported volume size"},
		{backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB, Owner: &backend.Ownership{UID: 1000, GID: -1}},
			subvolkit.InvalidArgument, "uid 1000"},
		{backend.CreateRequest{Name: "ok", SizeBytes: (capGiB + 1) * quota.GiB}, subvolkit.QuotaExceeded, "No space"},
	} {
		_, err := b.Create(t.Context(), &tc.req)
		requireKind(t, err, tc.kind, tc.req.Name)
		assert.Contains(t, err.Error(), tc.msg)
	}
	assert.Empty(t, s.Volumes())
	var herr *heketi.HTTPError
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "ok", SizeBytes: quota.GiB,
		Parameters: map[string]string{"volumetype": "disperse:4:2"}})
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, http.StatusBadRequest, herr.StatusCode)
}

func TestPerVolumeParameters(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 1, Clusters: []heketifake.Cluster{
		{ID: "aa000000000000000000000000000000", Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
	}})
	o := options(s)
	o.Gid, o.SnapshotFactor, o.VolumeOptions = 1000, 1.2, []string{"performance.cache-size 64MB"}
	b := open(t, o)
	sv, err := b.Create(t.Context(), &backend.CreateRequest{Name: "ec", SizeBytes: 4 * quota.GiB, Parameters: map[string]string{
		"volumetype": "disperse:4:2", "gid": "2000", "snapfactor": "2", "volumeoptions": "features.read-only off",
		"clusterid": "aa000000000000000000000000000000",
	}})
	require.NoError(t, err)
	var req api.VolumeCreateRequest
	require.NoError(t, json.Unmarshal(bodies(s, heketifake.RouteVolumeCreate)[0], &req))
	assert.Equal(t, api.DurabilityEC, req.Durability.Type)
	assert.Equal(t, api.DisperseDurability{Data: 4, Redundancy: 2}, req.Durability.Disperse)
	assert.Equal(t, int64(2000), req.Gid)
	assert.True(t, req.Snapshot.Enable)
	assert.Equal(t, float32(2), req.Snapshot.Factor)
	assert.Equal(t, []string{"features.read-only off"}, req.GlusterVolumeOptions)
	assert.Equal(t, []string{"aa000000000000000000000000000000"}, req.Clusters)
	assert.Equal(t, 2000, sv.GID)
	assert.Equal(t, uint32(0o2775), sv.Mode)

	// The backend's defaults, and an Ownership's gid.
	_, err = b.Create(t.Context(), &backend.CreateRequest{Name: "defaults", SizeBytes: quota.GiB,
		Owner: &backend.Ownership{UID: -1, GID: 3000, Mode: 0o2775}})
	require.NoError(t, err)
	req = api.VolumeCreateRequest{}
	require.NoError(t, json.Unmarshal(bodies(s, heketifake.RouteVolumeCreate)[1], &req))
	assert.Equal(t, int64(3000), req.Gid)
	assert.Equal(t, float32(1.2), req.Snapshot.Factor)
	assert.Equal(t, []string{"performance.cache-size 64MB"}, req.GlusterVolumeOptions)
	assert.Equal(t, 3, req.Durability.Replicate.Replica)
}

func TestResizeSendsTheDelta(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	create(t, b, "pv1", 2*quota.GiB)

	sv, err := b.Resize(t.Context(), "pv1", 5*quota.GiB)
	require.NoError(t, err)
	assert.Equal(t, 5*quota.GiB, sv.SizeBytes)
	exp := bodies(s, heketifake.RouteVolumeExpand)
	require.Len(t, exp, 1)
	assert.JSONEq(t, `{"expand_size":3}`, string(exp[0]), "heketi's expand_size is the GiB to add")
	assert.Equal(t, 5, s.Volumes()[0].Size)

	// Rounding: 5.5 GiB is 6 GiB, one more.
	sv, err = b.Resize(t.Context(), "pv1", 5*quota.GiB+512*quota.MiB)
	require.NoError(t, err)
	assert.Equal(t, 6*quota.GiB, sv.SizeBytes)
	exp = bodies(s, heketifake.RouteVolumeExpand)
	require.Len(t, exp, 2)
	assert.JSONEq(t, `{"expand_size":1}`, string(exp[1]))

	// The same size sends nothing.
	sv, err = b.Resize(t.Context(), "pv1", 6*quota.GiB)
	require.NoError(t, err)
	assert.Equal(t, 6*quota.GiB, sv.SizeBytes)
	assert.Equal(t, 2, s.Count(heketifake.RouteVolumeExpand))

	// A shrink is refused and changes nothing.
	_, err = b.Resize(t.Context(), "pv1", 3*quota.GiB)
	requireKind(t, err, subvolkit.Unimplemented, "pv1")
	assert.Contains(t, err.Error(), "cannot shrink")
	assert.Equal(t, 2, s.Count(heketifake.RouteVolumeExpand))
	assert.Equal(t, 6, s.Volumes()[0].Size)

	_, err = b.Resize(t.Context(), "missing", 3*quota.GiB)
	requireKind(t, err, subvolkit.NotFound, "missing")
}

func TestCloneChecksNamesAndGrows(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	src := create(t, b, "src", 2*quota.GiB)
	create(t, b, "taken", quota.GiB)

	// heketi would happily make a second "taken": the backend refuses
	// before asking.
	_, err := b.Clone(t.Context(), &backend.CloneRequest{Source: "src", Name: "taken"})
	requireKind(t, err, subvolkit.AlreadyExists, "taken")
	assert.Equal(t, 0, s.Count(heketifake.RouteVolumeClone))

	c, err := b.Clone(t.Context(), &backend.CloneRequest{Source: "src", Name: "copy", SizeBytes: 5 * quota.GiB})
	require.NoError(t, err)
	assert.Equal(t, "src", c.Source)
	assert.Equal(t, 5*quota.GiB, c.SizeBytes)
	assert.NotEqual(t, src.ID, c.ID)
	exp := bodies(s, heketifake.RouteVolumeExpand)
	require.Len(t, exp, 1)
	assert.JSONEq(t, `{"expand_size":3}`, string(exp[0]), "a clone has its source's 2 GiB; 3 more make 5")
	var cl api.VolumeCloneRequest
	require.NoError(t, json.Unmarshal(bodies(s, heketifake.RouteVolumeClone)[0], &cl))
	assert.Equal(t, "copy", cl.Name)

	_, err = b.Clone(t.Context(), &backend.CloneRequest{Source: "src", Name: "small", SizeBytes: 2*quota.GiB - 1})
	requireKind(t, err, subvolkit.InvalidArgument, "small")
	_, err = b.Clone(t.Context(), &backend.CloneRequest{Source: "src", Name: "p", Parameters: map[string]string{"gid": "5"}})
	requireKind(t, err, subvolkit.InvalidArgument, "p")
	_, err = b.Clone(t.Context(), &backend.CloneRequest{Source: "nope", Name: "n2"})
	requireKind(t, err, subvolkit.NotFound, "nope")
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeClone))

	// An expand that fails removes the clone again.
	s.FailNextJob("expand failed on purpose")
	_, err = b.Clone(t.Context(), &backend.CloneRequest{Source: "src", Name: "doomed", SizeBytes: 3 * quota.GiB})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expand failed on purpose")
	_, err = b.Get(t.Context(), "doomed")
	requireKind(t, err, subvolkit.NotFound, "doomed")
	for _, v := range s.Volumes() {
		assert.NotEqual(t, "doomed", v.Name)
	}
}

func TestNamesAcrossClusters(t *testing.T) {
	const ca, cb = "aa000000000000000000000000000000", "bb000000000000000000000000000000"
	s := fake(t, &heketifake.Options{PendingPolls: 1, Clusters: []heketifake.Cluster{
		{ID: ca, Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
		{ID: cb, Hosts: []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"}},
	}})
	hc := client.NewClientWithOptions(s.URL(), "admin", adminKey, func() client.ClientOptions {
		o := client.DefaultClientOptions()
		o.PollDelay, o.RetryEnabled = 1, false
		return o
	}())
	req := &api.VolumeCreateRequest{Size: 1, Name: "dup", Clusters: []string{ca}}
	_, err := hc.VolumeCreate(req)
	require.NoError(t, err)

	// heketi would put another "dup" in cluster B; the backend sees the
	// name is taken and sends nothing.
	all := open(t, options(s))
	_, err = all.Create(t.Context(), &backend.CreateRequest{Name: "dup", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.AlreadyExists, "dup")
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeCreate))

	// A backend kept to cluster B does not see A's volume.
	ob := options(s)
	ob.Clusters = []string{cb}
	onlyB := open(t, ob)
	_, err = onlyB.Get(t.Context(), "dup")
	requireKind(t, err, subvolkit.NotFound, "dup")
	sv := create(t, onlyB, "dup", quota.GiB)
	list, err := onlyB.List(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, list.Subvols, 1)
	assert.Equal(t, sv.ID, list.Subvols[0].ID)
	assert.Equal(t, "10.0.1.1", sv.Servers[0])
	_, err = onlyB.Create(t.Context(), &backend.CreateRequest{Name: "x", SizeBytes: quota.GiB,
		Parameters: map[string]string{"clusterid": ca}})
	requireKind(t, err, subvolkit.InvalidArgument, "x")

	// Now the name is ambiguous for a backend that sees both clusters.
	_, err = all.Get(t.Context(), "dup")
	requireKind(t, err, subvolkit.FailedPrecondition, "dup")
	assert.Contains(t, err.Error(), "2 heketi volumes have this name")
	err = all.Delete(t.Context(), "dup", nil)
	requireKind(t, err, subvolkit.FailedPrecondition, "dup")
	assert.Len(t, s.Volumes(), 2, "an ambiguous Delete deletes nothing")
}

func TestHiddenVolumeIsNotMissing(t *testing.T) {
	// heketi hides the source of a clone until the clone's job ends:
	// GET /volumes/{id} answers "Id not found" while GET /volumes still
	// lists it. With 2^20 pending polls, an interrupted
	// clone stays so.
	s := fake(t, &heketifake.Options{PendingPolls: 1})
	o := options(s)
	o.PollInterval = 5 * time.Millisecond
	b := open(t, o)
	src := create(t, b, "src", quota.GiB)
	s.SetPendingPolls(1 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Clone(ctx, &backend.CloneRequest{Source: "src", Name: "c"})
		errc <- err
	}()
	n := s.Count(heketifake.RouteQueue)
	waitFor(t, "the clone job is being polled", func() bool { return s.Count(heketifake.RouteQueue) >= n+2 })
	cancel()
	requireKind(t, <-errc, subvolkit.Canceled, "c")

	var hc *client.Client
	require.True(t, b.As(&hc))
	_, err := hc.VolumeInfo(src.ID)
	require.EqualError(t, err, "Id not found", "the fake hides the clone's source")

	// The backend that has seen src reports it from memory.
	got, err := b.Get(t.Context(), "src")
	require.NoError(t, err)
	assert.Equal(t, src.ID, got.ID)
	list, err := b.List(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, list.Subvols, 1)

	// A backend that has not cannot tell: Unavailable, never NotFound
	// (a Pool would take a NotFound Delete for success).
	fresh := open(t, options(s))
	_, err = fresh.Get(t.Context(), "src")
	requireKind(t, err, subvolkit.Unavailable, "src")
	err = fresh.Delete(t.Context(), "src", nil)
	requireKind(t, err, subvolkit.Unavailable, "src")
	_, err = fresh.List(t.Context(), nil)
	requireKind(t, err, subvolkit.Unavailable, "")
	err = subvol.NewPool(fresh, nil).Delete(t.Context(), "other", nil)
	requireKind(t, err, subvolkit.Unavailable, "")
}

func TestWrongURLPathIsNotNotFound(t *testing.T) {
	s := fake(t, nil)
	o := options(s)
	o.URL = s.URL() + "/heketi" // a proxy prefix the server does not have
	b := open(t, o)
	_, err := b.Get(t.Context(), "pv1")
	requireKind(t, err, subvolkit.Unknown, "pv1")
	var herr *heketi.HTTPError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, http.StatusNotFound, herr.StatusCode)
	assert.Equal(t, "Invalid path or request", herr.Message)
	err = subvol.NewPool(b, nil).Delete(t.Context(), "pv1", nil)
	require.Error(t, err, "a Pool must not take a wrong URL for a deleted subvolume")
}

func TestAsGivesHeketiClient(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	sv := create(t, b, "pv1", quota.GiB)
	var c *client.Client
	require.True(t, b.As(&c))
	require.NotNil(t, c)
	list, err := c.VolumeList()
	require.NoError(t, err)
	assert.Equal(t, []string{sv.ID}, list.Volumes)
	exp, err := c.VolumeExpand(sv.ID, &api.VolumeExpandRequest{Size: 1})
	require.NoError(t, err, "the client polls and follows the 303 with re-signed tokens")
	assert.Equal(t, 2, exp.Size)
	clusters, err := c.ClusterList()
	require.NoError(t, err)
	ci, err := c.ClusterInfo(clusters.Clusters[0])
	require.NoError(t, err)
	ni, err := c.NodeInfo(ci.Nodes[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1"}, []string(ni.Hostnames.Storage))
	assert.False(t, b.As(nil))
	var hc *http.Client
	assert.False(t, b.As(&hc))
}

func TestRegistryAndTLS(t *testing.T) {
	s := fake(t, &heketifake.Options{TLS: true, PendingPolls: 1})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, s.CertificatePEM(), 0o600))
	params := map[string]string{"resturl": s.URL(), "restuser": "admin", "restuserkey": adminKey}

	// Without trust the TLS handshake fails: Unavailable.
	b, err := backend.Open(t.Context(), "heketi", params)
	require.NoError(t, err)
	defer b.Close()
	requireKind(t, b.(backend.Pinger).Ping(t.Context()), subvolkit.Unavailable, "")

	params["tlscafile"] = ca
	b2, err := backend.Open(t.Context(), "heketi", params)
	require.NoError(t, err)
	defer b2.Close()
	require.NoError(t, b2.(backend.Pinger).Ping(t.Context()))
	sv, err := b2.Create(t.Context(), &backend.CreateRequest{Name: "tls", SizeBytes: quota.GiB})
	require.NoError(t, err)
	assert.Equal(t, "tls", sv.Name)

	delete(params, "tlscafile")
	params["tlsinsecure"] = "true"
	b3, err := backend.Open(t.Context(), "heketi", params)
	require.NoError(t, err)
	defer b3.Close()
	require.NoError(t, b3.(backend.Pinger).Ping(t.Context()))

	for _, bad := range []map[string]string{
		{"resturl": s.URL(), "secretNamespace": "default"},
		{"resturl": "ftp://x"},
		{},
		{"resturl": s.URL(), "tlscafile": filepath.Join(t.TempDir(), "missing.pem")},
		{"resturl": s.URL(), "clusterid": "not-hex"},
		{"resturl": s.URL(), "volumeoptions": "nospace"},
	} {
		_, err := backend.Open(t.Context(), "heketi", bad)
		requireKind(t, err, subvolkit.InvalidArgument, "")
	}
	_, err = heketi.Open(t.Context(), &heketi.Options{URL: s.URL(), HTTPClient: s.HTTPClient(), TLS: heketi.TLS{InsecureSkipVerify: true}})
	requireKind(t, err, subvolkit.InvalidArgument, "")
	hb, err := heketi.Open(t.Context(), &heketi.Options{URL: s.URL(), Key: adminKey, HTTPClient: s.HTTPClient()})
	require.NoError(t, err)
	defer hb.Close()
	require.NoError(t, hb.Ping(t.Context()), "a caller's HTTP client carries the requests")
}

func TestClosed(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	_, err := b.Resize(t.Context(), "x", quota.GiB)
	requireKind(t, err, subvolkit.FailedPrecondition, "x")
	requireKind(t, b.Ping(t.Context()), subvolkit.FailedPrecondition, "")
	assert.Equal(t, 0, s.Count(heketifake.RouteHello)+s.Count(heketifake.RouteVolumeList))
}

func TestUsageUnimplemented(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	_, err := b.Usage(t.Context(), "pv1")
	requireKind(t, err, subvolkit.Unimplemented, "pv1")
	assert.Contains(t, err.Error(), "heketi reports no usage")
	err = b.Delete(t.Context(), "pv1", &backend.DeleteOptions{Policy: backend.DeletePolicyRetain})
	requireKind(t, err, subvolkit.Unimplemented, "pv1")
}

func TestListPaging(t *testing.T) {
	s := fake(t, &heketifake.Options{})
	o := options(s)
	o.PageSize = 2
	b := open(t, o)
	for _, n := range []string{"c", "a", "e", "b", "d"} {
		create(t, b, n, quota.GiB)
	}
	var names []string
	var pages int
	opts := &backend.ListOptions{}
	for {
		page, err := b.List(t.Context(), opts)
		require.NoError(t, err)
		pages++
		assert.LessOrEqual(t, len(page.Subvols), 2)
		for _, sv := range page.Subvols {
			names = append(names, sv.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		opts = &backend.ListOptions{PageToken: page.NextPageToken}
	}
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, names)
	assert.Equal(t, 3, pages)
	_, err := b.List(t.Context(), &backend.ListOptions{PageToken: "garbage"})
	requireKind(t, err, subvolkit.InvalidArgument, "")

	// Names are learned once: a second listing reads only the page's infos.
	n := s.Count(heketifake.RouteVolumeInfo)
	_, err = b.List(t.Context(), &backend.ListOptions{MaxResults: 1})
	require.NoError(t, err)
	assert.Equal(t, n+1, s.Count(heketifake.RouteVolumeInfo))
}

func TestDottedNames(t *testing.T) {
	s := fake(t, nil)
	b := open(t, options(s))
	sv := create(t, b, "my.data_1", quota.GiB)
	assert.Equal(t, "my.data_1", sv.Name)
	assert.Equal(t, "_my_ddata__1", sv.Volume, "heketi cannot store '.': the Gluster volume has the escaped name")
	require.Len(t, s.Volumes(), 1)
	assert.Equal(t, "_my_ddata__1", s.Volumes()[0].Name)
	assert.Equal(t, "192.0.2.1:_my_ddata__1", s.Volumes()[0].Mount.GlusterFS.MountPoint)
	_, err := b.Create(t.Context(), &backend.CreateRequest{Name: "my.data_1", SizeBytes: quota.GiB})
	requireKind(t, err, subvolkit.AlreadyExists, "my.data_1")

	// A volume made by other means keeps its own name, even one that
	// looks escaped.
	var hc *client.Client
	require.True(t, b.As(&hc))
	for _, n := range []string{"_scratch", "_a_x", "plain_name"} {
		_, err := hc.VolumeCreate(&api.VolumeCreateRequest{Size: 1, Name: n})
		require.NoError(t, err)
	}
	c, err := b.Clone(t.Context(), &backend.CloneRequest{Source: "my.data_1", Name: "copy.of.it"})
	require.NoError(t, err)
	assert.Equal(t, "_copy_dof_dit", c.Volume)
	list, err := b.List(t.Context(), nil)
	require.NoError(t, err)
	var names []string
	for _, sv := range list.Subvols {
		names = append(names, sv.Name)
	}
	assert.Equal(t, []string{"_a_x", "_scratch", "copy.of.it", "my.data_1", "plain_name"}, names)
	got, err := b.Get(t.Context(), "plain_name")
	require.NoError(t, err)
	assert.Equal(t, "plain_name", got.Volume)
	require.NoError(t, b.Delete(t.Context(), "my.data_1", nil))
	_, err = b.Get(t.Context(), "my.data_1")
	requireKind(t, err, subvolkit.NotFound, "my.data_1")
}

func TestInterruptedResizeIsNotRepeated(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 1})
	o := options(s)
	o.PollInterval = 5 * time.Millisecond
	b := open(t, o)
	create(t, b, "pv1", 2*quota.GiB)
	s.SetPendingPolls(30)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Resize(ctx, "pv1", 5*quota.GiB)
		errc <- err
	}()
	n := s.Count(heketifake.RouteQueue)
	waitFor(t, "the expand job is being polled", func() bool { return s.Count(heketifake.RouteQueue) > n })
	cancel()
	requireKind(t, <-errc, subvolkit.Canceled, "pv1")
	assert.Equal(t, 2, s.Volumes()[0].Size, "the expand has not finished")

	// The retry waits for the first expand and finds nothing left to do.
	sv, err := b.Resize(t.Context(), "pv1", 5*quota.GiB)
	require.NoError(t, err)
	assert.Equal(t, 5*quota.GiB, sv.SizeBytes)
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeExpand), "the delta was sent once")
	assert.Equal(t, 5, s.Volumes()[0].Size)
}

func TestCancelDuringJobStart(t *testing.T) {
	s := fake(t, &heketifake.Options{PendingPolls: 1})
	b := open(t, options(s))
	p := subvol.NewPool(b, nil)
	s.Slow(300 * time.Millisecond)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Create(ctx, &backend.CreateRequest{Name: "pv1", SizeBytes: quota.GiB})
		errc <- err
	}()
	waitFor(t, "the POST is in flight", func() bool { return s.Count(heketifake.RouteVolumeCreate) == 1 })
	cancel()
	requireKind(t, <-errc, subvolkit.Canceled, "pv1")
	s.Slow(0)
	reqs := s.Requests()
	for _, r := range reqs {
		if r.Route == heketifake.RouteVolumeCreate {
			assert.Equal(t, http.StatusAccepted, r.Status, "the POST that starts the job was allowed to finish")
		}
	}

	// Its job is known, so a retried Allocate finds the volume.
	sv, err := p.Allocate(t.Context(), "pv1", quota.GiB, nil)
	require.NoError(t, err)
	assert.Equal(t, "pv1", sv.Name)
	assert.Equal(t, 1, s.Count(heketifake.RouteVolumeCreate))
	assert.Len(t, s.Volumes(), 1)
}
