package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// Harness gives the suite a backend to test and says what it can do.
type Harness interface {
	// MakeBackend returns a fresh, empty backend, or one whose existing
	// subvolumes the suite can ignore (it uses unique names). The suite
	// closes it.
	MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error)
	// Options describes the backend made by MakeBackend. It is called
	// after MakeBackend.
	Options() Options
	// Close releases what the harness holds. It is called once per
	// subtest, after the backend is closed.
	Close()
}

// HarnessMaker returns a new Harness. RunConformanceTests calls it once per
// subtest.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Capability is a set of optional behaviours a backend has. A harness
// declares them all in Options.Capabilities: a declared capability that
// answers Unimplemented fails the suite, and so does an undeclared one that
// does not answer Unimplemented (a backend must never half-support one).
type Capability uint

// The optional behaviours.
const (
	// Resize: backend.Resizer grows a subvolume.
	Resize Capability = 1 << iota
	// Shrink: Resize to a smaller size (above what the subvolume holds)
	// succeeds. Without it a shrink must fail with Unimplemented or
	// FailedPrecondition and change nothing.
	Shrink
	// Clone: backend.Cloner copies a subvolume.
	Clone
	// Usage: backend.UsageReader reports usage.
	Usage
	// Ping: backend.Pinger checks the server.
	Ping
	// Retain: Delete with DeletePolicyRetain.
	Retain
	// Archive: Delete with DeletePolicyArchive.
	Archive
	// Owner: CreateRequest.Owner sets the root's owner and mode. Without
	// it a Create with an owner must fail with Unimplemented or
	// InvalidArgument and create nothing.
	Owner
	// Labels: CreateRequest.Labels are stored and reported by Get.
	// Without it, Get must not report labels.
	Labels
	// Reconcile: backend.Reconciler finds and repairs leftovers.
	Reconcile
	// Snapshot: backend.Snapshotter takes, lists, deletes and restores
	// snapshots (see snapshot.go). Without it, every Snapshotter method
	// must answer Unimplemented, saying why.
	Snapshot
	// Warm: backend.Warmer makes, counts, hands out and drains warm
	// subvolumes (see warm.go).
	Warm
	// ListUsage: List with ListOptions.WithUsage fills Subvol.Usage of
	// every entry. Without it, List must leave Usage nil.
	ListUsage
)

var capNames = []string{"Resize", "Shrink", "Clone", "Usage", "Ping", "Retain", "Archive", "Owner", "Labels", "Reconcile", "Snapshot", "Warm", "ListUsage"}

// String returns the capabilities' names joined with "|".
func (c Capability) String() string {
	var out []string
	for i, n := range capNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// Options tell the suite what to expect of a backend. The zero value
// describes an exact-size backend without content access.
type Options struct {
	// SizeUnit is the backend's rounding unit: 1 (or 0) for a backend
	// that keeps sizes exactly, quota.GiB for one that rounds up to whole
	// GiB (heketi). The suite's sizes are multiples of it, except where a
	// test checks the rounding itself.
	SizeUnit int64
	// MaxSizeBytes, if > 0, is a size above which the backend refuses a
	// subvolume: the suite asks for MaxSizeBytes+SizeUnit and expects an
	// error of kind InvalidArgument or QuotaExceeded. 0 skips that test.
	MaxSizeBytes int64
	// Capabilities are the optional behaviours the backend has.
	Capabilities Capability
	// AsTypes are pointers to variables of every type the backend's As
	// documents (for example new(*client.Client)): the suite checks that
	// As succeeds for each and sets a non-nil value.
	AsTypes []any
	// WriteFile writes data to the file at path (slash-separated,
	// relative to the subvolume's root; parent directories must be
	// created as needed), and ReadFile reads it back. When both are set,
	// the suite checks that Clone copies content and that Usage grows
	// after a write; when either is nil those checks are skipped.
	WriteFile func(ctx context.Context, sv *subvol.Subvol, path string, data []byte) error
	ReadFile  func(ctx context.Context, sv *subvol.Subvol, path string) ([]byte, error)
	// Snapshot returns an opaque description of everything the backend
	// holds (for example a directory listing plus `gluster volume quota
	// VOL list`). The suite compares it before and after calls that must
	// fail without changing anything. nil means a listing built from
	// Backend.List (names, IDs, sizes and sources).
	Snapshot func(ctx context.Context) (string, error)
	// Concurrency is the number of goroutines in the concurrency tests;
	// 0 means 8. Values below 2 are raised to 2.
	Concurrency int
	// SettleTimeout bounds how long the suite polls for values a backend
	// reports eventually rather than at once (Usage after a write:
	// Gluster's quota accounting lags). 0 means 30 seconds.
	SettleTimeout time.Duration
}

const (
	defaultConcurrency   = 8
	defaultSettleTimeout = 30 * time.Second
	// baseSize is the usual size of a test subvolume, before rounding up
	// to SizeUnit.
	baseSize = 16 * quota.MiB
	// cleanupTimeout bounds each delete the suite makes when a subtest ends.
	cleanupTimeout = 2 * time.Minute
	// maxPages bounds the List loops, in case a backend never ends a listing.
	maxPages = 100000
)

// RunConformanceTests runs the conformance suite against the backends that
// newHarness makes, as one subtest of t per behaviour. See the package
// documentation.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	run := newRunID()
	tests := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"Create", testCreate},
		{"CreateRoundsUp", testCreateRoundsUp},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateUnknownParameter", testCreateUnknownParameter},
		{"CreateTooLarge", testCreateTooLarge},
		{"ValidNames", testValidNames},
		{"GetMissing", testGetMissing},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteRetain", func(t *testing.T, f *fixture) { testDeletePolicy(t, f, backend.DeletePolicyRetain) }},
		{"DeleteArchive", func(t *testing.T, f *fixture) { testDeletePolicy(t, f, backend.DeletePolicyArchive) }},
		{"AllocateIdempotent", testAllocateIdempotent},
		{"AllocateInvalid", testAllocateInvalid},
		{"Resize", testResize},
		{"Clone", testClone},
		{"Snapshots", testSnapshots},
		{"Usage", testUsage},
		{"ConcurrentAllocateSameName", testConcurrentAllocateSameName},
		{"ConcurrentCreateSameName", testConcurrentCreateSameName},
		{"ConcurrentAllocateDistinct", testConcurrentAllocateDistinct},
		{"CanceledContext", testCanceledContext},
		{"InterruptedCreate", testInterruptedCreate},
		{"ListSortedPaging", testListSortedPaging},
		{"ListPagingStable", testListPagingStable},
		{"ListNamesOnly", testListNamesOnly},
		{"ListWithUsage", testListWithUsage},
		{"ErrorKinds", testErrorKinds},
		{"As", testAs},
		{"Owner", testOwner},
		{"Labels", testLabels},
		{"Ping", testPing},
		{"Reconcile", testReconcile},
		{"Warm", testWarm},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, newHarness, run, tc.name)
			tc.fn(t, f)
		})
	}
}

// newRunID returns a short random id that keeps the names of one run of
// the suite apart from those of every other run.
func newRunID() string {
	var p [3]byte
	_, _ = rand.Read(p[:]) // never fails (crypto/rand)
	return hex.EncodeToString(p[:])
}

