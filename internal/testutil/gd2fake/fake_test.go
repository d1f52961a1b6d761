package gd2fake_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gluster/glusterd2/pkg/api"
	"github.com/gluster/glusterd2/pkg/restclient"
	smartvolapi "github.com/gluster/glusterd2/plugins/smartvol/api"

	"github.com/subvolkit/subvolkit/internal/testutil/gd2fake"
)

func newFake(t *testing.T, opts *gd2fake.Options) *gd2fake.Server {
	t.Helper()
	s := gd2fake.New(opts)
	t.Cleanup(s.Close)
	return s
}

func client(s *gd2fake.Server) *restclient.Client {
	return restclient.New(s.URL(), "glustercli", s.Secret(), "", false)
}

// status extracts the HTTP status from a restclient error, the only way
// its unexported fields can be read.
func status(t *testing.T, err error) int {
	t.Helper()
	var ue *restclient.UnexpectedStatusError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not an UnexpectedStatusError", err, err)
	}
	var code int
	first, _, _ := strings.Cut(ue.Error(), "\n")
	if _, serr := fmt.Sscanf(first, "Request failed with HTTP Status code %d", &code); serr != nil {
		t.Fatalf("cannot parse status from %q: %v", first, serr)
	}
	return code
}

// do sends a raw request with a valid token and returns status, headers and body.
func do(t *testing.T, s *gd2fake.Server, method, path, body string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+gd2fake.Token("glustercli", s.Secret(), time.Minute))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestRestclientLifecycle(t *testing.T) {
	s := newFake(t, nil)
	c := client(s)

	if err := c.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	vol, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "pv1", Size: 1024, ReplicaCount: 3})
	if err != nil {
		t.Fatalf("SmartVolumeCreate: %v", err)
	}
	if vol.Name != "pv1" || vol.State != api.VolCreated || vol.Type != api.Replicate || len(vol.Subvols) != 1 {
		t.Fatalf("created volume = %+v", vol)
	}
	hosts := map[string]bool{}
	for _, b := range vol.Subvols[0].Bricks {
		hosts[b.Hostname] = true
		if b.VolumeName != "pv1" || !strings.HasSuffix(b.Path, "/brick") {
			t.Errorf("brick %+v", b)
		}
	}
	if len(hosts) != 3 {
		t.Errorf("replica 3 bricks on hosts %v, want 3 distinct", hosts)
	}

	if err := c.VolumeStart("pv1", false); err != nil {
		t.Fatalf("VolumeStart: %v", err)
	}
	if err := c.VolumeStart("pv1", false); status(t, err) != http.StatusBadRequest || !strings.Contains(err.Error(), "volume already started") {
		t.Fatalf("second VolumeStart: %v", err)
	}
	st, err := c.VolumeStatus("pv1")
	if err != nil {
		t.Fatalf("VolumeStatus: %v", err)
	}
	if !st.Online || st.Size.Capacity != 1024*gd2fake.MiB || st.Size.Free != st.Size.Capacity {
		t.Errorf("status = %+v", st)
	}
	if err := s.SetUsed("pv1", 5*gd2fake.MiB); err != nil {
		t.Fatal(err)
	}
	if st, err = c.VolumeStatus("pv1"); err != nil || st.Size.Used != 5*gd2fake.MiB || st.Size.Free != 1019*gd2fake.MiB {
		t.Errorf("status after SetUsed = %+v, %v", st.Size, err)
	}

	vols, err := c.Volumes("")
	if err != nil || len(vols) != 1 || vols[0].Name != "pv1" || vols[0].State != api.VolStarted {
		t.Fatalf("Volumes = %+v, %v", vols, err)
	}
	if err := c.VolumeDelete("pv1"); status(t, err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "Volume must be in stopped state before deleting.") {
		t.Fatalf("delete of a started volume: %v", err)
	}
	if err := c.VolumeStop("pv1"); err != nil {
		t.Fatalf("VolumeStop: %v", err)
	}
	if err := c.VolumeStop("pv1"); status(t, err) != http.StatusBadRequest || !strings.Contains(err.Error(), "volume already stopped") {
		t.Fatalf("second VolumeStop: %v", err)
	}
	if _, err := c.VolumeStatus("pv1"); status(t, err) != http.StatusBadRequest || !strings.Contains(err.Error(), "volume not started") {
		t.Fatalf("status of a stopped volume: %v", err)
	}
	if err := c.VolumeDelete("pv1"); err != nil {
		t.Fatalf("VolumeDelete: %v", err)
	}
	if got := s.Volumes(); len(got) != 0 {
		t.Fatalf("volumes after delete: %+v", got)
	}
	_, err = c.Volumes("pv1")
	if status(t, err) != http.StatusNotFound || err.Error() != "Request failed with HTTP Status code 404\nvolume not found" {
		t.Fatalf("Volumes(missing) error = %q", err)
	}
	if got := s.Count("POST", "/v1/smartvol"); got != 1 {
		t.Errorf("Count(POST /v1/smartvol) = %d, want 1", got)
	}
}

