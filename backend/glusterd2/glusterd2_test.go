package glusterd2_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gluster/glusterd2/pkg/api"
	"github.com/gluster/glusterd2/pkg/restclient"
	smartvolapi "github.com/gluster/glusterd2/plugins/smartvol/api"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/glusterd2"
	"github.com/subvolkit/subvolkit/internal/testutil/gd2fake"
	"github.com/subvolkit/subvolkit/quota"
)

// setup starts a fake and opens a backend on it with fast retries; edit
// adjusts the options first.
func setup(t *testing.T, fopts *gd2fake.Options, edit func(*glusterd2.Options)) (*gd2fake.Server, *glusterd2.Backend) {
	t.Helper()
	s := gd2fake.New(fopts)
	t.Cleanup(s.Close)
	opts := &glusterd2.Options{
		URL:           s.URL(),
		Secret:        s.Secret(),
		RetryMinDelay: time.Millisecond,
		RetryMaxDelay: 5 * time.Millisecond,
	}
	if edit != nil {
		edit(opts)
	}
	b, err := glusterd2.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return s, b
}

func create(t *testing.T, b *glusterd2.Backend, name string, size int64) *backend.Subvol {
	t.Helper()
	sv, err := b.Create(context.Background(), &backend.CreateRequest{Name: name, SizeBytes: size})
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	return sv
}

func wantKind(t *testing.T, what string, err error, kind subvolkit.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if got := subvolkit.KindOf(err); got != kind {
		t.Fatalf("%s: kind %v (%v), want %v", what, got, err, kind)
	}
}

func volumeNames(s *gd2fake.Server) []string {
	var names []string
	for _, v := range s.Volumes() {
		names = append(names, v.Name)
	}
	return names
}