// fixture is what each subtest works with.
type fixture struct {
	ctx    context.Context
	b      backend.Backend
	pool   *subvol.Pool // over b; closing it closes b
	opts   Options
	unit   int64 // SizeUnit, at least 1
	base   int64 // the usual size: baseSize rounded up to unit
	conc   int
	settle time.Duration
	prefix string
	n      int
	closed bool // the test closed b itself
}

func setup(t *testing.T, newHarness HarnessMaker, run, test string) *fixture {
	t.Helper()
	ctx := t.Context()
	h, err := newHarness(ctx, t)
	mustNoError(t, err, "HarnessMaker")
	mustNotNil(t, h, "HarnessMaker returned a nil Harness")
	t.Cleanup(h.Close)
	b, err := h.MakeBackend(ctx, t)
	mustNoError(t, err, "MakeBackend")
	mustNotNil(t, b, "MakeBackend returned a nil Backend")
	f := &fixture{ctx: ctx, b: b, pool: subvol.NewPool(b, nil), opts: h.Options()}
	t.Cleanup(func() {
		if f.closed {
			return
		}
		if err := f.pool.Close(); err != nil {
			t.Errorf("closing the backend: %v", err)
		}
	})
	f.unit = max(f.opts.SizeUnit, 1)
	f.base, err = quota.RoundUp(baseSize, f.unit)
	mustNoError(t, err, "SizeUnit %d", f.opts.SizeUnit)
	f.conc = f.opts.Concurrency
	if f.conc == 0 {
		f.conc = defaultConcurrency
	}
	f.conc = max(f.conc, 2)
	f.settle = f.opts.SettleTimeout
	if f.settle <= 0 {
		f.settle = defaultSettleTimeout
	}
	short := strings.ToLower(test)
	if len(short) > 20 {
		short = short[:20]
	}
	f.prefix = "bt-" + run + "-" + short
	return f
}

// name returns a fresh subvolume name, unique to this run and subtest.
func (f *fixture) name(t *testing.T) string {
	t.Helper()
	f.n++
	name, err := naming.ForRequest(f.prefix + "-" + strconv.Itoa(f.n))
	mustNoError(t, err)
	mustNoError(t, naming.ValidateSubvolName(name))
	return name
}

// track makes sure name is deleted when the subtest ends, whatever happens.
func (f *fixture) track(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		if f.closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := f.pool.Delete(ctx, name, nil); err != nil {
			t.Errorf("cleanup: deleting %q: %v", name, err)
		}
	})
}

// create makes a subvolume with the raw backend and checks the result.
func (f *fixture) create(t *testing.T, name string, size int64) *backend.Subvol {
	t.Helper()
	f.track(t, name)
	sv, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: size})
	mustNoError(t, err, "Create(%q, %d)", name, size)
	checkSubvol(t, sv, name, f.rounded(t, size))
	return sv
}

// rounded is size rounded up to the backend's unit.
func (f *fixture) rounded(t *testing.T, size int64) int64 {
	t.Helper()
	r, err := quota.RoundUp(size, f.unit)
	mustNoError(t, err)
	return r
}

// checkSubvol checks what every Subvol must say.
func checkSubvol[S anySubvol](t *testing.T, s S, name string, size int64) {
	t.Helper()
	sv := portable(s)
	mustNotNil(t, sv, "nil Subvol for %q", name)
	checkEqual(t, name, sv.Name, "Subvol.Name")
	checkNotEmpty(t, sv.ID, "Subvol.ID of %q", name)
	checkEqual(t, size, sv.SizeBytes, "Subvol.SizeBytes of %q (the request rounded up to SizeUnit)", name)
	checkNotEmpty(t, sv.Volume, "Subvol.Volume of %q: a mounter needs it", name)
	checkNotEmpty(t, sv.Servers, "Subvol.Servers of %q: a mounter needs them", name)
	if sv.Path != "" {
		checkTrue(t, strings.HasPrefix(sv.Path, "/"), "Subvol.Path %q of %q must start with /", sv.Path, name)
	}
}

// sameSubvol checks that got describes the same subvolume as want.
func sameSubvol[W, G anySubvol](t *testing.T, w W, g G, what string) {
	t.Helper()
	want, got := portable(w), portable(g)
	mustNotNil(t, got, what)
	checkEqual(t, want.Name, got.Name, "%s: Name", what)
	checkEqual(t, want.ID, got.ID, "%s: ID", what)
	checkEqual(t, want.SizeBytes, got.SizeBytes, "%s: SizeBytes", what)
	checkEqual(t, want.Volume, got.Volume, "%s: Volume", what)
	checkEqual(t, want.Path, got.Path, "%s: Path", what)
	checkEqual(t, want.Servers, got.Servers, "%s: Servers", what)
	checkEqual(t, want.Source, got.Source, "%s: Source", what)
}

// requireKind fails t unless err has one of kinds, says "subvolkit:" once and
// names no subvolume but name (backends name none: the Pool adds the name).
func requireKind(t *testing.T, err error, name string, kinds ...subvolkit.Kind) {
	t.Helper()
	mustError(t, err, "want an error of kind %v", kinds)
	got := subvolkit.KindOf(err)
	if !slices.Contains(kinds, got) {
		t.Fatalf("got an error of kind %q, want %v; the error: %v", got, kinds, err)
	}
	if !errors.Is(err, got.Sentinel()) {
		t.Errorf("errors.Is(err, subvolkit.%v sentinel) is false for %v", got, err)
	}
	if n := strings.Count(err.Error(), "subvolkit:"); n > 1 {
		t.Errorf("the error is wrapped %d times (want \"subvolkit:\" once): %v", n, err)
	}
	var se *subvolkit.Error
	if errors.As(err, &se) && se.Name != "" && se.Name != name {
		t.Errorf("the error names subvolume %q, want %q or none: %v", se.Name, name, err)
	}
}

// has reports whether the harness declares c.
func (f *fixture) has(c Capability) bool { return f.opts.Capabilities&c != 0 }

// optional checks err, the answer of a call that needs capability c, against
// the harness's declaration. A declared capability must not answer
// Unimplemented. An undeclared one must: the subtest is then skipped.
func (f *fixture) optional(t *testing.T, c Capability, err error) {
	t.Helper()
	unimplemented := subvolkit.KindOf(err) == subvolkit.Unimplemented
	switch {
	case f.has(c) && unimplemented:
		t.Fatalf("the harness declares %v, but the backend answers Unimplemented: %v", c, err)
	case !f.has(c) && unimplemented:
		t.Skipf("%v is not declared, and the backend answers Unimplemented as it must: %v", c, err)
	case !f.has(c):
		t.Fatalf("the harness does not declare %v, but the backend does not answer Unimplemented (error: %v): declare it in Options.Capabilities", c, err)
	}
}

// implements handles a backend that lacks c's interface: fatal if c is
// declared, a skip otherwise.
func (f *fixture) implements(t *testing.T, c Capability, ok bool, iface string) {
	t.Helper()
	switch {
	case !ok && f.has(c):
		t.Fatalf("the harness declares %v, but %T does not implement %s", c, f.b, iface)
	case !ok:
		t.Skipf("%T does not implement %s", f.b, iface)
	}
}

// listAll pages through the raw backend's List.
func (f *fixture) listAll(t *testing.T, ctx context.Context, maxResults int) []*backend.Subvol {
	t.Helper()
	all, _, err := listPages(ctx, f.b, maxResults)
	mustNoError(t, err)
	return all
}