func TestNeverStartedVolumeStopsAndDeletes(t *testing.T) {
	s := newFake(t, nil)
	c := client(s)
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "fresh", Size: 10}); err != nil {
		t.Fatal(err)
	}
	// Upstream refuses to stop only a Stopped volume, so a Created one stops.
	if err := c.VolumeStop("fresh"); err != nil {
		t.Fatalf("stop of a never started volume: %v", err)
	}
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "fresh2", Size: 10}); err != nil {
		t.Fatal(err)
	}
	if err := c.VolumeDelete("fresh2"); err != nil {
		t.Fatalf("delete of a never started volume: %v", err)
	}
}

func TestSmartvolValidation(t *testing.T) {
	s := newFake(t, &gd2fake.Options{Hosts: []string{"a", "b"}, DeviceBytes: 100 * gd2fake.MiB})
	c := client(s)
	for _, tc := range []struct {
		req    smartvolapi.VolCreateReq
		status int
		msg    string
	}{
		{smartvolapi.VolCreateReq{Name: "bad.name", Size: 10}, 400, "invalid volume name"},
		{smartvolapi.VolCreateReq{Name: "small", Size: 9}, 400, "Invalid Volume Size, Minimum size required is 10"},
		{smartvolapi.VolCreateReq{Name: "r4", Size: 10, ReplicaCount: 4}, 500, "Invalid Replica Count"},
		{smartvolapi.VolCreateReq{Name: "r3", Size: 10, ReplicaCount: 3}, 500, "No space available or all the devices are not registered"},
		{smartvolapi.VolCreateReq{Name: "big", Size: 200}, 500, "No space available or all the devices are not registered"},
		{smartvolapi.VolCreateReq{Name: "d2", Size: 10, DisperseCount: 2}, 500, "Invalid redundancy count"},
		{smartvolapi.VolCreateReq{Name: "dd", Size: 10, DisperseDataCount: 2}, 500, "Disperse redundancy count is required"},
		{smartvolapi.VolCreateReq{Name: "tr", Size: 10, Transport: "udp"}, 400, "Invalid transport. Supported values: tcp or rdma"},
	} {
		_, err := c.SmartVolumeCreate(tc.req)
		if err == nil {
			t.Errorf("%s: created", tc.req.Name)
			continue
		}
		if got := status(t, err); got != tc.status || !strings.HasSuffix(err.Error(), "\n"+tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.req.Name, got, err, tc.status, tc.msg)
		}
	}
	if got := s.Volumes(); len(got) != 0 {
		t.Fatalf("failed creates left %+v", got)
	}

	// Space is taken by a create and given back by a delete.
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "fits", Size: 60, ReplicaCount: 2}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "nofit", Size: 60})
	if err == nil || status(t, err) != 500 {
		t.Fatalf("create beyond free space: %v", err)
	}
	if err := c.VolumeDelete("fits"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "nofit", Size: 60}); err != nil {
		t.Fatalf("create after space was freed: %v", err)
	}

	// A duplicate name is 400, checked before the lock: no 409 for it.
	s.LockContention(1)
	_, err = c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "nofit", Size: 10})
	if err == nil || status(t, err) != 400 || !strings.HasSuffix(err.Error(), "\nvolume already exists") {
		t.Fatalf("duplicate smartvol: %v", err)
	}
	s.LockContention(0)

	// A request that does not decode is 422.
	code, _, body := do(t, s, "POST", "/v1/smartvol", `{"name": 5}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"code":1`) {
		t.Fatalf("undecodable smartvol: %d %s", code, body)
	}
}