func TestCreateGetListDelete(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.ReplicaCount = 3 })
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	sv, err := b.Create(ctx, &backend.CreateRequest{
		Name: "pv-1", SizeBytes: 16 * quota.MiB, Labels: map[string]string{"app": "web", "k8s.io/pvc": "ns/claim"},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	vols := s.Volumes()
	if len(vols) != 1 || vols[0].State != api.VolStarted {
		t.Fatalf("fake volumes = %+v", vols)
	}
	v := vols[0]
	wantHosts := []string{v.Subvols[0].Bricks[0].Hostname, v.Subvols[0].Bricks[1].Hostname, v.Subvols[0].Bricks[2].Hostname}
	if sv.Name != "pv-1" || sv.Volume != "pv-1" || sv.Path != "" || sv.ID != v.ID.String() ||
		sv.SizeBytes != 16*quota.MiB || strings.Join(sv.Servers, ",") != strings.Join(wantHosts, ",") ||
		sv.UID != -1 || sv.GID != -1 || sv.Labels["app"] != "web" || sv.Labels["k8s.io/pvc"] != "ns/claim" ||
		sv.Created.Before(before) || sv.Created.After(time.Now()) {
		t.Fatalf("Create returned %+v (fake volume %+v)", sv, v)
	}
	if v.Type != api.Replicate || len(v.Subvols[0].Bricks) != 3 {
		t.Errorf("volume is not replica 3: %+v", v)
	}

	got, err := b.Get(ctx, "pv-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.ID != sv.ID || got.SizeBytes != sv.SizeBytes || !got.Created.Equal(sv.Created) || got.Labels["app"] != "web" {
		t.Fatalf("Get = %+v, Create gave %+v", got, sv)
	}

	for _, n := range []string{"pv-4", "pv-0", "pv-3", "pv-2"} {
		create(t, b, n, 10*quota.MiB)
	}
	var listed []string
	opts := &backend.ListOptions{MaxResults: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("List does not end")
		}
		page, err := b.List(ctx, opts)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(page.Subvols) > 2 {
			t.Fatalf("page of %d > MaxResults 2", len(page.Subvols))
		}
		for _, sv := range page.Subvols {
			listed = append(listed, sv.Name)
		}
		if page.NextPageToken == "" {
			break
		}
		opts = &backend.ListOptions{MaxResults: 2, PageToken: page.NextPageToken}
	}
	if got := strings.Join(listed, ","); got != "pv-0,pv-1,pv-2,pv-3,pv-4" {
		t.Fatalf("listed %s", got)
	}
	if page, err := b.List(ctx, nil); err != nil || len(page.Subvols) != 5 || page.NextPageToken != "" {
		t.Fatalf("List(nil) = %+v, %v", page, err)
	}
	_, err = b.List(ctx, &backend.ListOptions{MaxResults: -1})
	wantKind(t, "List(MaxResults -1)", err, subvolkit.InvalidArgument)

	if err := b.Delete(ctx, "pv-1", nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := strings.Join(volumeNames(s), ","); got != "pv-0,pv-2,pv-3,pv-4" {
		t.Fatalf("after Delete the fake has %s", got)
	}
	wantKind(t, "second Delete", b.Delete(ctx, "pv-1", nil), subvolkit.NotFound)
	_, err = b.Get(ctx, "pv-1")
	wantKind(t, "Get after Delete", err, subvolkit.NotFound)
	if !strings.Contains(err.Error(), "volume not found") || strings.Contains(err.Error(), `"pv-1"`) {
		t.Errorf("NotFound message %q lacks glusterd2's text, or names the subvolume (the Pool does)", err)
	}
	var he *glusterd2.HTTPError
	if !errors.As(err, &he) || he.Status != 404 || len(he.Messages) != 1 || he.Messages[0] != "volume not found" {
		t.Fatalf("errors.As HTTPError = %+v", he)
	}
}

func TestSizes(t *testing.T) {
	s, b := setup(t, nil, nil)
	for _, tc := range []struct {
		ask, want int64
	}{
		{1, 10 * quota.MiB},
		{10 * quota.MiB, 10 * quota.MiB},
		{10*quota.MiB + 1, 11 * quota.MiB},
		{5 * quota.GiB, 5 * quota.GiB},
	} {
		name := fmt.Sprintf("size-%d", tc.ask)
		sv := create(t, b, name, tc.ask)
		if sv.SizeBytes != tc.want {
			t.Errorf("Create(%d).SizeBytes = %d, want %d", tc.ask, sv.SizeBytes, tc.want)
		}
		// The fake's capacity is the size glusterd2 was asked for.
		u, err := b.Usage(context.Background(), name)
		if err != nil {
			t.Fatalf("Usage: %v", err)
		}
		if u.Limit != tc.want || u.Used != 0 || u.Available != tc.want || u.Files != -1 {
			t.Errorf("Usage(%s) = %+v, want limit %d", name, u, tc.want)
		}
	}
	_, err := b.Create(context.Background(), &backend.CreateRequest{Name: "zero", SizeBytes: 0})
	wantKind(t, "Create size 0", err, subvolkit.InvalidArgument)
	if s.Count("POST", "/v1/smartvol") != 4 {
		t.Errorf("an invalid size reached glusterd2")
	}
}

func TestNames(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()

	// A name glusterd2 cannot take lives in a volume with another name.
	sv := create(t, b, "My.Claim", quota.MiB)
	if sv.Name != "My.Claim" || sv.Volume != glusterd2.VolumeName("My.Claim") ||
		!strings.HasPrefix(sv.Volume, "My-Claim-") || len(sv.Volume) != len("My-Claim-")+10 {
		t.Fatalf("Subvol = %+v", sv)
	}
	if got := volumeNames(s); len(got) != 1 || got[0] != sv.Volume {
		t.Fatalf("fake volumes %v", got)
	}
	got, err := b.Get(ctx, "My.Claim")
	if err != nil || got.Name != "My.Claim" || got.Volume != sv.Volume {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	page, err := b.List(ctx, nil)
	if err != nil || len(page.Subvols) != 1 || page.Subvols[0].Name != "My.Claim" {
		t.Fatalf("List = %+v, %v", page, err)
	}

	// A subvolume named like that volume is another one: it cannot be
	// made, and is not found.
	_, err = b.Create(ctx, &backend.CreateRequest{Name: sv.Volume, SizeBytes: quota.MiB})
	wantKind(t, "Create of the mapped name", err, subvolkit.AlreadyExists)
	_, err = b.Get(ctx, sv.Volume)
	wantKind(t, "Get of the mapped name", err, subvolkit.NotFound)
	if !strings.Contains(err.Error(), `holds the subvolume "My.Claim"`) {
		t.Errorf("error %q", err)
	}
	wantKind(t, "Delete of the mapped name", b.Delete(ctx, sv.Volume, nil), subvolkit.NotFound)
	if len(s.Volumes()) != 1 {
		t.Fatal("a Delete of another name removed the volume")
	}
	if err := b.Delete(ctx, "My.Claim", nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	// Long names are shortened, within MaxVolumeName.
	long := strings.Repeat("a", 128)
	lv := create(t, b, long, quota.MiB)
	if len(lv.Volume) != glusterd2.MaxVolumeName || lv.Name != long {
		t.Fatalf("long name: volume %q (%d bytes)", lv.Volume, len(lv.Volume))
	}
	if glusterd2.VolumeName(long) == glusterd2.VolumeName(long[:127]+"b") {
		t.Fatal("two long names share a volume name")
	}
	if got := glusterd2.VolumeName("pvc-0a1b_C"); got != "pvc-0a1b_C" {
		t.Errorf("VolumeName of an acceptable name = %q", got)
	}

	total := s.Total()
	for _, bad := range []string{"", "a/b", "..", "-x"} {
		_, err = b.Create(ctx, &backend.CreateRequest{Name: bad, SizeBytes: quota.MiB})
		wantKind(t, fmt.Sprintf("Create(%q)", bad), err, subvolkit.InvalidArgument)
		_, err = b.Get(ctx, bad)
		wantKind(t, fmt.Sprintf("Get(%q)", bad), err, subvolkit.InvalidArgument)
	}
	if s.Total() != total {
		t.Errorf("%d requests for invalid names", s.Total()-total)
	}
}

func TestDuplicate(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	first := create(t, b, "dup", 10*quota.MiB)
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "dup", SizeBytes: 20 * quota.MiB})
	wantKind(t, "second Create", err, subvolkit.AlreadyExists)
	got, err := b.Get(ctx, "dup")
	if err != nil || got.SizeBytes != first.SizeBytes || got.ID != first.ID {
		t.Fatalf("the first volume changed: %+v, %v", got, err)
	}
	if n := s.Count("POST", "/v1/volumes/dup/edit"); n != 1 {
		t.Errorf("edit sent %d times, want 1 (the duplicate must change nothing)", n)
	}
}

func TestLockContentionRetried(t *testing.T) {
	s, b := setup(t, nil, nil)
	s.LockContention(2)
	create(t, b, "busy", 10*quota.MiB)
	if n := s.Count("POST", "/v1/smartvol"); n != 3 {
		t.Errorf("smartvol sent %d times, want 3 (two 409s, then success)", n)
	}
	if n := s.Count("POST", "/v1/volumes/busy/start"); n != 1 {
		t.Errorf("start sent %d times, want 1", n)
	}
	// A 409 on delete is retried too.
	s.LockContention(1)
	if err := b.Delete(context.Background(), "busy", nil); err != nil {
		t.Fatalf("Delete after a 409: %v", err)
	}
	if len(s.Volumes()) != 0 {
		t.Fatal("volume left after Delete")
	}
}

func TestLockContentionForever(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.RetryMaxAttempts = 3 })
	s.LockContention(1000)
	_, err := b.Create(context.Background(), &backend.CreateRequest{Name: "never", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create under endless contention", err, subvolkit.Unavailable)
	if n := s.Count("POST", "/v1/smartvol"); n != 4 {
		t.Errorf("smartvol sent %d times, want 1 + RetryMaxAttempts 3", n)
	}
	var he *glusterd2.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusConflict || !strings.Contains(err.Error(), "giving up after 4 attempt(s)") {
		t.Fatalf("error %v, HTTPError %+v", err, he)
	}
	if len(s.Volumes()) != 0 {
		t.Fatal("a volume was made")
	}

	// RetryMaxAttempts < 0: one attempt.
	s2, b2 := setup(t, nil, func(o *glusterd2.Options) { o.RetryMaxAttempts = -1 })
	s2.LockContention(1)
	_, err = b2.Create(context.Background(), &backend.CreateRequest{Name: "once", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create without retries", err, subvolkit.Unavailable)
	if n := s2.Count("POST", "/v1/smartvol"); n != 1 {
		t.Errorf("smartvol sent %d times with retries off", n)
	}
}

func TestLockContentionCancelledBackoff(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) {
		o.RetryMaxAttempts = 100
		o.RetryMinDelay, o.RetryMaxDelay = time.Hour, time.Hour
	})
	s.LockContention(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "wait", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create cancelled in backoff", err, subvolkit.DeadlineExceeded)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("returned after %v", d)
	}
	var he *glusterd2.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusConflict {
		t.Errorf("the last answer is not reachable: %v", err)
	}
}

func TestWrongSecret(t *testing.T) {
	s, b := setup(t, &gd2fake.Options{Secret: "right"}, func(o *glusterd2.Options) { o.Secret = "wrong" })
	ctx := context.Background()
	err := b.Ping(ctx)
	wantKind(t, "Ping", err, subvolkit.PermissionDenied)
	var he *glusterd2.HTTPError
	if !errors.As(err, &he) || he.Status != 401 || len(he.Messages) != 1 || he.Messages[0] != "signature is invalid" {
		t.Fatalf("HTTPError = %+v", he)
	}
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "x", SizeBytes: quota.MiB})
	wantKind(t, "Create", err, subvolkit.PermissionDenied)
	if n := s.Count("GET", "/ping"); n != 1 {
		t.Errorf("a 401 was retried: %d pings", n)
	}

	_, b2 := setup(t, &gd2fake.Options{Secret: "right"}, func(o *glusterd2.Options) { o.Secret, o.User = "right", "admin" })
	err = b2.Ping(ctx)
	wantKind(t, "Ping as admin", err, subvolkit.PermissionDenied)
	if !strings.Contains(err.Error(), "Invalid App ID: admin") {
		t.Errorf("error %q", err)
	}

	_, b3 := setup(t, &gd2fake.Options{Secret: "right"}, func(o *glusterd2.Options) { o.Secret = "" })
	err = b3.Ping(ctx)
	wantKind(t, "Ping without a secret", err, subvolkit.PermissionDenied)

	_, b4 := setup(t, &gd2fake.Options{NoAuth: true}, func(o *glusterd2.Options) { o.Secret = "" })
	if err := b4.Ping(ctx); err != nil {
		t.Fatalf("Ping without auth: %v", err)
	}
}