// listPages pages through b.List and returns everything and the pages'
// sizes. It checks that page tokens advance.
func listPages(ctx context.Context, b backend.Backend, maxResults int) ([]*backend.Subvol, []int, error) {
	var all []*backend.Subvol
	var sizes []int
	opts := &backend.ListOptions{MaxResults: maxResults}
	seen := map[string]bool{}
	for range maxPages {
		page, err := b.List(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		if page == nil {
			return nil, nil, fmt.Errorf("List(%+v) returned a nil page", *opts)
		}
		all = append(all, page.Subvols...)
		sizes = append(sizes, len(page.Subvols))
		if page.NextPageToken == "" {
			return all, sizes, nil
		}
		if seen[page.NextPageToken] {
			return nil, nil, fmt.Errorf("the backend's List returned the page token %q twice", page.NextPageToken)
		}
		seen[page.NextPageToken] = true
		opts = &backend.ListOptions{PageToken: page.NextPageToken, MaxResults: maxResults}
	}
	return nil, nil, fmt.Errorf("the backend's List did not end after %d pages", maxPages)
}

// find returns the entries of list named name.
func find(list []*backend.Subvol, name string) []*backend.Subvol {
	var found []*backend.Subvol
	for _, sv := range list {
		if sv != nil && sv.Name == name {
			found = append(found, sv)
		}
	}
	return found
}

// requireListed checks that List has exactly one entry for sv, equal to it.
func requireListed[S anySubvol](f *fixture, t *testing.T, s S) {
	t.Helper()
	sv := portable(s)
	found := find(f.listAll(t, f.ctx, 0), sv.Name)
	mustLen(t, found, 1, "List entries named %q", sv.Name)
	sameSubvol(t, sv, found[0], "List entry")
}

// requireGone checks that name is neither found by Get nor listed.
func (f *fixture) requireGone(t *testing.T, name string) {
	t.Helper()
	_, err := f.b.Get(f.ctx, name)
	requireKind(t, err, name, subvolkit.NotFound)
	checkEmpty(t, find(f.listAll(t, f.ctx, 0), name), "List still has %q", name)
}

// snapshot describes everything the backend holds.
func (f *fixture) snapshot(t *testing.T) string {
	t.Helper()
	if f.opts.Snapshot != nil {
		s, err := f.opts.Snapshot(f.ctx)
		mustNoError(t, err, "Options.Snapshot")
		return s
	}
	var b strings.Builder
	for _, sv := range f.listAll(t, f.ctx, 0) {
		fmt.Fprintf(&b, "%s id=%s size=%d source=%s volume=%s path=%s\n",
			sv.Name, sv.ID, sv.SizeBytes, sv.Source, sv.Volume, sv.Path)
	}
	return b.String()
}

func (f *fixture) requireUnchanged(t *testing.T, before, what string) {
	t.Helper()
	mustEqual(t, before, f.snapshot(t), "%s changed what the backend holds", what)
}

// usage returns the backend's UsageReader, or nil if it has none or it
// says Unimplemented for sv.
func (f *fixture) usage(t *testing.T, name string) (backend.UsageReader, *quota.Usage) {
	t.Helper()
	ur, ok := f.b.(backend.UsageReader)
	if !ok {
		return nil, nil
	}
	u, err := ur.Usage(f.ctx, name)
	if subvolkit.KindOf(err) == subvolkit.Unimplemented && !f.has(Usage) {
		return nil, nil
	}
	mustNoError(t, err, "Usage(%q)", name)
	mustNotNil(t, u, "Usage(%q) returned nil", name)
	return ur, u
}

func (f *fixture) hasContent() bool { return f.opts.WriteFile != nil && f.opts.ReadFile != nil }

// pattern returns n bytes that depend on seed, so that copies can be told
// from the original.
func pattern(seed string, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed[i%len(seed)] ^ byte(i/len(seed))
	}
	return p
}

// poll calls cond until it reports true, ctx is done or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %v: %w", timeout, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func testCreate(t *testing.T, f *fixture) {
	name := f.name(t)
	sv := f.create(t, name, f.base)
	checkEmpty(t, sv.Source, "Source of a created (not cloned) subvolume")
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err, "Get(%q) after Create", name)
	sameSubvol(t, sv, got, "Get after Create")
	requireListed(f, t, sv)

	// The backend must not share its state with callers.
	got.SizeBytes = 1
	if len(got.Servers) > 0 {
		got.Servers[0] = "changed-by-caller"
	}
	again, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	sameSubvol(t, sv, again, "Get after the caller changed a returned Subvol")
}

func testCreateRoundsUp(t *testing.T, f *fixture) {
	name := f.name(t)
	size := f.base + 1
	want := f.rounded(t, size)
	sv := f.create(t, name, size) // checks SizeBytes == want
	checkGreaterOrEqual(t, sv.SizeBytes, size, "SizeBytes below the request")
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	checkEqual(t, want, got.SizeBytes, "Get reports another size than Create")
	if _, u := f.usage(t, name); u != nil {
		checkEqual(t, want, u.Limit, "Usage.Limit must be the size the backend reports")
	}
}

func testCreateDuplicate(t *testing.T, f *fixture) {
	name := f.name(t)
	sv := f.create(t, name, f.base)
	before := f.snapshot(t)
	_, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
	requireKind(t, err, name, subvolkit.AlreadyExists)
	f.requireUnchanged(t, before, "a Create of an existing name")
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	sameSubvol(t, sv, got, "Get after a refused duplicate Create")
}

func testCreateUnknownParameter(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	before := f.snapshot(t)
	_, err := f.b.Create(f.ctx, &backend.CreateRequest{
		Name: name, SizeBytes: f.base,
		Parameters: map[string]string{"backendtest-no-such-parameter": "1"},
	})
	requireKind(t, err, name, subvolkit.InvalidArgument)
	f.requireUnchanged(t, before, "a Create with an unknown parameter")
	f.requireGone(t, name)
}

func testCreateTooLarge(t *testing.T, f *fixture) {
	if f.opts.MaxSizeBytes <= 0 {
		t.Skip("Options.MaxSizeBytes is 0")
	}
	size := f.opts.MaxSizeBytes + f.unit
	name := f.name(t)
	f.track(t, name)
	before := f.snapshot(t)
	_, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: size})
	requireKind(t, err, name, subvolkit.InvalidArgument, subvolkit.QuotaExceeded)
	f.requireUnchanged(t, before, "a Create above MaxSizeBytes")
	f.requireGone(t, name)
}

func testValidNames(t *testing.T, f *fixture) {
	// Names provisioners make: every backend must accept them.
	uid := strings.Join([]string{newRunID() + "00", "0000", "4000", "8000", newRunID() + newRunID()}, "-")
	fromUID, err := naming.FromUID("", uid)
	mustNoError(t, err)
	forRequest, err := naming.ForRequest("PVC_" + f.prefix + "_Rewritten.Claim")
	mustNoError(t, err)
	for _, name := range []string{fromUID, forRequest} {
		sv := f.create(t, name, f.base)
		got, err := f.b.Get(f.ctx, name)
		mustNoError(t, err, "Get(%q)", name)
		sameSubvol(t, sv, got, "Get")
	}

	// Other valid names: every backend must accept them too.
	long := f.prefix + "-long-"
	long += strings.Repeat("x", naming.MaxSubvolName-len(long))
	for _, name := range []string{long, f.prefix + "_Mixed.Case-1"} {
		mustNoError(t, naming.ValidateSubvolName(name))
		f.track(t, name)
		sv, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
		if err != nil {
			t.Fatalf("the backend refuses the valid name %q: %v", name, err)
		}
		checkSubvol(t, sv, name, f.base)
		got, err := f.b.Get(f.ctx, name)
		mustNoError(t, err, "Get(%q)", name)
		sameSubvol(t, sv, got, "Get")
		requireListed(f, t, sv)
		mustNoError(t, f.b.Delete(f.ctx, name, nil), "Delete(%q)", name)
		f.requireGone(t, name)
	}
}