func TestDisperse(t *testing.T) {
	s := newFake(t, &gd2fake.Options{Hosts: []string{"a", "b", "c", "d", "e", "f"}})
	vol, err := client(s).SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "ec", Size: 400, DisperseCount: 6})
	if err != nil {
		t.Fatal(err)
	}
	if vol.Type != api.Disperse || len(vol.Subvols[0].Bricks) != 6 {
		t.Fatalf("disperse volume %+v", vol)
	}
}

func TestPlainCreateAndEdit(t *testing.T) {
	s := newFake(t, nil)
	c := client(s)
	peers := s.Peers()
	req := api.VolCreateReq{
		Name: "plain",
		Subvols: []api.SubvolReq{{
			Type: "replicate", ReplicaCount: 3,
			Bricks: []api.BrickReq{
				{PeerID: peers[0].ID, Path: "/b/1"}, {PeerID: peers[1].ID, Path: "/b/1"}, {PeerID: peers[2].ID, Path: "/b/1"},
			},
		}},
		Metadata: map[string]string{"owner": "me"},
	}
	vol, err := c.VolumeCreate(req)
	if err != nil {
		t.Fatalf("VolumeCreate: %v", err)
	}
	if vol.Type != api.Replicate || vol.Metadata["owner"] != "me" || vol.Subvols[0].Bricks[2].Hostname != peers[2].Host {
		t.Fatalf("created %+v", vol)
	}
	// A duplicate through /v1/volumes fails inside the transaction: 500,
	// rendered by restclient as a failed step.
	_, err = c.VolumeCreate(req)
	if err == nil || status(t, err) != 500 || !strings.Contains(err.Error(), "Transaction step vol-create.CreateVolinfo failed on peer") ||
		!strings.Contains(err.Error(), "with error: volume already exists") {
		t.Fatalf("duplicate VolumeCreate: %v", err)
	}

	edited, err := c.EditVolume("plain", api.VolEditReq{Metadata: map[string]string{"k": "v"}})
	if err != nil || edited.Metadata["k"] != "v" || edited.Metadata["owner"] != "me" {
		t.Fatalf("EditVolume = %+v, %v", edited.Metadata, err)
	}
	if _, err := c.EditVolume("plain", api.VolEditReq{Metadata: map[string]string{"_x": "v"}}); err == nil || status(t, err) != 400 {
		t.Fatalf("restricted key: %v", err)
	}
	if _, err := c.EditVolume("plain", api.VolEditReq{Metadata: map[string]string{"big": strings.Repeat("x", 4100)}}); err == nil ||
		!strings.HasSuffix(err.Error(), "metadata size exceeds max allowed size of 4KB") {
		t.Fatalf("oversized metadata: %v", err)
	}
	if _, err := c.EditVolume("plain", api.VolEditReq{Metadata: map[string]string{"k": ""}, DeleteMetadata: true}); err != nil {
		t.Fatal(err)
	}
	vols, err := c.Volumes("", map[string]string{"key": "owner"})
	if err != nil || len(vols) != 1 {
		t.Fatalf("filter by key: %+v %v", vols, err)
	}
	vols, err = c.Volumes("", map[string]string{"key": "k"})
	if err != nil || len(vols) != 0 {
		t.Fatalf("filter by deleted key: %+v %v", vols, err)
	}
}