func TestDroppedConnection(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.RetryMaxAttempts = 2; o.LostCreateGrace = 300 * time.Millisecond })
	ctx := context.Background()
	s.DropConnections(1)
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "dropped", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create on a dropped connection", err, subvolkit.Unavailable)
	if n := s.Count("POST", "/v1/smartvol"); n != 1 {
		t.Errorf("a POST whose answer was lost was sent %d times", n)
	}
	if n := s.Count("GET", "/v1/volumes/dropped"); n == 0 {
		t.Errorf("Create did not check for a volume the lost create made")
	}
	if len(s.Volumes()) != 0 {
		t.Fatal("volume left")
	}

	// A GET is retried on a broken connection.
	s.DropConnections(1)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping after one drop: %v", err)
	}
	s.DropConnections(100)
	wantKind(t, "Ping, always dropped", b.Ping(ctx), subvolkit.Unavailable)
	if n := s.Count("GET", "/ping"); n < 1+1+3 {
		t.Errorf("%d pings, want at least 1+1+3", n)
	}
	s.DropConnections(0)

	// Nothing listens: dial errors are Unavailable.
	url := s.URL()
	s.Close()
	b2, err := glusterd2.Open(ctx, &glusterd2.Options{URL: url, RetryMaxAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	wantKind(t, "Ping a closed server", b2.Ping(ctx), subvolkit.Unavailable)
}

// A create whose answer is lost may have made the volume: Create removes
// a never-started volume of that name without metadata. Here the volume
// the lost request "made" is made beforehand with restclient, and the
// create itself is held past the backend's attempt timeout.
func TestLostCreateAnswerCleanedUp(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.Timeout = 100 * time.Millisecond; o.RetryMaxAttempts = -1 })
	c := restclient.New(s.URL(), "glustercli", s.Secret(), "", false)
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "lost", Size: 10}); err != nil {
		t.Fatal(err)
	}
	s.Delay("POST", "/v1/smartvol", time.Hour, 1)
	_, err := b.Create(context.Background(), &backend.CreateRequest{Name: "lost", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create with a lost answer", err, subvolkit.Unavailable)
	if len(s.Volumes()) != 0 {
		t.Fatalf("the never-started volume without metadata is still there: %v", volumeNames(s))
	}
}

func TestCancelDuringSlow(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.RollbackTimeout = 200 * time.Millisecond })
	create(t, b, "there", 10*quota.MiB)
	s.Slow(time.Hour)
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := b.Get(ctx, "there"); return err }},
		{"List", func(ctx context.Context) error { _, err := b.List(ctx, nil); return err }},
		{"Delete", func(ctx context.Context) error { return b.Delete(ctx, "there", nil) }},
		{"Ping", b.Ping},
		{"Create", func(ctx context.Context) error {
			_, err := b.Create(ctx, &backend.CreateRequest{Name: "slow", SizeBytes: quota.MiB})
			return err
		}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err := tc.call(ctx)
		d := time.Since(start)
		cancel()
		wantKind(t, tc.name, err, subvolkit.Canceled)
		if d > 5*time.Second {
			t.Errorf("%s returned %v after the cancel", tc.name, d)
		}
	}
	s.Slow(0)
	if got := strings.Join(volumeNames(s), ","); got != "there" {
		t.Fatalf("volumes after cancelled calls: %s", got)
	}
}