func testGetMissing(t *testing.T, f *fixture) {
	name := f.name(t)
	_, err := f.b.Get(f.ctx, name)
	requireKind(t, err, name, subvolkit.NotFound)
	requireUnnamed(t, err)
	_, err = f.pool.Get(f.ctx, name)
	requireKind(t, err, name, subvolkit.NotFound)
	if want := fmt.Sprintf("subvolkit: get %q: not found", name); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("the Pool's error reads %q, want it to start with %q", err, want)
	}
}

// requireUnnamed fails t if err, returned by the backend itself, names a
// subvolume or a Pool operation: only the Pool adds them, once.
func requireUnnamed(t *testing.T, err error) {
	t.Helper()
	var se *subvolkit.Error
	if !errors.As(err, &se) {
		return
	}
	if se.Name != "" {
		t.Errorf("the backend's error names subvolume %q (only the Pool does): %v", se.Name, err)
	}
	switch se.Op {
	case "allocate", "create", "get", "list", "delete", "resize", "clone", "usage":
		t.Errorf("the backend's error names the operation %q (only the Pool does): %v", se.Op, err)
	}
}

func testDelete(t *testing.T, f *fixture) {
	name := f.name(t)
	f.create(t, name, f.base)
	mustNoError(t, f.b.Delete(f.ctx, name, nil), "Delete(%q)", name)
	f.requireGone(t, name)
	err := f.b.Delete(f.ctx, name, nil)
	requireKind(t, err, name, subvolkit.NotFound)
	mustNoError(t, f.pool.Delete(f.ctx, name, nil), "Pool.Delete of a deleted subvolume must succeed")

	// The name is free again, for a new subvolume of another size.
	sv := f.create(t, name, 2*f.base)
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	sameSubvol(t, sv, got, "Get after re-creating a deleted name")
}

func testDeleteMissing(t *testing.T, f *fixture) {
	name := f.name(t)
	before := f.snapshot(t)
	err := f.b.Delete(f.ctx, name, nil)
	requireKind(t, err, name, subvolkit.NotFound)
	mustNoError(t, f.pool.Delete(f.ctx, name, nil), "Pool.Delete of a missing subvolume must succeed")
	f.requireUnchanged(t, before, "a Delete of a missing subvolume")
}

func testDeletePolicy(t *testing.T, f *fixture, policy backend.DeletePolicy) {
	name := f.name(t)
	sv := f.create(t, name, f.base)
	if f.hasContent() {
		mustNoError(t, f.opts.WriteFile(f.ctx, portable(sv), "kept.txt", []byte("kept by "+policy.String())))
	}
	err := f.pool.Delete(f.ctx, name, &subvol.DeleteOptions{Policy: subvol.DeletePolicy(policy)})
	capability := Retain
	if policy == backend.DeletePolicyArchive {
		capability = Archive
	}
	f.optional(t, capability, err)
	mustNoError(t, err, "Delete(%q, %v)", name, policy)
	f.requireGone(t, name)
	err = f.b.Delete(f.ctx, name, &backend.DeleteOptions{Policy: policy})
	requireKind(t, err, name, subvolkit.NotFound)
}

func testAllocateIdempotent(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	first, err := f.pool.Allocate(f.ctx, name, f.base, nil)
	mustNoError(t, err, "Allocate(%q)", name)
	checkSubvol(t, first, name, f.base)
	again, err := f.pool.Allocate(f.ctx, name, f.base, nil)
	mustNoError(t, err, "a second Allocate(%q) with the same size must return the subvolume", name)
	sameSubvol(t, first, again, "second Allocate")

	_, err = f.pool.Allocate(f.ctx, name, first.SizeBytes+f.base, nil)
	requireKind(t, err, name, subvolkit.AlreadyExists)
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	sameSubvol(t, first, got, "Get after a refused bigger Allocate")
	requireListed(f, t, first)
}

func testAllocateInvalid(t *testing.T, f *fixture) {
	before := f.snapshot(t)
	for _, name := range []string{"../x", "a/b", "", "a\x00b", strings.Repeat("a", 200), "..", ".hidden", "-x", "a b"} {
		_, err := f.pool.Allocate(f.ctx, name, f.base, nil)
		requireKind(t, err, name, subvolkit.InvalidArgument)
	}
	name := f.name(t)
	f.track(t, name)
	for _, size := range []int64{0, -1} {
		_, err := f.pool.Allocate(f.ctx, name, size, nil)
		requireKind(t, err, name, subvolkit.InvalidArgument)
	}
	if f.opts.MaxSizeBytes > 0 {
		_, err := f.pool.Allocate(f.ctx, name, f.opts.MaxSizeBytes+f.unit, nil)
		requireKind(t, err, name, subvolkit.InvalidArgument, subvolkit.QuotaExceeded)
	}
	f.requireUnchanged(t, before, "an invalid Allocate")
	f.requireGone(t, name)
}

func testResize(t *testing.T, f *fixture) {
	r, ok := f.b.(backend.Resizer)
	f.implements(t, Resize, ok, "backend.Resizer")
	name := f.name(t)
	sv := f.create(t, name, f.base)
	big := 2 * f.base
	got, err := r.Resize(f.ctx, name, big)
	f.optional(t, Resize, err)
	mustNoError(t, err, "Resize(%q, %d)", name, big)
	checkSubvol(t, got, name, big)
	checkEqual(t, sv.ID, got.ID, "Resize must keep the ID")
	requireSize := func(want int64, what string) {
		t.Helper()
		g, err := f.b.Get(f.ctx, name)
		mustNoError(t, err)
		mustEqual(t, want, g.SizeBytes, "Get after %s", what)
		if _, u := f.usage(t, name); u != nil {
			mustEqual(t, want, u.Limit, "Usage.Limit after %s", what)
		}
	}
	requireSize(big, "growing")

	got, err = r.Resize(f.ctx, name, big)
	mustNoError(t, err, "Resize to the current size")
	checkEqual(t, big, got.SizeBytes)
	requireSize(big, "resizing to the current size")

	got, err = r.Resize(f.ctx, name, f.base)
	if f.has(Shrink) {
		mustNoError(t, err, "shrinking an empty subvolume (Shrink is declared)")
		checkEqual(t, f.base, got.SizeBytes)
		requireSize(f.base, "shrinking")
	} else {
		requireKind(t, err, name, subvolkit.Unimplemented, subvolkit.FailedPrecondition)
		requireSize(big, "a refused shrink")
	}
	cur, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)

	if f.opts.MaxSizeBytes > 0 {
		_, err = r.Resize(f.ctx, name, f.opts.MaxSizeBytes+f.unit)
		requireKind(t, err, name, subvolkit.InvalidArgument, subvolkit.QuotaExceeded)
		requireSize(cur.SizeBytes, "a refused Resize above MaxSizeBytes")
	}

	missing := f.name(t)
	_, err = r.Resize(f.ctx, missing, big)
	requireKind(t, err, missing, subvolkit.NotFound)
	_, err = f.pool.Resize(f.ctx, missing, big)
	requireKind(t, err, missing, subvolkit.NotFound)
	f.requireGone(t, missing)
}