func TestAuth(t *testing.T) {
	s := newFake(t, &gd2fake.Options{Secret: "s3cret"})
	if err := client(s).Ping(); err != nil {
		t.Fatalf("ping with the right secret: %v", err)
	}
	err := restclient.New(s.URL(), "glustercli", "wrong", "", false).Ping()
	if status(t, err) != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
	err = restclient.New(s.URL(), "admin", "s3cret", "", false).Ping()
	if status(t, err) != http.StatusUnauthorized {
		t.Fatalf("wrong issuer: %v", err)
	}

	enc := base64.RawURLEncoding
	sign := func(header, claims string) string {
		// A token with a garbage signature: the checks before the
		// signature decide the message.
		return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + ".c2ln"
	}
	exp := time.Now().Add(time.Minute).Unix()
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"none", "", "Authorization header is required"},
		{"scheme", "Basic abc", "Authorization header format must be Bearer <TOKEN>"},
		{"segments", "Bearer a.b", "token contains an invalid number of segments"},
		{"missing exp", "Bearer " + sign(`{"alg":"HS256"}`, `{"iss":"glustercli"}`), "Token missing exp Claim"},
		{"alg none", "Bearer " + sign(`{"alg":"none"}`, `{"iss":"glustercli","exp":1}`), "Unexpected signing method: none"},
		{"alg unknown", "Bearer " + sign(`{"alg":"XX1"}`, `{"iss":"glustercli","exp":1}`), "signing method (alg) is unavailable."},
		{"issuer", "Bearer " + sign(`{"alg":"HS256"}`, `{"iss":"bob","exp":1}`), "Invalid App ID: bob"},
		{"bad signature", "bearer " + sign(`{"alg":"HS256"}`, `{"iss":"glustercli","exp":`+itoa(exp)+`}`), "signature is invalid"},
		{"expired", "Bearer " + gd2fake.Token("glustercli", "s3cret", -time.Minute), "Token is expired"},
	} {
		req, _ := http.NewRequest("GET", s.URL()+"/v1/volumes", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || string(b) != tc.want+"\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q (%s), want 401 %q", tc.name, resp.StatusCode, b, resp.Header.Get("Content-Type"), tc.want)
		}
		if resp.Header.Get("X-Gluster-Peer-Id") == "" {
			t.Errorf("%s: no X-Gluster-Peer-Id header", tc.name)
		}
	}

	open := newFake(t, &gd2fake.Options{NoAuth: true})
	if err := restclient.New(open.URL(), "", "", "", false).Ping(); err != nil {
		t.Fatalf("ping without auth: %v", err)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestWireFormat(t *testing.T) {
	s := newFake(t, nil)
	code, h, body := do(t, s, "GET", "/v1/volumes/nope", "")
	if code != 404 || h.Get("Content-Type") != "application/json; charset=UTF-8" ||
		body != `{"errors":[{"code":1,"message":"volume not found"}]}`+"\n" {
		t.Fatalf("404: %d %q %q", code, h.Get("Content-Type"), body)
	}
	code, h, body = do(t, s, "GET", "/ping", "")
	if code != 200 || body != "" || h.Get("Content-Type") != "" {
		t.Fatalf("ping: %d %q %q", code, h.Get("Content-Type"), body)
	}
	code, _, body = do(t, s, "GET", "/version", "")
	if code != 200 || body != `{"glusterd-version":"4.1.1","api-version":1}`+"\n" {
		t.Fatalf("version: %d %q", code, body)
	}
	code, _, body = do(t, s, "GET", "/v1/volumes", "")
	if code != 200 || body != "[]\n" {
		t.Fatalf("empty list: %d %q", code, body)
	}
	code, _, body = do(t, s, "POST", "/v1/snapshot/snap1/clone", `{"clonename":"c"}`)
	if code != 501 || body != `"Snapshot Clone"`+"\n" {
		t.Fatalf("snapshot clone: %d %q", code, body)
	}
	code, _, body = do(t, s, "DELETE", "/v1/snapshot/snap1", "")
	if code != 501 || body != `"Snapshot Delete"`+"\n" {
		t.Fatalf("snapshot delete: %d %q", code, body)
	}
	code, _, body = do(t, s, "POST", "/v1/quota/any/limit", `{"path":"/d","size-usage-limit":1}`)
	if code != 200 || body != `"Todo: limitusage"`+"\n" {
		t.Fatalf("quota limit stub: %d %q", code, body)
	}
	code, _, body = do(t, s, "GET", "/v1/quota/any/limit", "")
	if code != 200 || body != `"todo: quota list"`+"\n" {
		t.Fatalf("quota list stub: %d %q", code, body)
	}
	code, _, _ = do(t, s, "POST", "/v1/volumes/x/expand", `{}`)
	if code != 404 {
		t.Fatalf("unmodelled route: %d", code)
	}
	code, _, body = do(t, s, "POST", "/v1/volumes/x/start", "")
	if code != 400 || !strings.Contains(body, `"message":"EOF"`) {
		t.Fatalf("start without a body: %d %q", code, body)
	}
	// A delete answers 204 without a body or Content-Type.
	c := client(s)
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "v", Size: 10}); err != nil {
		t.Fatal(err)
	}
	code, h, body = do(t, s, "DELETE", "/v1/volumes/v", "")
	if code != 204 || body != "" || h.Get("Content-Type") != "" {
		t.Fatalf("delete: %d %q %q", code, h.Get("Content-Type"), body)
	}
}