// Cancelled after the volume was made: the rollback still removes it.
func TestCancelAfterCreateRollsBack(t *testing.T) {
	s, b := setup(t, nil, nil)
	s.Delay("POST", "/v1/volumes/late/start", time.Hour, 1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "late", SizeBytes: quota.MiB})
	wantKind(t, "Create cancelled while starting", err, subvolkit.Canceled)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	if len(s.Volumes()) != 0 {
		t.Fatalf("left behind: %v", volumeNames(s))
	}
	if !strings.Contains(err.Error(), "the volume was removed again") {
		t.Errorf("error %q does not say the volume was removed", err)
	}
}

func TestCreateThenStartFailureRollsBack(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	s.FailNext("POST", "/v1/volumes/half/start", http.StatusInternalServerError, "brick failed to start", 1)
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "half", SizeBytes: quota.MiB})
	wantKind(t, "Create with a failing start", err, subvolkit.Unavailable)
	if !strings.Contains(err.Error(), "brick failed to start") || !strings.Contains(err.Error(), "removed again") {
		t.Errorf("error %q", err)
	}
	if len(s.Volumes()) != 0 {
		t.Fatalf("left behind: %v", volumeNames(s))
	}
	if n := s.Count("DELETE", "/v1/volumes/half"); n != 1 {
		t.Errorf("%d deletes, want 1", n)
	}

	// The metadata step fails: same.
	s.FailNext("POST", "/v1/volumes/half/edit", http.StatusBadRequest, "metadata size exceeds max allowed size of 4KB", 1)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "half", SizeBytes: quota.MiB})
	wantKind(t, "Create with a failing edit", err, subvolkit.InvalidArgument)
	if len(s.Volumes()) != 0 {
		t.Fatalf("left behind: %v", volumeNames(s))
	}

	// The rollback fails too: the error says so, and what is left (never
	// started) is refused by Get and List, and removed by Delete.
	s.FailNext("POST", "/v1/volumes/half/start", http.StatusInternalServerError, "brick failed to start", 1)
	s.FailNext("DELETE", "/v1/volumes/half", http.StatusBadRequest, "no", 1)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "half", SizeBytes: quota.MiB})
	if err == nil || !strings.Contains(err.Error(), "removing the half-made volume failed") {
		t.Fatalf("Create with a failing rollback: %v", err)
	}
	wantKind(t, "kind of a failed create with a failed rollback", err, subvolkit.Unavailable)
	if got := strings.Join(volumeNames(s), ","); got != "half" {
		t.Fatalf("volumes: %s", got)
	}
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "half", SizeBytes: quota.MiB})
	wantKind(t, "Create over the leftover", err, subvolkit.AlreadyExists)
	_, err = b.Get(ctx, "half")
	wantKind(t, "Get of the leftover", err, subvolkit.FailedPrecondition)
	if page, err := b.List(ctx, nil); err != nil || len(page.Subvols) != 0 {
		t.Fatalf("List lists the leftover: %+v, %v", page, err)
	}
	if err := b.Delete(ctx, "half", nil); err != nil {
		t.Fatalf("Delete of the leftover: %v", err)
	}
	if len(s.Volumes()) != 0 {
		t.Fatal("leftover not removed")
	}
}