func testClone(t *testing.T, f *fixture) {
	c, ok := f.b.(backend.Cloner)
	f.implements(t, Clone, ok, "backend.Cloner")
	srcName := f.name(t)
	src := f.create(t, srcName, f.base)
	files := map[string][]byte{
		"top.txt":          []byte("written to " + srcName),
		"sub/dir/data.bin": pattern(srcName, 64<<10),
	}
	if f.hasContent() {
		for p, data := range files {
			mustNoError(t, f.opts.WriteFile(f.ctx, portable(src), p, data), "WriteFile(%q)", p)
		}
	}

	dstName := f.name(t)
	f.track(t, dstName)
	dst, err := f.pool.Clone(f.ctx, srcName, dstName, nil)
	f.optional(t, Clone, err)
	mustNoError(t, err, "Clone(%q, %q)", srcName, dstName)
	checkSubvol(t, dst, dstName, src.SizeBytes)
	checkEqual(t, srcName, dst.Source, "Source of a clone")
	checkNotEqual(t, src.ID, dst.ID, "a clone must have its own ID")
	got, err := f.b.Get(f.ctx, dstName)
	mustNoError(t, err)
	sameSubvol(t, dst, got, "Get of a clone")
	requireListed(f, t, dst)

	if f.hasContent() {
		for p, data := range files {
			read, err := f.opts.ReadFile(f.ctx, portable(dst), p)
			mustNoError(t, err, "ReadFile(clone, %q)", p)
			mustEqual(t, data, read, "content of %q in the clone", p)
		}
		// A clone is a copy: changing the source leaves it as it was.
		mustNoError(t, f.opts.WriteFile(f.ctx, portable(src), "top.txt", []byte("changed after the clone")))
		read, err := f.opts.ReadFile(f.ctx, portable(dst), "top.txt")
		mustNoError(t, err)
		mustEqual(t, files["top.txt"], read, "the clone changed with its source")
	}

	// A retried clone returns the same subvolume; a raw one is refused.
	again, err := f.pool.Clone(f.ctx, srcName, dstName, nil)
	mustNoError(t, err, "a retried Clone must return the clone")
	sameSubvol(t, dst, again, "retried Clone")
	_, err = c.Clone(f.ctx, &backend.CloneRequest{Source: srcName, Name: dstName})
	requireKind(t, err, dstName, subvolkit.AlreadyExists)

	// A bigger clone.
	bigName := f.name(t)
	f.track(t, bigName)
	big, err := f.pool.Clone(f.ctx, srcName, bigName, &subvol.CloneOptions{SizeBytes: 2 * src.SizeBytes})
	mustNoError(t, err, "Clone with twice the source's size")
	checkSubvol(t, big, bigName, 2*src.SizeBytes)

	before := f.snapshot(t)
	// Smaller than the source.
	smallName := f.name(t)
	f.track(t, smallName)
	_, err = c.Clone(f.ctx, &backend.CloneRequest{Source: srcName, Name: smallName, SizeBytes: src.SizeBytes - 1})
	requireKind(t, err, smallName, subvolkit.InvalidArgument)
	// A missing source.
	missing, orphan := f.name(t), f.name(t)
	f.track(t, orphan)
	_, err = c.Clone(f.ctx, &backend.CloneRequest{Source: missing, Name: orphan})
	requireKind(t, err, missing, subvolkit.NotFound)
	f.requireUnchanged(t, before, "a refused Clone")
	f.requireGone(t, smallName)
	f.requireGone(t, orphan)

	// An existing subvolume that is not a clone of the source.
	plainName := f.name(t)
	plain := f.create(t, plainName, f.base)
	_, err = f.pool.Clone(f.ctx, srcName, plainName, nil)
	requireKind(t, err, plainName, subvolkit.AlreadyExists)
	got, err = f.b.Get(f.ctx, plainName)
	mustNoError(t, err)
	sameSubvol(t, plain, got, "a subvolume a refused Clone tried to overwrite")
}

func testUsage(t *testing.T, f *fixture) {
	ur, ok := f.b.(backend.UsageReader)
	f.implements(t, Usage, ok, "backend.UsageReader")
	name := f.name(t)
	sv := f.create(t, name, f.base)
	u, err := ur.Usage(f.ctx, name)
	f.optional(t, Usage, err)
	mustNoError(t, err, "Usage(%q)", name)
	mustNotNil(t, u)
	checkEqual(t, sv.SizeBytes, u.Limit, "Usage.Limit must be the subvolume's size")
	if u.Used >= 0 {
		checkLess(t, u.Used, u.Limit, "a new subvolume cannot be full")
		checkEqual(t, u.Limit-u.Used, u.Available, "Usage.Available")
	}

	missing := f.name(t)
	_, err = ur.Usage(f.ctx, missing)
	requireKind(t, err, missing, subvolkit.NotFound)

	if !f.hasContent() {
		return
	}
	if u.Used < 0 {
		t.Log("the backend does not report Used; skipping the write check")
		return
	}
	const n = 256 << 10
	mustNoError(t, f.opts.WriteFile(f.ctx, portable(sv), "usage/data.bin", pattern(name, n)))
	var last *quota.Usage
	err = poll(f.ctx, f.settle, func() (bool, error) {
		var err error
		last, err = ur.Usage(f.ctx, name)
		return err == nil && last.Used >= u.Used+n, err
	})
	mustNoError(t, err, "Usage.Used after writing %d bytes to %q: %+v (before: %+v)", n, name, last, u)
	checkEqual(t, sv.SizeBytes, last.Limit)
	checkEqual(t, max(last.Limit-last.Used, 0), last.Available, "Usage.Available")
	if last.Files >= 0 {
		checkGreaterOrEqual(t, last.Files, int64(1), "Usage.Files after a write")
	}
}

func testConcurrentAllocateSameName(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	svs, errs := concurrently(f.conc, func(int) (*subvol.Subvol, error) {
		return f.pool.Allocate(f.ctx, name, f.base, nil)
	})
	for i, err := range errs {
		mustNoError(t, err, "goroutine %d: Allocate(%q)", i, name)
	}
	for i, sv := range svs {
		checkSubvol(t, sv, name, f.base)
		checkEqual(t, svs[0].ID, sv.ID, "goroutine %d got another subvolume", i)
	}
	requireListed(f, t, svs[0])
}

func testConcurrentCreateSameName(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	svs, errs := concurrently(f.conc, func(int) (*backend.Subvol, error) {
		return f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
	})
	var winner *backend.Subvol
	for i, err := range errs {
		if err == nil {
			mustNil(t, winner, "two concurrent Creates of %q succeeded", name)
			winner = svs[i]
			continue
		}
		requireKind(t, err, name, subvolkit.AlreadyExists)
	}
	mustNotNil(t, winner, "no concurrent Create of %q succeeded", name)
	checkSubvol(t, winner, name, f.base)
	requireListed(f, t, winner)
}