func TestQuotaEnable(t *testing.T) {
	s := newFake(t, nil)
	c := client(s)
	if err := c.QuotaEnable("q"); status(t, err) != 404 {
		t.Fatalf("quota enable on a missing volume: %v", err)
	}
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "q", Size: 10}); err != nil {
		t.Fatal(err)
	}
	if err := c.QuotaEnable("q"); status(t, err) != 400 || !strings.HasSuffix(err.Error(), "volume not started") {
		t.Fatalf("quota enable on a created volume: %v", err)
	}
	if err := c.VolumeStart("q", false); err != nil {
		t.Fatal(err)
	}
	if err := c.QuotaEnable("q"); err != nil {
		t.Fatalf("QuotaEnable: %v", err)
	}
	if err := c.QuotaEnable("q"); status(t, err) != 400 || !strings.HasSuffix(err.Error(), "Process is already running") {
		t.Fatalf("second QuotaEnable: %v", err)
	}
	if got := s.Volumes()[0].Options["features.quota"]; got != "on" {
		t.Fatalf("features.quota = %q", got)
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t, nil)
	c := client(s)

	s.LockContention(2)
	for i := 0; i < 2; i++ {
		_, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "v", Size: 10})
		if status(t, err) != http.StatusConflict ||
			!strings.HasSuffix(err.Error(), "could not obtain lock: another conflicting transaction may be in progress") {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := c.Volumes(""); err != nil {
		t.Fatalf("a read takes no lock: %v", err)
	}
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "v", Size: 10}); err != nil {
		t.Fatalf("after contention: %v", err)
	}
	if got := s.Count("POST", "/v1/smartvol"); got != 3 {
		t.Errorf("Count = %d, want 3", got)
	}

	s.Fail5xx(1)
	if _, err := c.Volumes(""); status(t, err) != 500 {
		t.Fatalf("Fail5xx: %v", err)
	}
	if _, err := c.Volumes(""); err != nil {
		t.Fatalf("after Fail5xx: %v", err)
	}

	s.FailNext("POST", "/v1/volumes/v/start", 500, "brick start failed", 1)
	if err := c.VolumeStart("v", false); status(t, err) != 500 || !strings.HasSuffix(err.Error(), "brick start failed") {
		t.Fatalf("FailNext: %v", err)
	}
	if err := c.VolumeStart("v", false); err != nil {
		t.Fatalf("after FailNext: %v", err)
	}

	s.DropConnections(1)
	err := c.Ping()
	var ue *restclient.UnexpectedStatusError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("dropped connection gave %v", err)
	}
	if err := c.Ping(); err != nil {
		t.Fatalf("after drop: %v", err)
	}

	total := s.Total()
	s.Slow(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/ping", nil)
	start := time.Now()
	_, err = http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("slow request: %v after %v", err, time.Since(start))
	}
	if s.Total() != total+1 {
		t.Errorf("Total = %d, want %d", s.Total(), total+1)
	}
	s.Slow(0)
	if err := c.Ping(); err != nil {
		t.Fatalf("after Slow(0): %v", err)
	}

	// Delay holds only matching requests, only n times.
	s.Delay("GET", "/ping", time.Hour, 1)
	if _, err := c.Volumes(""); err != nil {
		t.Fatalf("a request Delay does not match: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, "GET", s.URL()+"/ping", nil)
	req.Header.Set("Authorization", "Bearer "+gd2fake.Token("glustercli", s.Secret(), time.Minute))
	if _, err = http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed request: %v", err)
	}
	if err := c.Ping(); err != nil {
		t.Fatalf("after the delay was used: %v", err)
	}
}

func TestTLS(t *testing.T) {
	s := newFake(t, &gd2fake.Options{TLS: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := restclient.New(s.URL(), "glustercli", s.Secret(), ca, false).Ping(); err != nil {
		t.Fatalf("ping over TLS with the CA: %v", err)
	}
	if err := restclient.New(s.URL(), "glustercli", s.Secret(), "", false).Ping(); err == nil {
		t.Fatal("ping over TLS without the CA succeeded")
	}
}