func TestUnimplemented(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	create(t, b, "u", quota.MiB)
	total := s.Total()
	_, err := b.Resize(ctx, "u", 20*quota.MiB)
	wantKind(t, "Resize", err, subvolkit.Unimplemented)
	if !strings.Contains(err.Error(), "no size-based expand") || !strings.Contains(err.Error(), "takes bricks only") {
		t.Errorf("Resize message %q", err)
	}
	_, err = b.Clone(ctx, &backend.CloneRequest{Source: "u", Name: "u2"})
	wantKind(t, "Clone", err, subvolkit.Unimplemented)
	if !strings.Contains(err.Error(), "answers 501") {
		t.Errorf("Clone message %q", err)
	}
	err = b.Delete(ctx, "u", &backend.DeleteOptions{Policy: backend.DeletePolicyArchive})
	wantKind(t, "Delete archive", err, subvolkit.Unimplemented)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "owned", SizeBytes: quota.MiB, Owner: &backend.Ownership{UID: 1000, GID: -1}})
	wantKind(t, "Create with an owner", err, subvolkit.Unimplemented)
	if s.Total() != total {
		t.Errorf("unimplemented calls sent %d requests", s.Total()-total)
	}
	if _, err := b.Create(ctx, &backend.CreateRequest{Name: "owned", SizeBytes: quota.MiB, Owner: &backend.Ownership{UID: -1, GID: -1}}); err != nil {
		t.Fatalf("Create with an owner that changes nothing: %v", err)
	}
}