func testConcurrentAllocateDistinct(t *testing.T, f *fixture) {
	names := make([]string, f.conc)
	for i := range names {
		names[i] = f.name(t)
		f.track(t, names[i])
	}
	svs, errs := concurrently(f.conc, func(i int) (*subvol.Subvol, error) {
		return f.pool.Allocate(f.ctx, names[i], f.base, nil)
	})
	ids := map[string]string{}
	for i, err := range errs {
		mustNoError(t, err, "Allocate(%q)", names[i])
		checkSubvol(t, svs[i], names[i], f.base)
		if other, dup := ids[svs[i].ID]; dup {
			t.Errorf("%q and %q have the same ID %q", other, names[i], svs[i].ID)
		}
		ids[svs[i].ID] = names[i]
	}
	list := f.listAll(t, f.ctx, 0)
	for i, name := range names {
		found := find(list, name)
		mustLen(t, found, 1, "List entries named %q", name)
		sameSubvol(t, svs[i], found[0], "List entry")
	}
	_, errs = concurrently(f.conc, func(i int) (*backend.Subvol, error) {
		return nil, f.pool.Delete(f.ctx, names[i], nil)
	})
	for i, err := range errs {
		mustNoError(t, err, "Delete(%q)", names[i])
	}
	list = f.listAll(t, f.ctx, 0)
	for _, name := range names {
		checkEmpty(t, find(list, name), "%q is still listed after Delete", name)
	}
}

// concurrently runs fn(0..n-1) in n goroutines started together.
func concurrently[S any](n int, fn func(i int) (S, error)) ([]S, []error) {
	svs := make([]S, n)
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			svs[i], errs[i] = fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return svs, errs
}

func testCanceledContext(t *testing.T, f *fixture) {
	existingName := f.name(t)
	existing := f.create(t, existingName, f.base)
	name := f.name(t)
	f.track(t, name)
	before := f.snapshot(t)

	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	canceled := func(err error, name string, what string) {
		t.Helper()
		mustError(t, err, "%s with a cancelled context", what)
		requireKind(t, err, name, subvolkit.Canceled)
	}
	_, err := f.b.Create(ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
	canceled(err, name, "Create")
	_, err = f.pool.Allocate(ctx, name, f.base, nil)
	canceled(err, name, "Allocate")
	_, err = f.b.Get(ctx, existingName)
	canceled(err, "", "Get")
	_, err = f.b.List(ctx, nil)
	canceled(err, "", "List")
	err = f.b.Delete(ctx, existingName, nil)
	canceled(err, "", "Delete")
	optional := func(err error, what string) {
		t.Helper()
		if subvolkit.KindOf(err) != subvolkit.Unimplemented {
			canceled(err, "", what)
		}
	}
	if r, ok := f.b.(backend.Resizer); ok {
		_, err = r.Resize(ctx, existingName, 2*f.base)
		optional(err, "Resize")
	}
	if c, ok := f.b.(backend.Cloner); ok {
		_, err = c.Clone(ctx, &backend.CloneRequest{Source: existingName, Name: name})
		optional(err, "Clone")
	}
	if u, ok := f.b.(backend.UsageReader); ok {
		_, err = u.Usage(ctx, existingName)
		optional(err, "Usage")
	}
	if p, ok := f.b.(backend.Pinger); ok {
		optional(p.Ping(ctx), "Ping")
	}

	dctx, dcancel := context.WithDeadline(f.ctx, time.Now().Add(-time.Second))
	defer dcancel()
	_, err = f.b.Create(dctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
	mustError(t, err, "Create with an expired deadline")
	requireKind(t, err, name, subvolkit.DeadlineExceeded)

	f.requireUnchanged(t, before, "calls with a cancelled context")
	f.requireGone(t, name)
	got, err := f.b.Get(f.ctx, existingName)
	mustNoError(t, err, "Get after a cancelled Delete")
	sameSubvol(t, existing, got, "Get after cancelled calls")
}

func testInterruptedCreate(t *testing.T, f *fixture) {
	// How long a Create takes decides when to interrupt one.
	start := time.Now()
	f.create(t, f.name(t), f.base)
	took := time.Since(start)
	before := f.snapshot(t)

	var names []string
	for _, frac := range []float64{1.0 / 3, 2.0 / 3} {
		name := f.name(t)
		f.track(t, name)
		names = append(names, name)
		ctx, cancel := context.WithTimeout(f.ctx, time.Duration(frac*float64(took)))
		_, err := f.b.Create(ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
		cancel()
		if err != nil {
			requireKind(t, err, "", subvolkit.DeadlineExceeded)
		}
		// Whatever the interrupted Create left, Delete removes it.
		mustNoError(t, f.pool.Delete(f.ctx, name, nil), "Delete(%q) after an interrupted Create", name)
		f.requireGone(t, name)
	}
	f.requireUnchanged(t, before, "interrupted Creates followed by Deletes")
	// And the names are free for new subvolumes.
	for _, name := range names {
		sv, err := f.pool.Allocate(f.ctx, name, f.base, nil)
		mustNoError(t, err, "Allocate(%q) after an interrupted Create and a Delete", name)
		checkSubvol(t, sv, name, f.base)
	}
}

func testListSortedPaging(t *testing.T, f *fixture) {
	names := make([]string, 5)
	for i := range names {
		names[i] = f.name(t)
	}
	want := map[string]*backend.Subvol{}
	for _, i := range []int{3, 1, 4, 0, 2} { // not in name order
		want[names[i]] = f.create(t, names[i], f.base)
	}
	slices.Sort(names)

	for _, maxResults := range []int{0, 2} {
		all, pages, err := listPages(f.ctx, f.b, maxResults)
		mustNoError(t, err, "List with MaxResults %d", maxResults)
		got := make([]string, len(all))
		for i, sv := range all {
			mustNotNil(t, sv, "List entry %d", i)
			got[i] = sv.Name
		}
		mustTrue(t, slices.IsSorted(got), "List (MaxResults %d) is not sorted by name: %q", maxResults, got)
		mustLen(t, slices.Compact(slices.Clone(got)), len(got), "List (MaxResults %d) has duplicates: %q", maxResults, got)
		var ours []string
		for _, sv := range all {
			if w, ok := want[sv.Name]; ok {
				ours = append(ours, sv.Name)
				sameSubvol(t, w, sv, "List entry")
			}
		}
		mustEqual(t, names, ours, "List (MaxResults %d)", maxResults)
		if maxResults > 0 {
			for i, n := range pages {
				mustLessOrEqual(t, n, maxResults, "page %d has more than MaxResults entries", i)
			}
			mustGreaterOrEqual(t, len(pages), 3, "5 subvolumes in pages of 2 need at least 3 pages")
		}
	}
}

// listOpts pages through b.List with opts (MaxResults, NamesOnly,
// WithUsage), calling between after each page but the last.
func listOpts(t *testing.T, f *fixture, opts backend.ListOptions, between func(page int)) []*backend.Subvol {
	t.Helper()
	var all []*backend.Subvol
	for i := 0; i < maxPages; i++ {
		page, err := f.b.List(f.ctx, &opts)
		mustNoError(t, err, "List(%+v)", opts)
		mustNotNil(t, page, "List(%+v) returned a nil page", opts)
		if opts.MaxResults > 0 {
			mustLessOrEqual(t, len(page.Subvols), opts.MaxResults, "page %d has more than MaxResults entries", i)
		}
		for j, sv := range page.Subvols {
			mustNotNil(t, sv, "List entry %d of page %d", j, i)
		}
		all = append(all, page.Subvols...)
		if page.NextPageToken == "" {
			return all
		}
		mustTrue(t, page.NextPageToken != opts.PageToken, "the backend's List returned the page token %q twice", page.NextPageToken)
		if between != nil {
			between(i)
		}
		opts.PageToken = page.NextPageToken
	}
	t.Fatalf("the backend's List did not end after %d pages", maxPages)
	return nil
}

// requireSortedOnce checks that names are strictly increasing (sorted, no
// name twice) and that each of want appears.
func requireSortedOnce(t *testing.T, all []*backend.Subvol, want []string, what string) {
	t.Helper()
	got := make([]string, len(all))
	for i, sv := range all {
		got[i] = sv.Name
	}
	for i := 1; i < len(got); i++ {
		mustTrue(t, got[i-1] < got[i], "%s: %q then %q: not sorted, or a name repeated (all: %q)", what, got[i-1], got[i], got)
	}
	for _, w := range want {
		mustTrue(t, slices.Contains(got, w), "%s lacks %q, which existed throughout (all: %q)", what, w, got)
	}
}

// testListPagingStable creates and deletes subvolumes between pages: a
// name that exists throughout must be listed exactly once.
func testListPagingStable(t *testing.T, f *fixture) {
	names := make([]string, 6)
	for i := range names {
		names[i] = f.name(t)
	}
	slices.Sort(names)
	for _, n := range names {
		f.create(t, n, f.base)
	}
	throughout := names[1:5]
	for _, namesOnly := range []bool{false, true} {
		var added []string
		all := listOpts(t, f, backend.ListOptions{MaxResults: 2, NamesOnly: namesOnly}, func(page int) {
			if page != 0 {
				return
			}
			// After the first page: the first and last names go, a new
			// one comes.
			for _, n := range []string{names[0], names[5]} {
				mustNoError(t, f.b.Delete(f.ctx, n, nil), "Delete(%q) between pages", n)
			}
			n := f.name(t)
			f.create(t, n, f.base)
			added = append(added, n)
		})
		requireSortedOnce(t, all, throughout, fmt.Sprintf("List with deletes and creates between pages (NamesOnly %v)", namesOnly))
		// Put the first and last back for the next round; drop the new one.
		for _, n := range []string{names[0], names[5]} {
			_, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: n, SizeBytes: f.base})
			mustNoError(t, err, "Create(%q) again", n)
		}
		for _, n := range added {
			mustNoError(t, f.b.Delete(f.ctx, n, nil), "Delete(%q)", n)
		}
	}
}

// testListNamesOnly checks that a names-only List has every subvolume once,
// sorted, with the names and addresses Get reports, and (with Retain) not
// the retained ones.
func testListNamesOnly(t *testing.T, f *fixture) {
	names := make([]string, 5)
	want := map[string]*backend.Subvol{}
	for i := range names {
		names[i] = f.name(t)
		want[names[i]] = f.create(t, names[i], f.base)
	}
	var retained string
	if f.has(Retain) {
		retained = names[4]
		names = names[:4]
		mustNoError(t, f.b.Delete(f.ctx, retained, &backend.DeleteOptions{Policy: backend.DeletePolicyRetain}), "Delete(%q, retain)", retained)
	}
	for _, maxResults := range []int{0, 2} {
		all := listOpts(t, f, backend.ListOptions{MaxResults: maxResults, NamesOnly: true}, nil)
		requireSortedOnce(t, all, names, fmt.Sprintf("names-only List (MaxResults %d)", maxResults))
		for _, sv := range all {
			if sv.Name == retained {
				t.Fatalf("names-only List has %q, which was retained", retained)
			}
			w, ok := want[sv.Name]
			if !ok {
				continue
			}
			checkEqual(t, w.ID, sv.ID, "ID of %q in a names-only List", sv.Name)
			checkEqual(t, w.Path, sv.Path, "Path of %q in a names-only List", sv.Name)
			checkEqual(t, w.Volume, sv.Volume, "Volume of %q in a names-only List", sv.Name)
			checkEqual(t, w.Servers, sv.Servers, "Servers of %q in a names-only List", sv.Name)
		}
	}
}

// testListWithUsage checks List with WithUsage: with ListUsage every entry
// has the usage Usage reports (a write shows, eventually); without it,
// none has any.
func testListWithUsage(t *testing.T, f *fixture) {
	names := []string{f.name(t), f.name(t)}
	svs := map[string]*backend.Subvol{}
	for _, n := range names {
		svs[n] = f.create(t, n, f.base)
	}
	for _, namesOnly := range []bool{false, true} {
		all := listOpts(t, f, backend.ListOptions{MaxResults: 1, WithUsage: true, NamesOnly: namesOnly}, nil)
		requireSortedOnce(t, all, names, "List with usage")
		for _, sv := range all {
			if _, ours := svs[sv.Name]; !ours {
				continue
			}
			if !f.has(ListUsage) {
				mustTrue(t, sv.Usage == nil, "List with WithUsage filled the usage of %q, but the harness does not declare ListUsage", sv.Name)
				continue
			}
			mustNotNil(t, sv.Usage, "usage of %q in List with WithUsage (NamesOnly %v)", sv.Name, namesOnly)
			checkEqual(t, svs[sv.Name].SizeBytes, sv.Usage.Limit, "usage limit of %q in List", sv.Name)
			checkTrue(t, sv.Usage.Used >= 0 && sv.Usage.Used <= sv.Usage.Limit, "usage of %q in List: %+v", sv.Name, *sv.Usage)
		}
	}
	if !f.has(ListUsage) || !f.hasContent() {
		return
	}
	data := pattern("list-usage", 256*1024)
	mustNoError(t, f.opts.WriteFile(f.ctx, portable(svs[names[0]]), "f.bin", data))
	err := poll(f.ctx, f.settle, func() (bool, error) {
		page, err := f.b.List(f.ctx, &backend.ListOptions{WithUsage: true, NamesOnly: true})
		if err != nil {
			return false, err
		}
		for _, sv := range page.Subvols {
			if sv.Name == names[0] && sv.Usage != nil && sv.Usage.Used >= int64(len(data)) {
				return true, nil
			}
		}
		return false, nil
	})
	mustNoError(t, err, "List with WithUsage never showed the %d bytes written to %q", len(data), names[0])
}

func testErrorKinds(t *testing.T, f *fixture) {
	mustEqual(t, subvolkit.Unknown, subvolkit.KindOf(errors.New("x")))
	mustEqual(t, subvolkit.Unknown, subvolkit.KindOf(nil))
	mustEqual(t, subvolkit.Canceled, subvolkit.KindOf(fmt.Errorf("wrapped: %w", context.Canceled)))

	// The backend's errors keep their kind through wrapping and match
	// their sentinel, and only theirs.
	name := f.name(t)
	_, err := f.b.Get(f.ctx, name)
	requireKind(t, err, name, subvolkit.NotFound)
	wrapped := fmt.Errorf("caller: %w", err)
	checkEqual(t, subvolkit.NotFound, subvolkit.KindOf(wrapped))
	checkErrorIs(t, wrapped, subvolkit.ErrNotFound)
	checkNotErrorIs(t, wrapped, subvolkit.ErrAlreadyExists)
	var se *subvolkit.Error
	checkErrorAs(t, wrapped, &se, "a backend error is a *subvolkit.Error")
}

func testAs(t *testing.T, f *fixture) {
	checkFalse(t, f.pool.As(nil), "Pool.As(nil)")
	a, ok := f.b.(backend.Aser)
	if !ok {
		t.Skipf("%T does not implement backend.Aser", f.b)
	}
	checkFalse(t, a.As(nil), "As(nil)")
	var unsupported *struct{ backendtestOnly int }
	checkFalse(t, a.As(&unsupported), "As with an unsupported type")
	checkFalse(t, a.As(unsupported), "As with a non-pointer-to-pointer")
	if len(f.opts.AsTypes) == 0 {
		t.Errorf("%T implements backend.Aser but the harness lists no Options.AsTypes", f.b)
	}
	for _, p := range f.opts.AsTypes {
		v := reflect.ValueOf(p)
		if v.Kind() != reflect.Pointer || v.IsNil() {
			t.Fatalf("Options.AsTypes holds %T, want a non-nil pointer", p)
		}
		if !a.As(p) {
			t.Errorf("As(%T) is false for a documented type", p)
			continue
		}
		if e := v.Elem(); (e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface) && e.IsNil() {
			t.Errorf("As(%T) is true but left a nil value", p)
		}
		checkTrue(t, f.pool.As(p), "Pool.As(%T)", p)
	}
}

func testPing(t *testing.T, f *fixture) {
	p, ok := f.b.(backend.Pinger)
	f.implements(t, Ping, ok, "backend.Pinger")
	err := p.Ping(f.ctx)
	f.optional(t, Ping, err)
	mustNoError(t, err, "Ping of a working backend")
}

// testReconcile checks a backend.Reconciler: a dry run changes nothing and
// never reports a live subvolume; a repair succeeds and leaves nothing but
// purges in progress (and foreign directories) to report; List with All
// includes the live subvolume with an empty State.
func testReconcile(t *testing.T, f *fixture) {
	r, ok := f.b.(backend.Reconciler)
	f.implements(t, Reconcile, ok, "backend.Reconciler")
	live := f.create(t, f.name(t), f.base)
	gone := f.create(t, f.name(t), f.base)
	mustNoError(t, f.b.Delete(f.ctx, gone.Name, nil), "Delete")
	before := f.snapshot(t)
	rep, err := r.Reconcile(f.ctx, nil)
	f.optional(t, Reconcile, err)
	mustNoError(t, err, "dry-run Reconcile")
	mustNotNil(t, rep, "Reconcile report")
	for _, it := range rep.Items {
		checkFalse(t, it.Repaired, "a dry run repaired %+v", it)
		checkNotEqual(t, live.Name, it.Name, "a live subvolume reported: %+v", it)
	}
	f.requireUnchanged(t, before, "a dry-run Reconcile")
	rep, err = r.Reconcile(f.ctx, &backend.ReconcileOptions{Repair: true})
	mustNoError(t, err, "Reconcile with Repair")
	mustNotNil(t, rep, "Reconcile report")
	rep, err = r.Reconcile(f.ctx, nil)
	mustNoError(t, err, "dry-run Reconcile after a repair")
	for _, it := range rep.Items {
		checkTrue(t, it.Problem == backend.ProblemTrash || it.Problem == backend.ProblemUnmarked, "left after a repair: %+v", it)
	}
	got, err := f.b.Get(f.ctx, live.Name)
	mustNoError(t, err, "Get after Reconcile")
	sameSubvol(t, live, got, "Get after Reconcile")
	seen := false
	opts := &backend.ListOptions{All: true}
	for {
		page, err := f.b.List(f.ctx, opts)
		mustNoError(t, err, "List with All")
		for _, sv := range page.Subvols {
			if sv.Name == live.Name && sv.State == "" {
				seen = true
			}
		}
		if page.NextPageToken == "" {
			break
		}
		mustTrue(t, page.NextPageToken != opts.PageToken, "List with All repeated page token %q", opts.PageToken)
		opts = &backend.ListOptions{All: true, PageToken: page.NextPageToken}
	}
	checkTrue(t, seen, "List with All lacks the live subvolume %q", live.Name)
}

func testClose(t *testing.T, f *fixture) {
	f.closed = true
	mustNoError(t, f.b.Close(), "Close")
	name := f.name(t)
	_, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base})
	requireKind(t, err, "", subvolkit.FailedPrecondition)
	_, err = f.b.Get(f.ctx, name)
	requireKind(t, err, "", subvolkit.FailedPrecondition)
	_, err = f.b.List(f.ctx, nil)
	requireKind(t, err, "", subvolkit.FailedPrecondition)
	err = f.b.Delete(f.ctx, name, nil)
	requireKind(t, err, "", subvolkit.FailedPrecondition)
}