func TestUsage(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	create(t, b, "used", 100*quota.MiB)
	if err := s.SetUsed("used", 30*gd2fake.MiB); err != nil {
		t.Fatal(err)
	}
	u, err := b.Usage(ctx, "used")
	if err != nil {
		t.Fatal(err)
	}
	if u.Limit != 100*quota.MiB || u.Used != 30*quota.MiB || u.Available != 70*quota.MiB || u.Files != -1 || u.Dirs != -1 {
		t.Fatalf("Usage = %+v", u)
	}
	_, err = b.Usage(ctx, "nope")
	wantKind(t, "Usage of a missing volume", err, subvolkit.NotFound)
	c := restclient.New(s.URL(), "glustercli", s.Secret(), "", false)
	if err := c.VolumeStop("used"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Usage(ctx, "used")
	wantKind(t, "Usage of a stopped volume", err, subvolkit.FailedPrecondition)
	// Delete copes with a volume someone stopped.
	if err := b.Delete(ctx, "used", nil); err != nil {
		t.Fatalf("Delete of a stopped volume: %v", err)
	}
}

// The upstream client works against the fake, and the backend leaves
// volumes it did not make alone.
func TestRestclientAndForeignVolumes(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	var c *restclient.Client
	if !b.As(&c) || c == nil {
		t.Fatal("As(**restclient.Client) failed")
	}
	var hc *http.Client
	if !b.As(&hc) || hc == nil {
		t.Fatal("As(**http.Client) failed")
	}
	if b.As(nil) || b.As(new(string)) {
		t.Fatal("As accepted an unsupported type")
	}
	if err := c.Ping(); err != nil {
		t.Fatalf("restclient Ping: %v", err)
	}
	if _, err := c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "foreign", Size: 20}); err != nil {
		t.Fatalf("restclient SmartVolumeCreate: %v", err)
	}
	if err := c.VolumeStart("foreign", false); err != nil {
		t.Fatal(err)
	}
	create(t, b, "mine", quota.MiB)

	vols, err := c.Volumes("")
	if err != nil || len(vols) != 2 || vols[1].Name != "mine" || vols[1].Metadata[glusterd2.MetaSize] != fmt.Sprint(10*quota.MiB) {
		t.Fatalf("restclient Volumes = %+v, %v", vols, err)
	}
	page, err := b.List(ctx, nil)
	if err != nil || len(page.Subvols) != 1 || page.Subvols[0].Name != "mine" {
		t.Fatalf("List = %+v, %v", page, err)
	}
	_, err = b.Get(ctx, "foreign")
	wantKind(t, "Get of a foreign volume", err, subvolkit.NotFound)
	if !strings.Contains(err.Error(), "is not a subvolume") {
		t.Errorf("error %q does not say why", err)
	}
	wantKind(t, "Delete of a foreign volume", b.Delete(ctx, "foreign", nil), subvolkit.NotFound)
	_, err = b.Usage(ctx, "foreign")
	wantKind(t, "Usage of a foreign volume", err, subvolkit.NotFound)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "foreign", SizeBytes: quota.MiB})
	wantKind(t, "Create over a foreign volume", err, subvolkit.AlreadyExists)
	if got := strings.Join(volumeNames(s), ","); got != "foreign,mine" {
		t.Fatalf("volumes: %s", got)
	}

	// restclient deletes what the backend made.
	if err := c.VolumeStop("mine"); err != nil {
		t.Fatal(err)
	}
	if err := c.VolumeDelete("mine"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Get(ctx, "mine")
	wantKind(t, "Get after a restclient delete", err, subvolkit.NotFound)

	// ErrorKind classifies restclient's errors.
	_, err = c.Volumes("mine")
	if k := glusterd2.ErrorKind(err); k != subvolkit.NotFound {
		t.Errorf("ErrorKind(restclient 404) = %v (%v)", k, err)
	}
	_, err = c.SmartVolumeCreate(smartvolapi.VolCreateReq{Name: "foreign", Size: 20})
	if k := glusterd2.ErrorKind(err); k != subvolkit.AlreadyExists {
		t.Errorf("ErrorKind(restclient duplicate) = %v (%v)", k, err)
	}
	_, err = c.VolumeExpand("foreign", api.VolExpandReq{})
	if k := glusterd2.ErrorKind(err); k != subvolkit.Unknown {
		t.Errorf("ErrorKind(restclient router 404) = %v (%v)", k, err)
	}
	err = restclient.New(s.URL(), "glustercli", "bad", "", false).Ping()
	if k := glusterd2.ErrorKind(err); k != subvolkit.PermissionDenied {
		t.Errorf("ErrorKind(restclient 401) = %v (%v)", k, err)
	}
}

func TestRetain(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()
	create(t, b, "keep", quota.MiB)
	if err := b.Delete(ctx, "keep", &backend.DeleteOptions{Policy: backend.DeletePolicyRetain}); err != nil {
		t.Fatalf("Delete retain: %v", err)
	}
	vols := s.Volumes()
	if len(vols) != 1 || vols[0].State != api.VolStarted || vols[0].Metadata[glusterd2.MetaSize] != "" {
		t.Fatalf("retained volume %+v", vols)
	}
	if page, err := b.List(ctx, nil); err != nil || len(page.Subvols) != 0 {
		t.Fatalf("List after retain = %+v, %v", page, err)
	}
	_, err := b.Get(ctx, "keep")
	wantKind(t, "Get after retain", err, subvolkit.NotFound)
	wantKind(t, "Delete after retain", b.Delete(ctx, "keep", nil), subvolkit.NotFound)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "keep", SizeBytes: quota.MiB})
	wantKind(t, "Create over a retained volume", err, subvolkit.AlreadyExists)
	if len(s.Volumes()) != 1 {
		t.Fatal("a retained volume was deleted")
	}
}

// A URL that reaches something other than glusterd2's volume API must not
// turn a 404 into NotFound (which the Pool treats as "already deleted").
func TestWrongURLIsNotNotFound(t *testing.T) {
	s, _ := setup(t, nil, nil)
	b, err := glusterd2.Open(context.Background(), &glusterd2.Options{URL: s.URL() + "/api", Secret: s.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Get(context.Background(), "x")
	wantKind(t, "Get under a wrong URL", err, subvolkit.Unknown)
	wantKind(t, "Delete under a wrong URL", b.Delete(context.Background(), "x", nil), subvolkit.Unknown)
}

func TestServerErrors(t *testing.T) {
	s, b := setup(t, &gd2fake.Options{Hosts: []string{"a", "b"}, DeviceBytes: 50 * gd2fake.MiB}, nil)
	ctx := context.Background()
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "huge", SizeBytes: 100 * quota.MiB})
	wantKind(t, "Create beyond the devices", err, subvolkit.QuotaExceeded)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "r3", SizeBytes: quota.MiB, Parameters: map[string]string{"replica": "3"}})
	wantKind(t, "replica 3 on two peers", err, subvolkit.QuotaExceeded)
	sv, err := b.Create(ctx, &backend.CreateRequest{Name: "r2", SizeBytes: quota.MiB, Parameters: map[string]string{"replica": "2"}})
	if err != nil || len(sv.Servers) != 2 {
		t.Fatalf("replica 2 = %+v, %v", sv, err)
	}
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "p", SizeBytes: quota.MiB, Parameters: map[string]string{"stripe": "2"}})
	wantKind(t, "unknown parameter", err, subvolkit.InvalidArgument)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "p", SizeBytes: quota.MiB, Parameters: map[string]string{"replica": "x"}})
	wantKind(t, "bad parameter", err, subvolkit.InvalidArgument)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "p", SizeBytes: quota.MiB, Labels: map[string]string{"big": strings.Repeat("x", 5000)}})
	wantKind(t, "labels over the metadata limit", err, subvolkit.InvalidArgument)

	// A GET is retried on a 5xx; a POST is not.
	s.Fail5xx(2)
	if _, err := b.Get(ctx, "r2"); err != nil {
		t.Fatalf("Get after two 500s: %v", err)
	}
	if n := s.Count("GET", "/v1/volumes/r2"); n != 3 {
		t.Errorf("%d GETs, want 3", n)
	}
	before := s.Count("POST", "/v1/smartvol")
	s.Fail5xx(1)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "five", SizeBytes: quota.MiB})
	wantKind(t, "Create on a 500", err, subvolkit.Unavailable)
	if n := s.Count("POST", "/v1/smartvol") - before; n != 1 {
		t.Errorf("a POST answered 500 was sent %d times", n)
	}
	if len(s.Volumes()) != 1 {
		t.Fatalf("volumes: %v", volumeNames(s))
	}
}

func TestAttemptTimeout(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.Timeout = 50 * time.Millisecond; o.RetryMaxAttempts = 1 })
	s.Slow(time.Hour)
	start := time.Now()
	err := b.Ping(context.Background())
	wantKind(t, "Ping past the attempt timeout", err, subvolkit.Unavailable)
	if !strings.Contains(err.Error(), "no answer within 50ms") || time.Since(start) > 10*time.Second {
		t.Fatalf("error %v after %v", err, time.Since(start))
	}
	if n := s.Count("GET", "/ping"); n != 2 {
		t.Errorf("%d pings, want 2", n)
	}
}

func TestClose(t *testing.T) {
	_, b := setup(t, nil, nil)
	ctx := context.Background()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := b.Get(ctx, "x")
	wantKind(t, "Get after Close", err, subvolkit.FailedPrecondition)
	_, err = b.Create(ctx, &backend.CreateRequest{Name: "x", SizeBytes: 1})
	wantKind(t, "Create after Close", err, subvolkit.FailedPrecondition)
	wantKind(t, "Ping after Close", b.Ping(ctx), subvolkit.FailedPrecondition)
}