// anySubvol is a Subvol as a backend or as the Pool returns it.
type anySubvol interface {
	*backend.Subvol | *subvol.Subvol
}

// portable returns s as the Pool would describe it.
func portable[S anySubvol](s S) *subvol.Subvol {
	switch v := any(s).(type) {
	case *subvol.Subvol:
		return v
	case *backend.Subvol:
		if v == nil {
			return nil
		}
		return &subvol.Subvol{
			Name: v.Name, ID: v.ID, SizeBytes: v.SizeBytes, Servers: v.Servers, Volume: v.Volume,
			Path: v.Path, MountOptions: v.MountOptions, Source: v.Source, UID: v.UID, GID: v.GID,
			Mode: v.Mode, Created: v.Created, Labels: v.Labels,
		}
	}
	return nil
}

func testOwner(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	owner := &backend.Ownership{UID: 4321, GID: 4321, Mode: 0o2770}
	sv, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base, Owner: owner})
	if !f.has(Owner) {
		if err == nil {
			t.Fatalf("the harness does not declare Owner, but Create with an owner succeeds: declare it in Options.Capabilities")
		}
		requireKind(t, err, name, subvolkit.Unimplemented, subvolkit.InvalidArgument)
		f.requireGone(t, name)
		t.Skipf("Owner is not declared, and the backend refuses an owner as it must: %v", err)
	}
	mustNoError(t, err, "Create(%q) with owner %+v (Owner is declared)", name, *owner)
	checkSubvol(t, sv, name, f.base)
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	// A backend that reports the owner must report the one it set.
	if got.UID != -1 {
		checkEqual(t, owner.UID, got.UID, "UID")
	}
	if got.GID != -1 {
		checkEqual(t, owner.GID, got.GID, "GID")
	}
	if got.Mode != 0 {
		checkEqual(t, owner.Mode, got.Mode&0o7777, "Mode")
	}
}

func testLabels(t *testing.T, f *fixture) {
	name := f.name(t)
	f.track(t, name)
	labels := map[string]string{"backendtest/run": f.prefix, "empty": ""}
	_, err := f.b.Create(f.ctx, &backend.CreateRequest{Name: name, SizeBytes: f.base, Labels: labels})
	if !f.has(Labels) && subvolkit.KindOf(err) == subvolkit.Unimplemented {
		f.requireGone(t, name)
		t.Skipf("Labels is not declared, and the backend refuses labels: %v", err)
	}
	mustNoError(t, err, "Create(%q) with labels", name)
	got, err := f.b.Get(f.ctx, name)
	mustNoError(t, err)
	if !f.has(Labels) {
		if len(got.Labels) != 0 {
			t.Fatalf("the harness does not declare Labels, but Get reports %v: declare it in Options.Capabilities", got.Labels)
		}
		t.Skip("Labels is not declared, and the backend reports none")
	}
	checkEqual(t, labels, got.Labels, "labels read back by Get")
	page := f.listAll(t, f.ctx, 0)
	for _, sv := range page {
		if sv.Name == name {
			checkEqual(t, labels, sv.Labels, "labels in List")
		}
	}
}