func TestOpen(t *testing.T) {
	s := gd2fake.New(&gd2fake.Options{TLS: true})
	t.Cleanup(s.Close)
	ctx := context.Background()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(ctx, "glusterd2", map[string]string{
		"url": s.URL(), "secret": s.Secret(), "tlscafile": ca, "replica": "3", "user": "glustercli",
	})
	if err != nil {
		t.Fatalf("backend.Open: %v", err)
	}
	defer b.Close()
	if err := b.(backend.Pinger).Ping(ctx); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}
	sv, err := b.Create(ctx, &backend.CreateRequest{Name: "tls", SizeBytes: quota.MiB})
	if err != nil || len(sv.Servers) != 3 {
		t.Fatalf("Create with replica=3: %+v, %v", sv, err)
	}

	insecure, err := backend.Open(ctx, "glusterd2", map[string]string{"url": s.URL(), "secret": s.Secret(), "tlsinsecure": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := insecure.(backend.Pinger).Ping(ctx); err != nil {
		t.Fatalf("insecure Ping: %v", err)
	}
	untrusting, err := glusterd2.Open(ctx, &glusterd2.Options{URL: s.URL(), Secret: s.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	pings := s.Count("GET", "/ping")
	start := time.Now()
	wantKind(t, "Ping without trusting the CA", untrusting.Ping(ctx), subvolkit.Unavailable)
	if n := s.Count("GET", "/ping") - pings; n != 0 {
		t.Errorf("%d pings got through TLS", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a certificate error was retried (%v)", d)
	}

	for _, params := range []map[string]string{
		{},
		{"url": "gd2:24007"},
		{"url": "ftp://gd2"},
		{"url": s.URL(), "colour": "blue"},
		{"url": s.URL(), "replica": "three"},
		{"url": s.URL(), "replica": "4"},
		{"url": s.URL(), "replica": "3", "disperse": "6"},
		{"url": s.URL(), "disperse": "4", "redundancy": "2"},
		{"url": s.URL(), "redundancy": "1"},
		{"url": s.URL(), "tlsinsecure": "maybe"},
		{"url": s.URL(), "tlscafile": filepath.Join(t.TempDir(), "missing.pem")},
	} {
		_, err := backend.Open(ctx, "glusterd2", params)
		wantKind(t, fmt.Sprintf("Open(%v)", params), err, subvolkit.InvalidArgument)
	}
	_, err = glusterd2.Open(ctx, &glusterd2.Options{URL: s.URL(), HTTPClient: s.Client(), TLS: glusterd2.TLS{InsecureSkipVerify: true}})
	wantKind(t, "HTTPClient with TLS", err, subvolkit.InvalidArgument)
	_, err = glusterd2.Open(ctx, nil)
	wantKind(t, "Open(nil)", err, subvolkit.InvalidArgument)
	withClient, err := glusterd2.Open(ctx, &glusterd2.Options{URL: s.URL(), Secret: s.Secret(), HTTPClient: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := withClient.Ping(ctx); err != nil {
		t.Fatalf("Ping with the fake's HTTP client: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = glusterd2.Open(cctx, &glusterd2.Options{URL: s.URL()})
	wantKind(t, "Open with a cancelled context", err, subvolkit.Canceled)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Creates of one name are serialized: glusterd2 checks the name before its
// own lock, and a losing create's undo would remove the winner's bricks.
func TestCreateSerializedPerName(t *testing.T) {
	s, b := setup(t, nil, nil)
	ctx := context.Background()

	s.DelayFinish("POST", "/v1/smartvol", 300*time.Millisecond, 1)
	first := make(chan error, 1)
	go func() {
		_, err := b.Create(ctx, &backend.CreateRequest{Name: "one", SizeBytes: quota.MiB})
		first <- err
	}()
	waitFor(t, "the first create to reach glusterd2", func() bool { return s.Count("POST", "/v1/smartvol") == 1 })
	// Without the lock this create would overtake the held one and win.
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "one", SizeBytes: quota.MiB})
	wantKind(t, "the second Create", err, subvolkit.AlreadyExists)
	if err := <-first; err != nil {
		t.Fatalf("the first Create: %v", err)
	}

	// A call waiting for the name gives up with its context.
	s.Delay("POST", "/v1/smartvol", time.Hour, 1)
	hold, release := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() {
		_, err := b.Create(hold, &backend.CreateRequest{Name: "two", SizeBytes: quota.MiB})
		held <- err
	}()
	waitFor(t, "the held create to reach glusterd2", func() bool { return s.Count("POST", "/v1/smartvol") == 3 })
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	wantKind(t, "Delete waiting for the name", b.Delete(wctx, "two", nil), subvolkit.DeadlineExceeded)
	if n := s.Count("GET", "/v1/volumes/two"); n != 0 {
		t.Errorf("the waiting Delete reached glusterd2 (%d GETs)", n)
	}
	release()
	wantKind(t, "the released Create", <-held, subvolkit.Canceled)
	// Other names are not held up meanwhile.
	create(t, b, "three", quota.MiB)
}

// A create whose answer is lost while the server is still making the
// volume: the backend watches for it and removes it when it shows up.
func TestLostCreateFinishedLate(t *testing.T) {
	s, b := setup(t, nil, func(o *glusterd2.Options) { o.LostCreateGrace = 5 * time.Second })
	s.DelayFinish("POST", "/v1/smartvol", 300*time.Millisecond, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.Create(ctx, &backend.CreateRequest{Name: "late", SizeBytes: 10 * quota.MiB})
	wantKind(t, "Create cut short", err, subvolkit.DeadlineExceeded)
	// The server made the volume after the client gave up; Create
	// returned only once it had removed it.
	if n := s.Count("DELETE", "/v1/volumes/late"); n != 1 {
		t.Errorf("the late volume was not deleted (%d DELETEs)", n)
	}
	if n := len(s.Volumes()); n != 0 {
		t.Fatalf("the late volume was left behind (%d volumes)", n)
	}
}
